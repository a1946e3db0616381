"""The bytecode compiler: worker processes of the environment's python writing pycs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from photonpack.errors import InstallError
from photonpack.install.bytecode import BytecodeCompiler
from photonpack.install.interpreter import describe_interpreter
from photonpack.install.record import record_hash
from photonpack.install.venv import create_venv


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
