"""The test wheel builder makes wheels that pip accepts and installs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.wheels import _record_hash, build_big_wheel, build_wheel


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


def test_big_wheel_is_incompressible_deterministic_and_recorded(tmp_path: Path) -> None:
    first = build_big_wheel(tmp_path / "a", "weights", "1.0", 9 << 20, member_size=4 << 20)
    second = build_big_wheel(tmp_path / "b", "weights", "1.0", 9 << 20, member_size=4 << 20)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        sizes = {i.filename: i.file_size for i in zf.infolist() if i.filename.endswith(".bin")}
        assert sizes == {
            f"weights/weights-{n}.bin": s for n, s in enumerate([4 << 20] * 2 + [1 << 20])
        }
        record = zf.read("weights-1.0.dist-info/RECORD").decode().splitlines()
        for row in record:
            path, digest, size = row.split(",")
            if digest:
                data = zf.read(path)
                assert (digest, int(size)) == (_record_hash(data), len(data))
    assert first.stat().st_size > 9 << 20  # stored: random bytes do not shrink


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
