"""Local sources in a lock written elsewhere (``lock -o``): paths relative to the lock (PEP 751).

A requirement line's path is relative to the photon's directory; PEP 751 says
a lock's ``directory.path`` and ``sdist.path`` are relative to the lock file's
directory. A lock kept in another directory must record them from there, and
``build`` and ``lock --check`` must find them from there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.pylock import Pylock

from photonpack.build import BuildOptions, build
from photonpack.errors import StaleLockError
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, check_lock, lock_photon
from photonpack.lock.pylock import load_toml
from photonpack.serving.source import parse_spec
from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.sdists import build_sdist
from tests.test_lock_sources import entry, index, photon, project  # noqa: F401


def test_a_lock_elsewhere_records_local_sources_relative_to_itself_and_builds(
    index: PackageIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    project(tmp_path / "src" / "mylib")
    build_sdist(tmp_path / "links", "linked", "1.0")
    source = photon(tmp_path / "src", "./mylib", "linked")
    lock_path = tmp_path / "locks" / "pylock.svc.toml"
    lock_path.parent.mkdir()
    options = LockOptions(
        output=lock_path,
        index=IndexSettings(index_url=index.url, find_links=(str(tmp_path / "links"),)),
    )
    spec = parse_spec(str(source))
    lock_photon(spec, options)
    assert entry(lock_path, "mylib")["directory"] == {"path": "../src/mylib", "editable": False}
    linked = entry(lock_path, "linked")["sdist"]
    assert linked["path"] == "../links/linked-1.0.tar.gz" and "url" not in linked
    read = Pylock.from_dict(load_toml(lock_path.read_text(), path=lock_path))  # pip's and uv's
    assert {p.name for p in read.packages} >= {"mylib", "linked"}

    result = build(
        spec,
        BuildOptions(output=tmp_path / "svc.photon", lock=options),
        store=Store(tmp_path / "home"),
    )
    assert {w.name for w in result.manifest.wheels if w.source is not None} == {"mylib", "linked"}
    check_lock(spec, options)  # fresh: the project is found from the lock's directory
    (tmp_path / "src" / "mylib" / "mylib" / "__init__.py").write_text("VALUE = 2\n")
    with pytest.raises(StaleLockError, match=r"local project \.\./src/mylib changed"):
        check_lock(spec, options)


def test_a_lock_beside_the_photon_keeps_the_path_as_written(
    index: PackageIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    project(tmp_path / "src" / "mylib")
    source = photon(tmp_path / "src", "./mylib")
    lock_photon(parse_spec(str(source)), LockOptions(index=IndexSettings(index_url=index.url)))
    directory = entry(tmp_path / "src" / "pylock.svc.toml", "mylib")["directory"]
    assert directory == {"path": "./mylib", "editable": False}
