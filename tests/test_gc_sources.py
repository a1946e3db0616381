"""``photonpack gc`` and the build and source caches: ``built/`` and ``cache/`` of a real store.

A photon with a git requirement (a repository made here) is built into the
test's store, which fills ``built/`` (the wheel built from the commit),
``cache/git/`` (the repository's objects) and ``cache/sources/`` (the archive
exported from the commit, and its pin). gc runs as a user runs it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from photonpack.store import Store, locks
from tests.support.index import PackageIndex
from tests.support.stack import build_photon
from tests.test_gc import _freed, _gc, _name, _photonpack
from tests.test_lock_sources import index, photon, repository  # noqa: F401


def _du() -> dict[str, Any]:
    done = _photonpack("store", "du", "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _listing(home: Path) -> dict[str, list[str]]:
    areas = ("built", "cache/git", "cache/sources", "cache/sources/pins", "cache/downloads")
    return {
        area: sorted(p.name for p in (home / area).glob("*") if p.name != "pins") for area in areas
    }


def _built_photon(index: PackageIndex, tmp_path: Path, home: Path) -> Path:  # noqa: F811
    repo = repository(tmp_path / "repo")
    source = photon(tmp_path / "src", f"mylib @ git+{repo.as_uri()}@main")
    result = build_photon(index, source, tmp_path / "svc.photon", store=Store(home))
    locks.release()  # this process's hold on the store ends, as a command's would
    listing = _listing(home)
    assert len(listing["built"]) == 1 and len(listing["cache/git"]) == 1
    assert len(listing["cache/sources"]) == 1 and len(listing["cache/sources/pins"]) == 1
    return result.path


def test_gc_removes_the_caches_of_a_photon_no_one_keeps(
    index: PackageIndex,  # noqa: F811
    tmp_path: Path,
    photonpack_home: Path,
) -> None:
    _built_photon(index, tmp_path, photonpack_home)
    usage = {a["area"]: a for a in _du()["areas"]}
    assert usage["built"]["description"] == "which wheel each build of a source gave (a cache)"
    assert usage["cache"]["size"] > 0
    dry = _gc("--keep-recent", "0", "--dry-run")
    assert _freed(dry)["built"] == 1 and _freed(dry)["cache"] == 3
    assert len(_listing(photonpack_home)["built"]) == 1  # a dry run removes nothing

    report = _gc("--keep-recent", "0")
    assert _freed(report)["built"] == 1
    assert _freed(report)["cache"] == 3  # the repository, the source archive, its pin
    cache = next(a for a in report["areas"] if a["area"] == "cache")
    assert cache["size"] > 0
    assert all(not names for names in _listing(photonpack_home).values())


def test_gc_keeps_what_a_named_photon_carries_and_a_recently_used_repository(
    index: PackageIndex,  # noqa: F811
    tmp_path: Path,
    photonpack_home: Path,
) -> None:
    archive = _built_photon(index, tmp_path, photonpack_home)
    _name(photonpack_home, archive, "svc")
    before = _listing(photonpack_home)

    assert "built" not in _freed(_gc())  # default window: the repository was just used
    assert _listing(photonpack_home) == before

    (record,) = (photonpack_home / "built").iterdir()
    wheel = json.loads(record.read_text())["sha256"]
    old = 1_000_000_000  # 2001: long out of any window
    (repository_dir,) = (photonpack_home / "cache" / "git").iterdir()
    os.utime(repository_dir, (old, old))
    report = _gc()
    assert _freed(report) == {"cache": 1}  # the repository nobody used for a week
    after = _listing(photonpack_home)
    assert after["cache/git"] == [] and after["built"] == before["built"]
    assert after["cache/sources"] == before["cache/sources"]  # the named photon carries it
    assert (photonpack_home / "blobs" / "sha256" / wheel).is_file()
