"""The test wheel builder makes wheels that pip accepts and installs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.wheels import build_wheel


def test_built_wheel_is_deterministic_and_has_a_record(tmp_path: Path) -> None:
    first = build_wheel(
        tmp_path / "a", "demo-pkg", "1.0", requires=["other>=1; python_version>='3'"]
    )
    second = build_wheel(
        tmp_path / "b", "demo-pkg", "1.0", requires=["other>=1; python_version>='3'"]
    )
    assert first.name == "demo_pkg-1.0-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert "demo_pkg-1.0.dist-info/RECORD" in names
    assert "demo_pkg/__init__.py" in names


def test_built_wheel_installs_with_pip(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo-pkg", "2.5")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    assert (target / "demo_pkg" / "__init__.py").read_text() == "VERSION = '2.5'\n"
