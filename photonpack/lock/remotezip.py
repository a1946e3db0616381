"""A remote wheel as a seekable file whose bytes arrive by HTTP range requests, on demand.

Some of PyPI's biggest wheels have no PEP 658 ``core-metadata`` (triton 3.9.0:
286 MB), and pip's own path downloads such a wheel whole to read its METADATA.
:func:`ranged_wheel` lets :func:`photonpack.lock.metadist.wheel_metadata` read the
zip (end-of-central-directory, zip64 records, central directory, the METADATA
member) from a handful of ranges instead, as uv does and pip's
``--use-feature=fast-deps``: one request for the file's tail (:data:`TAIL`:
the central directory of most wheels, often the METADATA member too, since the
``.dist-info`` files are written last), a second when the directory is bigger,
one for the member if it lies before the tail. A few hundred kB, not 286 MB.

Any answer that is not exactly the bytes asked for (a server ignoring ``Range``
with a 200, a 416, a short body, a ``Content-Range`` for another span or another
file size) raises :class:`RangeRefused`, and the caller takes its whole-download
path: a different server costs time, never a different result. A 200 is closed
at once, unread, so that the fallback does not become a second whole download.

Trust. The METADATA read this way is not checked against the page's sha256 at
lock time (neither is pip's own PEP 658 file when the page gives no hash of it).
It is safe because the lock keeps only what ``build`` checks again on the real,
verified bytes before any archive exists:

* ``build`` downloads every locked wheel and refuses it unless its sha256 and
  size are the lock's (``lock/download.py``), so the wheel it checks is the one
  the page named;
* its METADATA's Name and Version must be its file name's (``inspect_wheel``,
  ``install/metadata.py``); the lock's name and version of a wheel are its file
  name's too (``SharedIndex`` also drops a ranged METADATA that disagrees with
  the file name);
* every ``Requires-Dist`` line of that METADATA whose marker holds on a target,
  extras included, must be met by a package the lock pins for that target
  (``lock/closure.py``, called by ``build``): a requirement the ranged METADATA
  hid, or a bound it loosened, is refused with "lock file ... is incomplete".

A ranged METADATA that asked for *more* than the wheel does can only make the
lock pin an extra, itself verified, package: a bigger archive, never a broken one.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any, BinaryIO

__all__ = ["TAIL", "RangeRefused", "RangedWheel", "http_ranges", "ranged_wheel"]

# The first request: the last TAIL bytes (triton 3.9.0's central directory: 65 kB).
TAIL = 128 << 10
# A read that misses what is fetched asks for at least this much: the METADATA member's
# local header, name, extra field and data in one request (numpy's, deflated: 20 kB).
MIN_FETCH = 64 << 10
# More requests or bytes than this and the wheel is downloaded whole instead.
MAX_REQUESTS = 6
MAX_BYTES = 32 << 20

# (start, end): exactly the bytes [start, end) of the file, or RangeRefused.
Fetch = Callable[[int, int], bytes]
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class RangeRefused(Exception):
    """The server did not answer a range request with exactly the bytes asked for."""


def http_ranges(session: Any, url: str, size: int) -> Fetch:
    """A :data:`Fetch` of the file at ``url`` (``size`` bytes, as the page says) through the
    requests ``session`` (pip's: its connection pool and credentials)."""

    def fetch(start: int, end: int) -> bytes:
        headers = {
            "Range": f"bytes={start}-{end - 1}",
            "Accept-Encoding": "identity",  # the ranges are of the file, not of a gzip of it
            "Cache-Control": "no-cache",  # pip's HTTP cache keeps whole answers only
        }
        with session.get(url, headers=headers, stream=True) as response:
            if response.status_code != 206:
                raise RangeRefused(f"HTTP {response.status_code}")  # closed unread
            found = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if found is None or tuple(map(int, found.groups())) != (start, end - 1, size):
                raise RangeRefused(f"Content-Range {response.headers.get('Content-Range')!r}")
            if response.headers.get("Content-Encoding", "identity") != "identity":
                raise RangeRefused(f"Content-Encoding {response.headers['Content-Encoding']}")
            data = bytearray()
            # Read to the end (the connection goes back to the pool), but no further than asked.
            for chunk in response.iter_content(MIN_FETCH):
                data += chunk
                if len(data) > end - start:
                    break
        if len(data) != end - start:
            raise RangeRefused(f"{len(data)} bytes for a range of {end - start}")
        return bytes(data)

    return fetch


def ranged_wheel(fetch: Fetch, size: int) -> BinaryIO:
    """The ``size`` bytes of a remote file as a buffered, seekable binary file (for zipfile);
    its tail is fetched now."""
    return io.BufferedReader(RangedWheel(fetch, size))


class RangedWheel(io.RawIOBase):
    """The ``size`` bytes of a remote file, read through ``fetch`` and kept once fetched."""

    def __init__(self, fetch: Fetch, size: int) -> None:
        super().__init__()
        self._fetch, self._size, self._pos = fetch, size, 0
        self._pieces: dict[int, bytes] = {}  # start -> bytes fetched there; never overlapping
        self.requests = self.fetched = 0
        self._get(max(0, size - TAIL), size)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = max(0, min(len(view), self._size - self._pos))
        done = 0
        while done < wanted:
            at = self._pos + done
            start, piece = self._piece(at)
            if piece is None:
                following = min((s for s in self._pieces if s > at), default=self._size)
                self._get(at, min(following, max(at + wanted - done, at + MIN_FETCH)))
                continue
            taken = piece[at - start : at - start + wanted - done]
            view[done : done + len(taken)] = taken
            done += len(taken)
        self._pos += done
        return done

    def _piece(self, at: int) -> tuple[int, bytes | None]:
        for start, piece in self._pieces.items():
            if start <= at < start + len(piece):
                return start, piece
        return at, None

    def _get(self, start: int, end: int) -> None:
        self.requests += 1
        self.fetched += end - start
        if self.requests > MAX_REQUESTS or self.fetched > MAX_BYTES:
            raise RangeRefused(f"more than {MAX_REQUESTS} requests or {MAX_BYTES} bytes")
        self._pieces[start] = self._fetch(start, end)
