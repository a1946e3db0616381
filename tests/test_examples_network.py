"""examples/numpy_stats: locked from the public index, built, then served with no network."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from photonpack import Client
from photonpack.build import BuildOptions, build
from photonpack.lock.lockfile import read_lock
from photonpack.serving.source import parse_spec
from tests.support.offline import serve_offline
from tests.support.serving import Served

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "numpy_stats"


@pytest.mark.network
def test_numpy_example_builds_from_pypi_and_serves_from_its_archive(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    project = Path(shutil.copytree(EXAMPLE, tmp_path / "numpy_stats"))
    result = build(
        parse_spec(str(project / "stats.py")), BuildOptions(output=tmp_path / "stats.photon")
    )
    locked = {w.name: w.version for w in read_lock(project / "pylock.stats.toml").wheels()}
    [wheel] = [w for w in result.manifest.wheels if w.name == "numpy"]
    assert wheel.version == locked["numpy"]

    shutil.rmtree(project)  # the archive carries everything it needs
    served = serve_photon(str(result.path))
    client = Client(served.url)
    assert client.summary(values=[1.0, 2.0, 4.0, 5.0]) == {
        "mean": 3.0,
        "std": 1.5811388300841898,
        "min": 1.0,
        "max": 5.0,
    }
    assert client.version() == locked["numpy"]

    # Issue 5's acceptance: the archive alone, a fresh store, no network namespace at all.
    output = serve_offline(
        result.path,
        tmp_path / "airgap",
        """
        print(client.summary(values=[1.0, 2.0, 4.0, 5.0])["mean"], client.version())
        print(curl("/summary", {"values": [2.0, 4.0]}))
        print(curl("/version"))
        """,
    )
    assert output.splitlines() == [
        f"3.0 {locked['numpy']}",
        '{"mean":3.0,"std":1.0,"min":2.0,"max":4.0}',
        f'"{locked["numpy"]}"',
    ]
