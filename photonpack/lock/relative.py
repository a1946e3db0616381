"""Local locations in a lock, recorded relative to the lock file's directory.

A lock travels with its project. PEP 751 says a relative ``path`` is relative
to the lock file's directory, so a wheel found on this machine is recorded as
``path = "wheels/beta-2.0-py3-none-any.whl"`` rather than as an absolute
``file://`` URL, and ``[tool.photonpack.index]`` records local ``--find-links``
directories and ``file://`` index URLs the same way: copying or moving the
project changes neither the lock's bytes nor its inputs digest.

A location outside the lock's directory is recorded with ``..`` segments
(``../wheelhouse``): PEP 751 puts no limit on a relative path, and pip
resolves it the same way. Only a location no relative path reaches (another
drive on Windows) stays absolute.

In memory every location is absolute again (resolved against the lock's
directory when the lock is read), so what fetches and resolves never sees a
relative one. A lock read under a relative name (its copy inside an archive)
keeps relative locations relative: nothing fetches from those.
Standard library only.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

__all__ = ["is_file_url", "local_path", "recorded", "resolved_path", "resolved_url"]


def is_file_url(location: str) -> bool:
    """Whether ``location`` is a ``file:`` URL."""
    return location[:5].lower() == "file:"


def local_path(location: str) -> Path | None:
    """The file or directory a local location names (a path or a ``file:`` URL), else None."""
    if is_file_url(location):
        path = urllib.parse.urlsplit(location).path
        if os.name == "nt":  # drive letters; urllib.request costs ssl and http.client elsewhere
            from urllib.request import url2pathname

            return Path(url2pathname(path))
        return Path(urllib.parse.unquote(path))
    if "://" in location:
        return None
    return Path(location)


def recorded(path: Path, base: Path) -> str:
    """``path`` as the lock records it: POSIX, relative to ``base`` (the lock's directory)."""
    try:
        relative = os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # no relative path between them (another drive)
        return path.resolve().as_posix()
    return Path(relative).as_posix()


def resolved_path(location: str, base: Path) -> str:
    """A recorded path, made absolute against ``base`` (kept relative when ``base`` is)."""
    return os.path.normpath(base / location)


def resolved_url(location: str, base: Path) -> str:
    """A recorded location as a URL: a relative one becomes a ``file://`` URL under ``base``."""
    if "://" in location or is_file_url(location):
        return location
    joined = Path(resolved_path(location, base))
    return joined.as_uri() if joined.is_absolute() else joined.as_posix()
