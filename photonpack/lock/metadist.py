"""A wheel's METADATA as one pip distribution in memory, shared by every target of a lock.

pip's own path for a PEP 658 ``.metadata`` file writes it into a temporary
directory of the resolver step and reads it back; each target of a lock made its
own, and parsed the same METADATA (numpy's: 60 kB, its README included) five
times over: for its name, its version, its ``Requires-Dist`` and pip's check of
direct references. :func:`metadata_distribution` keeps the bytes in memory and
parses them once; the result is read-only (markers are evaluated when asked, in
the asking target's environment), so every target can use the same one.

Only with pip's ``importlib.metadata`` backend (Python 3.11 and later); with the
``pkg_resources`` backend, None: pip's own path.

:func:`wheel_metadata` reads a wheel's METADATA member alone (the zip's central
directory, then that member): a local wheel's, where pip's path for a ``file:``
link reads and hashes the whole file first, or a remote one's through
:func:`~photonpack.lock.remotezip.ranged_wheel`, where pip would download it whole.
"""

from __future__ import annotations

import functools
import pathlib
from typing import IO, Any

__all__ = ["metadata_distribution", "wheel_metadata"]


def metadata_distribution(metadata: bytes, filename: str) -> Any:
    """A pip distribution of the wheel ``filename``'s METADATA, or None (see above)."""
    kind = _in_memory()
    if kind is None:
        return None
    from pip._internal.metadata.importlib._dists import Distribution

    dist = kind({pathlib.PurePosixPath("METADATA"): metadata}, pathlib.PurePosixPath(filename))
    return Distribution(dist, None, None)


def wheel_metadata(wheel_file: str | IO[bytes]) -> bytes | None:
    """The ``*.dist-info/METADATA`` member of the wheel at ``wheel_file`` (a path or a seekable
    file), or None where pip should read the wheel its own way and report what is wrong (not
    a zip, unreadable, no or several ``.dist-info`` directories, a CRC that does not match)."""
    import zipfile
    import zlib

    try:
        with zipfile.ZipFile(wheel_file) as wheel:
            found = [
                name
                for name in wheel.namelist()
                if name.count("/") == 1 and name.endswith(".dist-info/METADATA")
            ]
            return wheel.read(found[0]) if len(found) == 1 else None
    except (OSError, ValueError, EOFError, NotImplementedError, zlib.error, zipfile.BadZipFile):
        return None


@functools.cache
def _in_memory() -> Any:
    from pip._internal.metadata import select_backend

    if getattr(select_backend(), "NAME", None) != "importlib":
        return None
    from pip._internal.metadata.importlib._dists import WheelDistribution

    class ParsedOnce(WheelDistribution):
        """pip's in-memory wheel metadata, its METADATA parsed at the first question."""

        _parsed: Any = None

        @property
        def metadata(self) -> Any:
            if self._parsed is None:
                self._parsed = super().metadata
            return self._parsed

    return ParsedOnce
