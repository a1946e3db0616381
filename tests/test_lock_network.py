"""Locking real packages from the public index (marked network; quick)."""

from __future__ import annotations

import hashlib
import textwrap
import urllib.request
from pathlib import Path

import pytest

from photonpack.lock.lockfile import LockOptions, lock_photon
from photonpack.lock.target import Target
from photonpack.serving.source import parse_spec

pytestmark = pytest.mark.network


def test_numpy_locks_for_x86_64_and_aarch64_from_pypi(tmp_path: Path) -> None:
    (tmp_path / "np.py").write_text(
        textwrap.dedent(
            """
            from photonpack import Photon

            class Np(Photon):
                requirement_dependency = ["numpy<3", "six"]
            """
        )
    )
    x86 = Target.parse("cp311-manylinux_2_28_x86_64")
    arm = Target.parse("cp312-manylinux_2_28_aarch64")
    lock = lock_photon(parse_spec("np.py", root=tmp_path), LockOptions(targets=(x86, arm))).lock
    numpy = {str(t): next(w for w in lock.wheels_for(t) if w.name == "numpy") for t in (x86, arm)}
    assert "cp311" in numpy[str(x86)].filename and "x86_64" in numpy[str(x86)].filename
    assert "cp312" in numpy[str(arm)].filename and "aarch64" in numpy[str(arm)].filename
    assert {"fastapi", "uvicorn", "pydantic", "pydantic-core"} <= {p.name for p in lock.packages}
    six = next(w for w in lock.wheels() if w.name == "six")
    with urllib.request.urlopen(six.url) as response:
        data = response.read()
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (six.sha256, six.size)
