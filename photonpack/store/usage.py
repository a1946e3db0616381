"""Where the store's space goes: bytes by area, each file counted once.

Environments are hard links to the files of earlier environments, so adding
up ``du`` of each directory counts the same bytes several times. Here every
inode is counted once, in the first area that holds it (areas are walked in
:data:`AREAS` order); the bytes an area shares with an earlier one are
reported as ``linked``, not added again. Read-only: nothing is locked, moved
or removed, so it is safe while other photonpack processes run (a file that
vanishes during the walk is skipped).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["AREAS", "AreaUsage", "StoreUsage", "store_usage"]

#: The store's top-level directories, with what each holds, in counting order.
AREAS: dict[str, str] = {
    "blobs": "verified blobs: wheels and files of archives, downloads",
    "envs": "photon environments (hard links to files counted before)",
    "work": "working directories of run photons",
    "installed": "which environment holds each unpacked wheel",
    "manifests": "manifests of admitted photons",
    "archives": "archive files already verified",
    "refs": "photon names",
    "describe": "handler contracts read from built photons (a cache)",
    "inspected": "each wheel blob's Requires-Dist, read once by build (a cache)",
    "written": "archive files build wrote or run hashed, remembered by their identity",
    "built": "which wheel each build of a source gave (a cache)",
    "cache": "git repositories and source archives made from pins (a cache)",
    "deployments": "records of deployments made by photonpack deploy",
    "locks": "lock files of concurrent photonpack processes and live servers",
    "tmp": "temporary files of running (or dead) photonpack processes",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class AreaUsage:
    """One area: ``size`` bytes of its own, ``linked`` bytes counted in an earlier area."""

    area: str
    description: str
    files: int
    size: int
    linked: int

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoreUsage:
    root: Path
    areas: tuple[AreaUsage, ...]

    @property
    def total(self) -> int:
        """Bytes on disk (apparent sizes), each file once."""
        return sum(area.size for area in self.areas)

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "total": self.total,
            "areas": [area.to_dict() for area in self.areas],
        }


def store_usage(root: Path) -> StoreUsage:
    """Walk ``root`` once; areas not in :data:`AREAS` are reported under their own name."""
    present = sorted(entry.name for entry in _scandir(root) if entry.is_dir(follow_symlinks=False))
    order = [name for name in AREAS if name in present]
    order += [name for name in present if name not in AREAS]
    seen: set[tuple[int, int]] = set()
    areas = []
    for name in order:
        files = size = linked = 0
        for stat in _files(root / name):
            key = (stat.st_dev, stat.st_ino)
            files += 1
            if key in seen:
                linked += stat.st_size
                continue
            seen.add(key)
            size += stat.st_size
        description = AREAS.get(name, "not made by this version of photonpack")
        areas.append(
            AreaUsage(area=name, description=description, files=files, size=size, linked=linked)
        )
    return StoreUsage(root=root, areas=tuple(areas))


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _files(top: Path) -> Iterator[os.stat_result]:
    stack = [top]
    while stack:
        for entry in _scandir(stack.pop()):
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    yield entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
