"""The two sides ``photonpack diff`` compares: an archive's manifest, or a lock file's wheels.

A side is what :func:`photonpack.diff.diff` takes: its label, its photon
digest (archives only), its wheels with the targets that install each, and
for an archive the whole manifest (files, handlers, attributes).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from photonpack.archive.manifest import Manifest, WheelEntry

if TYPE_CHECKING:
    from photonpack.lock.pylock import Lock
    from photonpack.lock.standard import StandardLock

__all__ = ["Side", "load_side", "side_from_lock", "side_from_manifest", "side_from_standard_lock"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Side:
    """One side of a diff: an archive's manifest, or a lock file (wheels only)."""

    label: str
    digest: str | None
    wheels: tuple[WheelEntry, ...]
    targets: tuple[str, ...]
    manifest: Manifest | None = None

    @property
    def size(self) -> int:
        """The payload size: every distinct blob of an archive, or the locked wheels."""
        if self.manifest is not None:
            return self.manifest.total_size
        return sum({w.sha256: w.size for w in self.wheels}.values())


def side_from_manifest(manifest: Manifest, label: str) -> Side:
    """The side of an archive."""
    return Side(
        label=label,
        digest=manifest.digest,
        wheels=manifest.wheels,
        targets=manifest.targets,
        manifest=manifest,
    )


def side_from_lock(lock: Lock, label: str) -> Side:
    """The side of a lock file: its wheels, with the targets that install each."""
    targets: dict[str, list[str]] = {}
    for target in lock.targets:
        for wheel in lock.wheels_for(target):
            targets.setdefault(wheel.filename, []).append(str(target))
    wheels = tuple(
        WheelEntry(
            filename=w.filename,
            name=w.name,
            version=w.version,
            sha256=w.sha256,
            size=w.size,
            targets=tuple(sorted(targets[w.filename])),
        )
        for w in lock.wheels()
        if w.filename in targets
    )
    return Side(
        label=label,
        digest=None,
        wheels=wheels,
        targets=tuple(sorted(str(t) for t in lock.targets)),
    )


def side_from_standard_lock(lock: StandardLock, label: str) -> Side:
    """The side of a PEP 751 lock another tool wrote: every artifact of every package, no targets.

    An sdist, archive, VCS commit or directory stands beside the wheels, so a
    changed commit or sdist hash shows as a wheel's would. A size the lock does
    not record counts as 0.
    """
    entries = {
        (p.name, p.described_version, a.label): WheelEntry(
            filename=a.label,
            name=p.name,
            version=p.described_version,
            sha256=a.sha256 or "",
            size=a.size or 0,
            targets=(),
        )
        for p in lock.packages
        for a in p.artifacts
    }
    return Side(
        label=label,
        digest=None,
        wheels=tuple(entries[key] for key in sorted(entries)),
        targets=(),
    )


def load_side(path: Path) -> Side:
    """Read one side from disk: a ``.toml`` lock file (any PEP 751 lock), else an archive."""
    if path.suffix == ".toml":
        from photonpack.lock.lockfile import read_lock
        from photonpack.lock.pylock import load_toml
        from photonpack.lock.standard import is_photonpack_lock, read_any_lock

        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return side_from_lock(read_lock(path), str(path))  # which says what is wrong
        if is_photonpack_lock(load_toml(text, path=path)):
            return side_from_lock(read_lock(path), str(path))
        return side_from_standard_lock(read_any_lock(path), str(path))
    from photonpack.archive import read_manifest

    return side_from_manifest(read_manifest(path), str(path))
