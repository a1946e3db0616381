"""The zstd frame of an archive: its header checked, its blocks walked as they stream.

An archive is one zstd frame and nothing after it. :func:`frame_start` refuses
a file that is not zstd, a window over the reading limit, or a frame without
its checksum; :class:`FrameGuard` tells, while the frame streams, where it
ends; :func:`decompressor` reads it with the window bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import zstandard

from photonpack.archive.limits import CHUNK_SIZE, MAX_WINDOW_SIZE
from photonpack.archive.problem import Problem
from photonpack.errors import ArchiveError

__all__ = ["FRAME_MEMBER", "ByteProgress", "FrameGuard", "decompressor", "frame_start"]

# Told the compressed bytes read from the file so far, after each read: the
# caller (the CLI) decides whether and how often to draw it.
ByteProgress = Callable[[int], None]

# The member a problem of the frame itself is reported under.
FRAME_MEMBER = "(zstd frame)"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class FrameGuard:
    """Passes compressed bytes through while walking zstd block headers.

    zstandard's stream reader silently stops at a truncated frame and does not
    say where the frame ended; walking the 3-byte block headers tells both, so
    truncation and trailing data are refused without reading the file twice.
    Every byte of the file passes here, blobs only hashed included, so this is
    where ``progress`` is told how far the reading has got.
    """

    def __init__(
        self,
        raw: BinaryIO,
        header_size: int,
        checksum: bool,
        progress: ByteProgress | None = None,
    ) -> None:
        self._raw = raw
        self._progress = progress
        self._skip = header_size
        self._tail = 4 if checksum else 0
        self._pending = b""
        self._last = False
        self._pos = 0
        self.end: int | None = None

    @property
    def consumed(self) -> int:
        """Compressed bytes read from the file so far."""
        return self._pos

    @property
    def complete(self) -> bool:
        """Whether the whole frame (last block and checksum) has gone through."""
        return self.end is not None

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the frame; the end of the frame reads as the end of the file."""
        if self.end is not None:
            return b""
        data = self._raw.read(size)
        inside = self._scan(data)
        self._pos += len(data)
        if self._progress is not None:
            self._progress(self._pos)
        return data if inside is None else data[:inside]

    def _scan(self, data: bytes) -> int | None:
        """Walk block headers in ``data``; returns where in it the frame ends, if it does."""
        i, n = 0, len(data)
        while i < n or (self._last and self._skip == 0):
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
            elif self._last:
                self.end = self._pos + i
                return i
            else:
                take = data[i : i + 3 - len(self._pending)]
                self._pending += take
                i += len(take)
                if len(self._pending) == 3:
                    value = int.from_bytes(self._pending, "little")
                    self._pending = b""
                    block_type, block_size = (value >> 1) & 3, value >> 3
                    self._skip = 1 if block_type == 1 else block_size
                    if value & 1:
                        self._last = True
                        self._skip += self._tail
        return None

    def finish(self, file_size: int) -> Problem | None:
        """After decompression: the frame must be complete and the file must end with it."""
        while self.end is None and self.read(CHUNK_SIZE):
            pass
        if self.end is None:
            return Problem(
                member=FRAME_MEMBER,
                expected="a complete zstd frame with its checksum",
                found=f"the file ends after {file_size} bytes, inside the frame (truncated)",
            )
        if file_size > self.end:
            return Problem(
                member="(after the zstd frame)",
                expected=f"the end of the file at byte {self.end}",
                found=f"{file_size - self.end} bytes of trailing data",
            )
        return None


def frame_start(fh: BinaryIO, path: Path) -> tuple[int, bool, Problem | None]:
    """Check the zstd frame header; returns (header size, has checksum, window problem)."""
    head = fh.read(18)  # the longest zstd frame header
    fh.seek(0)
    if not head.startswith(_ZSTD_MAGIC):
        raise ArchiveError(
            f"{path} is not a photon archive: it is not zstd-compressed "
            f"(first bytes {head[:4].hex() or 'none'}, expected {_ZSTD_MAGIC.hex()})"
        )
    try:
        params = zstandard.get_frame_parameters(head)
        header_size = zstandard.frame_header_size(head)
    except zstandard.ZstdError as exc:
        raise ArchiveError(
            f"{path} is not a photon archive: bad zstd frame header ({exc})"
        ) from exc
    problem = None
    if params.window_size > MAX_WINDOW_SIZE:
        problem = Problem(
            member=FRAME_MEMBER,
            expected=f"a window of at most {MAX_WINDOW_SIZE} bytes",
            found=f"a window of {params.window_size} bytes",
        )
    elif not params.has_checksum:
        problem = Problem(member=FRAME_MEMBER, expected="a frame checksum", found="none")
    return header_size, params.has_checksum, problem


def decompressor(fh: BinaryIO, guard: FrameGuard) -> zstandard.ZstdDecompressionReader:
    """A reader of the decompressed bytes of the one frame ``guard`` walks."""
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
    source: BinaryIO = guard  # type: ignore[assignment]  # it only needs read()
    return dctx.stream_reader(source, read_size=CHUNK_SIZE, read_across_frames=False, closefd=False)
