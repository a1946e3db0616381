"""The interpreter an environment depends on: its identity and facts, in-process or probed."""

from __future__ import annotations

import platform
import sys
import sysconfig
from pathlib import Path

import pytest

from photonpack.errors import InstallError
from photonpack.install import interpreter
from photonpack.install.interpreter import describe_interpreter, interpreter_id

HOST = Path(getattr(sys, "_base_executable", sys.executable))


def test_interpreter_id_names_implementation_version_and_platform() -> None:
    multiarch = sysconfig.get_config_var("MULTIARCH")
    expected = f"{sys.implementation.name}-{platform.python_version()}{sys.abiflags}-{multiarch}"
    assert interpreter_id() == expected
    assert interpreter_id(HOST) == expected


def test_probing_another_interpreter_gives_the_same_facts_as_in_process() -> None:
    # The subprocess probe runs the same function's source inside the other interpreter.
    probed = interpreter._probe(Path(sys.executable))
    assert probed == {**interpreter._describe(), "executable": str(HOST)}


def test_interpreter_facts_describe_the_base_interpreter_not_this_venv() -> None:
    facts = describe_interpreter()
    assert facts.executable == HOST
    assert (
        facts.site_packages
        == f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
    )
    assert facts.cache_tag == sys.implementation.cache_tag
    assert facts.tags[-1] == "py30-none-any"


def test_missing_interpreter_is_an_environment_error(tmp_path: Path) -> None:
    with pytest.raises(InstallError) as info:
        describe_interpreter(tmp_path / "python9")
    assert str(info.value).startswith(f"cannot run the interpreter {tmp_path / 'python9'} (")
    assert str(info.value).endswith(
        "). Pass the path of a working CPython 3 interpreter, or none to use the one running "
        "photonpack."
    )
