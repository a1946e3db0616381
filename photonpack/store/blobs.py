"""Blobs on their way into the store: checked, then renamed in; the sink ``unpack`` writes to."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING

from photonpack.store.names import store_errors

if TYPE_CHECKING:
    from photonpack.store.store import Store

__all__ = ["BlobWriter", "StoreSink"]


class _AlreadyStored(Exception):
    """The blob being committed is already in the store: nothing to rename."""


class BlobWriter:
    """One blob on its way into the store: a temp file under ``tmp/``.

    ``commit`` re-hashes it (unless ``hashed``: the archive reader hashed the very
    chunks it wrote, and commits only on a match) and renames it into place; a
    blob that another process put there meanwhile is kept and the copy discarded. The store's
    own failures (a full disk) are :class:`StoreError` naming the store.
    """

    def __init__(self, store: Store, sha256: str, size: int, *, hashed: bool = False) -> None:
        self._store, self._sha256, self._size = store, sha256, size
        self._hashed = hashed
        with store_errors(store.root, f"write blob {sha256}"):
            self._atomic = store.blob_temp(store.blob_path(sha256))

    @property
    def file(self) -> IO[bytes]:
        return self._atomic.file

    def write(self, data: bytes | memoryview) -> object:
        with store_errors(self._store.root, f"write blob {self._sha256}"):
            return self._atomic.write(data)

    def commit(self) -> None:
        try:
            with store_errors(self._store.root, f"write blob {self._sha256}"):
                self._atomic.commit(check=self._check, sync_dir=False)
        except _AlreadyStored:
            pass  # the temp file is gone; the blob another run stored stays
        else:
            self._store.note_hashed(self._sha256)

    def _check(self, temp: Path) -> None:
        if not self._hashed:
            self._store._check_file(temp, self._sha256, self._size)
        if self._store.has_blob(self._sha256, self._size):  # a concurrent run was first
            raise _AlreadyStored

    def abort(self) -> None:
        self._atomic.abort()


class StoreSink:
    """Where ``archive.unpack`` puts the blobs of an archive being imported."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def has(self, sha256: str) -> bool:
        return self._store.has_blob(sha256)

    def open(self, sha256: str, size: int) -> BlobWriter:
        # unpack hashes every chunk it hands the writer and commits only on a match:
        # reading the temp file back to hash it again would be a second pass for nothing.
        return BlobWriter(self._store, sha256, size, hashed=True)
