"""Blob uploads fed chunk by chunk: a session per blob, and a thread that runs them in order.

:class:`BlobUpload` is the distribution API's upload (POST, PATCHes, final
PUT ``?digest=``) driven by ``write`` calls rather than by reading a file, so
a blob can go up while it is decompressed and hashed from an archive. The
final PUT names the digest the blob claims: the registry re-hashes and refuses
other bytes, whatever the uploader checked. :class:`UploadQueue` runs the
sessions in a second thread, so the network overlaps the reading; a blob is
only finished (``commit``) once its reader found its hash right.
"""

from __future__ import annotations

import os
import queue
import threading
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from photonpack.errors import IntegrityError
from photonpack.oci.progress import ProgressFn, Transfer

if TYPE_CHECKING:
    from photonpack.oci.client import RegistryClient

__all__ = ["BlobUpload", "UploadQueue"]

# Chunks in flight to the upload thread (the archive reader's 1 MiB chunks): bounded memory.
QUEUE_DEPTH = 32
# A blob up to this size goes up in its final PUT, one request after the POST; a larger
# one streams in PATCHes (nothing held in memory), then an empty PUT names its digest.
PUT_LIMIT = 1 << 20
# A file's bytes go to the socket (sendfile) in pieces of this size, progress told after each.
FILE_PIECE = 8 << 20


class BlobUpload:
    """One blob going up: ``write`` its bytes (or ``write_from`` a file), then ``finish``.

    A blob of at most ``min(chunk_size, PUT_LIMIT)`` bytes is held and goes up
    in the final PUT. A larger one streams to the registry as it is written,
    in PATCHes of at most ``chunk_size`` bytes whose length is announced up
    front, so nothing is buffered or copied here; the final PUT, empty, names
    the digest. Made by :meth:`RegistryClient.start_upload`.
    """

    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        *,
        digest: str,
        size: int,
        title: str,
        progress: ProgressFn | None,
        chunk_size: int,
    ) -> None:
        self._client, self._repository = client, repository
        self.digest, self.size, self.title = digest, size, title
        self._chunk_size = chunk_size
        self._whole = size <= min(chunk_size, PUT_LIMIT)
        self._report = progress or (lambda _t: None)
        self._buffer = bytearray()  # a small blob's bytes, for the final PUT
        self.received = 0  # bytes given to write()
        self._sent = 0  # bytes sent in PATCH bodies
        self._open = 0  # bytes the PATCH being sent still announces
        response = client._request(
            "POST", f"/v2/{repository}/blobs/uploads/", repository, push=True
        )
        if response.status != 202:
            raise client._error(response, f"starting the upload of {digest}")
        self._location = client._location(response)
        self._progress(0)

    def _progress(self, done: int) -> None:
        self._report(Transfer(digest=self.digest, title=self.title, done=done, total=self.size))

    def write(self, data: bytes | memoryview) -> None:
        """Take the next bytes of the blob: a large blob's go to the registry at once."""
        self.received += len(data)
        if self._whole:
            self._buffer += data
            return
        view = memoryview(data)[: self.size - self._sent]  # more than the blob: finish refuses
        while view:
            if not self._open:
                self._begin_patch()
            part = view[: self._open]
            self._client._send_body(part)
            self._account(len(part))
            view = view[len(part) :]
        self._progress(self._sent)

    def write_from(self, fh: BinaryIO) -> None:
        """The blob's bytes from the rest of the regular file ``fh``, sent by the kernel."""
        start = fh.tell()
        available = os.fstat(fh.fileno()).st_size - start
        if self._whole or available != self.size:
            self.received = min(available, self.size + 1)  # the wrong size: finish refuses
            if self._whole and available == self.size:
                self._buffer += fh.read(self.size)
            return
        while self._sent < self.size:
            if not self._open:
                self._begin_patch()
            count = min(self._open, FILE_PIECE)
            sent = self._client._send_file(fh, start + self._sent, count)
            self.received += sent
            if sent != count:  # the file shrank under us
                return
            self._account(sent)
            self._progress(self._sent)

    def _begin_patch(self) -> None:
        length = min(self._chunk_size, self.size - self._sent)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{self._sent}-{self._sent + length - 1}",
        }
        self._client._begin_body("PATCH", self._location, self._repository, length, headers)
        self._open = length

    def _account(self, sent: int) -> None:
        """``sent`` more bytes of the open PATCH went out; its answer read once it is whole."""
        self._open -= sent
        self._sent += sent
        if not self._open:
            response = self._client._end_body()
            if response.status != 202:
                raise self._client._error(response, f"uploading a chunk of {self.digest}")
            self._location = self._client._location(response)

    def finish(self) -> None:
        """The final PUT, naming the digest: the registry refuses bytes that do not match it."""
        if self.received != self.size:
            self.cancel()
            raise IntegrityError(
                f"blob {self.digest} ({self.title or 'no name'}) should be {self.size} bytes, "
                f"read {self.received}: the local file changed during the push; rebuild or "
                "re-verify it"
            )
        body = bytes(self._buffer)
        self._buffer.clear()
        sep = "&" if "?" in self._location else "?"
        response = self._client._request(
            "PUT",
            f"{self._location}{sep}digest={urllib.parse.quote(self.digest)}",
            self._repository,
            push=True,
            body=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        if response.status != 201:
            raise self._client._error(response, f"finishing the upload of {self.digest}")
        self._progress(self.size)

    def cancel(self) -> None:
        """Drop the upload session (best effort: the registry expires it anyway)."""
        self._buffer.clear()
        if self._open:  # a PATCH body left unfinished: that connection is unusable
            self._open = 0
            self._client.close()
        try:
            self._client._request("DELETE", self._location, self._repository, push=True)
        except Exception:  # noqa: BLE001 - cleaning up after a failure already being reported
            return


_OPEN, _DATA, _COMMIT, _ABORT, _STOP = range(5)


@dataclass(frozen=True, kw_only=True)
class _Blob:
    digest: str
    size: int
    title: str


class _QueuedWriter:
    """A :class:`photonpack.archive.BlobWriter` whose bytes go to the upload thread."""

    def __init__(self, uploads: UploadQueue) -> None:
        self._uploads = uploads

    def write(self, data: bytes | memoryview) -> None:
        self._uploads._put(_DATA, data)

    def commit(self) -> None:
        self._uploads._put(_COMMIT, None)

    def abort(self) -> None:
        self._uploads._put(_ABORT, None)


class UploadQueue:
    """Blob uploads to ``repository`` run one after another in a second thread.

    ``open`` starts a blob and returns its writer; ``commit`` finishes it with
    the final PUT, ``abort`` drops it. A failure in the thread is raised at the
    next call, and by ``close``, which waits for every upload to end. The
    client is the thread's alone until ``close`` returns.
    """

    def __init__(
        self, client: RegistryClient, repository: str, progress: ProgressFn | None = None
    ) -> None:
        self._client, self._repository, self._progress = client, repository, progress
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(QUEUE_DEPTH)
        self._failure: BaseException | None = None
        self.uploaded: list[str] = []
        self._thread = threading.Thread(target=self._run, name="photonpack-upload", daemon=True)
        self._thread.start()

    def open(self, digest: str, size: int, title: str) -> _QueuedWriter:
        """Start uploading ``digest`` (``size`` bytes): its bytes follow through the writer."""
        self._put(_OPEN, _Blob(digest=digest, size=size, title=title))
        return _QueuedWriter(self)

    def _put(self, op: int, value: object) -> None:
        while True:
            if self._failure is not None:
                raise self._failure
            try:
                self._queue.put((op, value), timeout=0.1)
            except queue.Full:
                continue
            return

    def _run(self) -> None:
        upload: BlobUpload | None = None
        while True:
            op, value = self._queue.get()
            if op == _STOP:
                return
            if self._failure is not None:  # drain until told to stop
                if upload is not None:
                    upload.cancel()
                    upload = None
                continue
            try:
                if op == _OPEN:
                    assert isinstance(value, _Blob)
                    upload = self._client.start_upload(
                        self._repository,
                        digest=value.digest,
                        size=value.size,
                        title=value.title,
                        progress=self._progress,
                    )
                elif op == _DATA and upload is not None:
                    upload.write(value)  # type: ignore[arg-type]
                elif op == _COMMIT and upload is not None:
                    upload.finish()
                    self.uploaded.append(upload.digest)
                    upload = None
                elif op == _ABORT and upload is not None:
                    upload.cancel()
                    upload = None
            except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                self._failure = exc
                if upload is not None:
                    upload.cancel()

    def close(self, *, wait: bool = True) -> None:
        """Wait for the uploads to end (``wait=False``: after a failure, drop the rest)."""
        if not self._thread.is_alive():
            return
        if not wait and self._failure is None:
            self._failure = _Stopped()
        self._queue.put((_STOP, None))
        self._thread.join()
        if wait and self._failure is not None:
            raise self._failure

    def __enter__(self) -> UploadQueue:
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        self.close(wait=exc_type is None)


class _Stopped(Exception):
    """The reading side failed: the uploads still queued are dropped."""
