"""A package index holding the real serving stack, repacked from the test venv.

Build and run tests lock, install and serve real photons offline: the index
serves fastapi, uvicorn, pydantic, ... exactly as installed here, plus test
wheels (numpy stand-ins and the like) that a test adds. One index per session:
repacking takes a second or two and the wheels never change.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from photonpack.build import BuildOptions, BuildResult, build
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions
from photonpack.serving.requirements import LEPTON_REQUIREMENTS, SERVING_REQUIREMENTS
from photonpack.serving.source import parse_spec
from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.repack import closure, repack
from tests.support.wheels import build_wheel

__all__ = ["COUNTER", "build_photon", "counter_archive", "real_index", "write_photon"]

COUNTER = '''
from photonpack import Photon


class Counter(Photon):
    """Counts."""

    requirement_dependency = ["tinydep>=1.0"]

    def init(self):
        self.counter = 0

    @Photon.handler
    def add(self, x: int) -> int:
        """Add x."""
        self.counter += x
        return self.counter

    @Photon.handler("sub")
    def sub(self, x: int) -> int:
        return self.add(-x)
'''


def write_photon(directory: Path, source: str = COUNTER, name: str = "counter.py") -> Path:
    """Write a photon source file (dedented) into ``directory`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """An index with the real serving stack and ``tinydep`` 1.0 / 2.0 (pure Python)."""
    root = tmp_path_factory.mktemp("real-index")
    index = PackageIndex(root)
    # flask: examples/lepton_full; LEPTON_REQUIREMENTS: what photons written for Lepton get.
    for name in closure((*SERVING_REQUIREMENTS, *LEPTON_REQUIREMENTS, "flask")):
        repack(name, index.files_dir)
    for version in ("1.0", "2.0"):
        build_wheel(index.files_dir, "tinydep", version)
    index.start()
    try:
        yield index
    finally:
        index.stop()
        shutil.rmtree(root, ignore_errors=True)


def build_photon(
    index: PackageIndex,
    photon: Path,
    output: Path,
    *,
    store: Store | None = None,
    **options: object,
) -> BuildResult:
    """Build ``photon`` from ``index`` into ``output`` (library call, no CLI)."""
    lock = LockOptions(index=IndexSettings(index_url=index.url))
    return build(
        parse_spec(str(photon)),
        BuildOptions(output=output, lock=lock, **options),  # type: ignore[arg-type]
        store=store,
    )


@pytest.fixture(scope="session")
def counter_archive(real_index: PackageIndex, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The counter photon, built once per session; tests copy it and run it cold."""
    root = tmp_path_factory.mktemp("counter-build")
    photon = write_photon(root / "src")
    result = build_photon(real_index, photon, root / "counter.photon", store=Store(root / "home"))
    return result.path
