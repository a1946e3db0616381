"""Where ``unpack`` puts verified blobs: the BlobSink protocol and three sinks.

A sink sees a blob's bytes while they are hashed and learns the verdict at the
end: ``commit`` only after the sha256 and size matched, ``abort`` otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from photonpack._fs import AtomicFile

__all__ = ["BlobSink", "BlobWriter", "DirectorySink", "MemorySink", "NullSink"]


class BlobWriter(Protocol):
    """Where one blob's bytes go while ``unpack`` hashes them."""

    def write(self, data: bytes | memoryview) -> object:
        """Take the next chunk."""

    def commit(self) -> object:
        """The blob matched its digest and size: make it visible."""

    def abort(self) -> None:
        """The blob did not match, or reading failed: discard what was written."""


class BlobSink(Protocol):
    """The destination of ``unpack``: it decides which blobs it wants written."""

    def has(self, sha256: str) -> bool:
        """True to skip writing this blob (``unpack`` still hashes it)."""

    def open(self, sha256: str, size: int) -> BlobWriter:
        """Start receiving the blob ``sha256`` of ``size`` bytes."""


class NullSink:
    """Keeps nothing: ``unpack`` into it is a pure verification."""

    def has(self, sha256: str) -> bool:
        """Every blob is skipped."""
        return True

    def open(self, sha256: str, size: int) -> BlobWriter:  # pragma: no cover - has() is True
        """Never called."""
        raise AssertionError("NullSink keeps no blob")


class _MemoryWriter:
    def __init__(self, sink: MemorySink, sha256: str) -> None:
        self._sink, self._sha256, self._parts = sink, sha256, list[bytes]()

    def write(self, data: bytes | memoryview) -> object:
        self._parts.append(bytes(data))
        return None

    def commit(self) -> None:
        self._sink.blobs[self._sha256] = b"".join(self._parts)

    def abort(self) -> None:
        self._parts.clear()


class MemorySink:
    """Keeps the ``wanted`` blobs in memory (small ones only: the lock, a source file)."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.blobs: dict[str, bytes] = {}

    def has(self, sha256: str) -> bool:
        """Only the wanted blobs are written."""
        return sha256 not in self.wanted

    def open(self, sha256: str, size: int) -> BlobWriter:
        """Collect the blob's chunks."""
        return _MemoryWriter(self, sha256)


class DirectorySink:
    """Writes each blob to ``root/<hex>`` (temp file, fsync, rename after the hash matched).

    ``sync=False``: no fsync, for a scratch directory that a crash may lose whole.
    """

    def __init__(self, root: Path, *, sync: bool = True) -> None:
        self.root = root
        self._sync = sync
        root.mkdir(parents=True, exist_ok=True)

    def has(self, sha256: str) -> bool:
        """A blob already in ``root`` is not written again."""
        return (self.root / sha256).is_file()

    def open(self, sha256: str, size: int) -> BlobWriter:
        """A temp file beside the final name (hashed by ``unpack`` before ``commit``)."""
        atomic = AtomicFile(self.root / sha256)
        return atomic if self._sync else _Unsynced(atomic)


class _Unsynced:
    """An :class:`AtomicFile` renamed into place without an fsync."""

    def __init__(self, atomic: AtomicFile) -> None:
        self._atomic = atomic

    def write(self, data: bytes | memoryview) -> object:
        return self._atomic.write(data)

    def commit(self) -> object:
        return self._atomic.commit(sync=False)

    def abort(self) -> None:
        self._atomic.abort()
