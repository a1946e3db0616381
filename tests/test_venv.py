"""The venv layer: interpreter facts, environment digests, the bare venv, the compiler."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from photonpack.errors import InstallError
from photonpack.install import venv
from photonpack.install.venv import (
    BytecodeCompiler,
    create_venv,
    describe_interpreter,
    environment_digest,
    interpreter_id,
)
from photonpack.install.wheel import record_hash

A, B, C = "a" * 64, "b" * 64, "c" * 64
HOST = Path(getattr(sys, "_base_executable", sys.executable))


def test_interpreter_id_names_implementation_version_and_platform() -> None:
    multiarch = sysconfig.get_config_var("MULTIARCH")
    expected = f"{sys.implementation.name}-{platform.python_version()}{sys.abiflags}-{multiarch}"
    assert interpreter_id() == expected
    assert interpreter_id(HOST) == expected


def test_probing_another_interpreter_gives_the_same_facts_as_in_process() -> None:
    # The subprocess probe runs the same function's source inside the other interpreter.
    probed = venv._probe(Path(sys.executable))
    assert probed == {**venv._describe(), "executable": str(HOST)}


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


def test_environment_digest_ignores_order_and_duplicates() -> None:
    one = environment_digest(
        interpreter="cpython-3.11.7-x", wheel_sha256s=[A, B], runtime_files={"p/c.py": C}
    )
    two = environment_digest(
        interpreter="cpython-3.11.7-x", wheel_sha256s=[B, A, B], runtime_files={"p/c.py": C}
    )
    assert one == two
    assert len(one) == 64 and int(one, 16) >= 0


def test_environment_digest_changes_with_each_input() -> None:
    base = {"interpreter": "cpython-3.11.7-x", "wheel_sha256s": [A], "runtime_files": {"p/b.py": B}}
    digests = {
        environment_digest(**base),  # type: ignore[arg-type]
        environment_digest(**{**base, "interpreter": "cpython-3.11.8-x"}),  # type: ignore[arg-type]
        environment_digest(**{**base, "wheel_sha256s": [A, C]}),  # type: ignore[arg-type]
        environment_digest(**{**base, "runtime_files": {"p/b.py": C}}),  # type: ignore[arg-type]
        # a wheel digest is not interchangeable with a runtime one
        environment_digest(**{**base, "wheel_sha256s": [B], "runtime_files": {"p/b.py": A}}),  # type: ignore[arg-type]
        # the same runtime content at another path is another environment
        environment_digest(**{**base, "runtime_files": {"p/moved.py": B}}),  # type: ignore[arg-type]
    }
    assert len(digests) == 6


def test_environment_digest_rejects_a_non_hex_digest() -> None:
    with pytest.raises(ValueError, match="not a lowercase sha256 hex digest: 'sha256:"):
        environment_digest(interpreter="x", wheel_sha256s=["sha256:" + A], runtime_files={})


def test_bare_venv_is_isolated_and_names_only_the_base_interpreter(tmp_path: Path) -> None:
    facts = describe_interpreter()
    scheme = create_venv(tmp_path / "env", facts)
    assert scheme.site_packages == tmp_path / "env" / facts.site_packages
    assert (tmp_path / "env" / "pyvenv.cfg").read_text() == (
        f"home = {HOST.parent}\n"
        "include-system-site-packages = false\n"
        f"version = {platform.python_version()}\n"
        f"executable = {os.path.realpath(HOST)}\n"
    )
    assert (tmp_path / "env" / "bin" / "python").readlink() == HOST
    assert (tmp_path / "env" / "bin" / "python3").readlink() == Path("python")
    result = subprocess.run(
        [str(tmp_path / "env" / "bin" / "python3"), "-c",
         "import sys, site; print(sys.prefix, sys.base_prefix, site.ENABLE_USER_SITE)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout == f"{tmp_path / 'env'} {sys.base_prefix} False\n"


def test_compiler_reports_a_failing_worker(tmp_path: Path) -> None:
    scheme = create_venv(tmp_path / "env", describe_interpreter())
    source = scheme.site_packages / "mod.py"
    source.write_text("X = 1\n")
    (scheme.site_packages / "__pycache__").write_text("a file where a directory must go")
    with (
        BytecodeCompiler(tmp_path / "env" / "bin" / "python", workers=1) as c,
        pytest.raises(InstallError) as info,
    ):
        c.submit(scheme.site_packages, [(source, 6)])
        c.finish()
    assert str(info.value).startswith(f"compiling bytecode in {scheme.site_packages} failed: ")
    assert "NotADirectoryError" in str(info.value) or "FileExistsError" in str(info.value)
    assert str(info.value).endswith(
        ". Check that the disk has free space, or set PHOTONPACK_HOME elsewhere."
    )


def test_compiler_skips_files_that_are_not_python_3(tmp_path: Path) -> None:
    scheme = create_venv(tmp_path / "env", describe_interpreter())
    good, bad = scheme.site_packages / "good.py", scheme.site_packages / "bad.py"
    good.write_text("X = 1\n")
    bad.write_text("print 'python 2'\n")
    outside = tmp_path / "outside.py"
    outside.write_text("X = 1\n")
    with BytecodeCompiler(tmp_path / "env" / "bin" / "python", workers=2) as c:
        c.submit(
            scheme.site_packages,
            [(good, 6), (bad, 17), (outside, 6), (scheme.site_packages / "data.txt", 1)],
        )
        rows = c.finish()
    cache = scheme.site_packages / "__pycache__"
    pyc = cache / f"good.{sys.implementation.cache_tag}.pyc"
    assert sorted(cache.iterdir()) == [pyc]
    assert rows == {pyc: (record_hash(pyc.read_bytes()), pyc.stat().st_size)}
    assert not (tmp_path / "__pycache__").exists()
