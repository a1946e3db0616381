"""What ``photonpack gc`` removes from the store's build cache (``built/``) and ``cache/``.

The policy, beside the rest of gc's (``photonpack.store.gc``):

- ``built/<key>.json`` records which wheel a build of a source gave (the
  builder's cache, :mod:`photonpack.wheelbuild.builder`). A record goes when
  no kept photon lists that wheel: its blob goes with the other unlisted
  blobs, and a record of a wheel no longer stored only costs a lookup.
- ``cache/sources/<sha256>.tar.gz``, the source archives made from pins,
  goes unless a kept photon carries it or it was made or used within the keep
  window; a pin record (``cache/sources/pins/``) goes with the archive it names.
- ``cache/git/<key>``, a bare repository per git URL, goes when no lock or
  build used it within the keep window (each use touches it): the next lock
  of a commit it held fetches it again.
- ``cache/downloads/``: an archive URL is downloaded again at every lock, so
  what is there is never read again; it all goes.
- Temporary files (``.tmp-*``, a repository being created) older than an hour.

Everything here reads the store only; gc removes what it returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

__all__ = ["built_garbage", "cache_garbage"]

#: A temporary entry this old is stale (as in photonpack.store.gc).
_STALE_TMP_S = 3600


def built_garbage(root: Path, kept_blobs: set[str]) -> list[Path]:
    """The ``built/`` records whose wheel no kept photon lists (or that cannot be read)."""
    return [p for p in _entries(root / "built") if _built_wheel(p) not in kept_blobs]


def cache_garbage(root: Path, kept_blobs: set[str], cutoff: float) -> list[Path]:
    """The ``cache/`` entries no kept photon needs and nothing used since ``cutoff``."""
    cache = root / "cache"
    sources = cache / "sources"
    garbage, kept_archives = [], set()
    for path in _entries(sources):
        if path.name.endswith(".tar.gz") and not path.name.startswith("."):
            sha256 = path.name.removesuffix(".tar.gz")
            if sha256 in kept_blobs or _mtime(path) >= cutoff:
                kept_archives.add(sha256)
            else:
                garbage.append(path)
        elif _temporary(path) and _stale(path):
            garbage.append(path)
    for pin in _entries(sources / "pins"):
        if _stale(pin) if _temporary(pin) else _pin_archive(pin) not in kept_archives:
            garbage.append(pin)
    for repository in _entries(cache / "git"):
        if _mtime(repository) < cutoff or (_temporary(repository) and _stale(repository)):
            garbage.append(repository)
    garbage += _entries(cache / "downloads")
    return sorted(garbage)


def _built_wheel(record: Path) -> str | None:
    try:
        sha256 = json.loads(record.read_bytes())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return sha256 if isinstance(sha256, str) else None


def _pin_archive(pin: Path) -> str | None:
    try:
        return pin.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _temporary(path: Path) -> bool:
    return path.name.startswith(".")


def _stale(path: Path) -> bool:
    return _mtime(path) < time.time() - _STALE_TMP_S


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _entries(directory: Path) -> list[Path]:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(directory) as found:
        return [Path(entry.path) for entry in found]
    return []
