"""The venv layer: environment digests and the bare venv."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from photonpack.install.interpreter import describe_interpreter
from photonpack.install.venv import create_venv, environment_digest

A, B, C = "a" * 64, "b" * 64, "c" * 64
HOST = Path(getattr(sys, "_base_executable", sys.executable))


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
