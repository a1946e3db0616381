"""A big archive's blobs written while they download, before its manifest is known.

A big archive (``SPLIT_SIZE`` bytes of blobs or more) is a head (the manifest's
frame padded to ``HEAD_ALIGN``) and one frame of blobs that depends on the blobs
alone (``archive/__init__.py``). ``build`` knows every blob an archive will hold
once the lock and the photon's files are read, long before the describe that
completes the manifest: :class:`EarlyBody` writes that frame after the head's
room as each blob arrives, in the archive's order, on a thread of its own, while
the others download; :meth:`EarlyBody.finish` then writes the head. A torch
photon's 2.7 GB are compressed during a ~12 s download instead of after it.

The head's room is guessed from a provisional manifest (everything but the
handler contract, plus ``CONTRACT_ALLOWANCE``). When the real head is another
size, or the manifest lists other blobs, ``finish`` says so and the caller
writes the archive from the start as any writer does: the bytes are the same
whichever way they were made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from photonpack.archive import BodyWriter, archive_head, head_size, manifest_frame
from photonpack.archive.manifest import Manifest

__all__ = ["CONTRACT_ALLOWANCE", "EarlyBody"]

# What a handler contract (handlers, OpenAPI, attributes) adds to the compressed head.
CONTRACT_ALLOWANCE = 12 << 10
# One zstd worker beside the downloads: the frame's bytes do not depend on the number of
# threads, and one worker (~700 MB/s at level 1) outruns any download.
_THREADS = 1


class EarlyBody:
    """Writes ``provisional``'s blobs to ``out`` (a new, empty, seekable file) as they arrive.

    ``arrived(sha256)`` says a blob is whole and verified in the store (from any
    thread); blobs in ``present`` are there already. Leaving the ``with`` block
    without :meth:`finish` stops the thread; the caller discards ``out``.
    """

    def __init__(
        self,
        out: BinaryIO,
        provisional: Manifest,
        blob_path: Callable[[str], Path],
        *,
        mtime: int,
        present: Collection[str] = (),
    ) -> None:
        self._out = out
        self._blobs = provisional.blobs()
        self._blob_path = blob_path
        self._mtime = mtime
        guess = len(manifest_frame(provisional, mtime=mtime)) + CONTRACT_ALLOWANCE
        self.reserved = head_size(guess)
        self.written = 0  # bytes of blobs written so far
        self._ready = {sha256: threading.Event() for sha256 in self._blobs}
        self._hashed: set[str] = set()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        for sha256 in present:
            self._ready[sha256].set()
        out.seek(self.reserved)
        self._writer = BodyWriter(
            out,
            self._blobs,
            provisional.blob_labels(),
            mtime=mtime,
            progress=self._progress,
            threads=_THREADS,
        )
        self._thread = threading.Thread(target=self._run, name="photonpack-archive", daemon=True)
        self._thread.start()

    def arrived(self, sha256: str, *, hashed: bool) -> None:
        """Blob ``sha256`` is in the store, verified (``hashed``: by this process, just now)."""
        if sha256 in self._ready:
            if hashed:
                self._hashed.add(sha256)
            self._ready[sha256].set()

    def _progress(self, done: int) -> None:
        self.written = done

    def _run(self) -> None:
        try:
            for sha256 in self._blobs:
                while not self._ready[sha256].wait(0.1):
                    if self._stop.is_set():
                        return
                if self._stop.is_set():
                    return
                path = self._blob_path(sha256)
                self._writer.add_file(sha256, path, hashed=sha256 in self._hashed)
            self._writer.close()
        except BaseException as exc:  # noqa: BLE001  # handed to the thread that waits
            self._error = exc

    def finish(self, manifest: Manifest, progress: Callable[[int], None] | None = None) -> bool:
        """Wait for the blobs, then write ``manifest``'s head; False when the body is not the
        one ``manifest``'s archive holds (other blobs, or a head of another size): the
        caller then writes the archive from the start. ``progress``: the bytes written."""
        missing = [sha256 for sha256, ready in self._ready.items() if not ready.is_set()]
        if missing or manifest.blobs() != self._blobs:
            self.close()
            return False
        while self._thread.is_alive():
            self._thread.join(0.1)
            if progress is not None:
                progress(self.written)
        if self._error is not None:
            raise self._error
        head = archive_head(manifest, mtime=self._mtime)
        if len(head) != self.reserved:
            return False
        self._out.seek(0)
        self._out.write(head)
        self._out.seek(0, 2)
        return True

    def close(self) -> None:
        """Stop the thread (what it wrote is left for the caller to discard)."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> EarlyBody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
