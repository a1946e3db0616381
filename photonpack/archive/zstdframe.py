"""The zstd frames of an archive: headers checked, blocks walked as they stream.

An archive is a run of zstd frames and nothing after them: one frame, or (a
big archive, ``archive/__init__.py``) the manifest's frame, one skippable frame
of zeros padding it to ``HEAD_ALIGN`` bytes, and the blobs' frame.
:func:`frame_start` refuses a file that is not zstd, and :class:`FrameGuard`
every frame, the first and each one after it, with a window over the reading
limit or without its checksum, and a skippable frame that holds anything but
zeros; it tells, while the frames stream, where the last one ends;
:func:`decompressor` reads them with the window bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import zstandard

from photonpack.archive.limits import CHUNK_SIZE, MAX_WINDOW_SIZE
from photonpack.archive.problem import Problem
from photonpack.errors import ArchiveError

__all__ = [
    "FRAME_MEMBER",
    "SKIPPABLE_MAGIC",
    "ByteProgress",
    "FrameGuard",
    "decompressor",
    "frame_start",
]

# Told the compressed bytes read from the file so far, after each read: the
# caller (the CLI) decides whether and how often to draw it.
ByteProgress = Callable[[int], None]

# The member a problem of the frames themselves is reported under.
FRAME_MEMBER = "(zstd frame)"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_HEADER_PREFIX = 5  # the magic and the frame header descriptor: what gives the header's size
_MAX_HEADER = 18  # the longest zstd frame header
# Skippable frames: a magic number from 0x184D2A50 to 0x184D2A5F, then a 4-byte size
# (little-endian), then that many bytes, which zstd skips. photonpack pads with zeros only.
SKIPPABLE_MAGIC = 0x184D2A50
_SKIPPABLE_HEADER = 8
_MORE = ("more", 0)  # a frame header split between two reads


class FrameGuard:
    """Passes compressed bytes through while walking zstd frame and block headers.

    zstandard's stream reader silently stops at a truncated frame and does not
    say where the frames ended; walking the 3-byte block headers and each
    frame's header tells both, so truncation, a frame the reader would refuse
    and trailing data are found without reading the file twice. Every byte of
    the file passes here, blobs only hashed included, so this is where
    ``progress`` is told how far the reading has got. The first frame's header
    was checked by :func:`frame_start`; ``header_size`` and ``checksum`` are its.
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
        self._skip = header_size  # bytes to pass before the next block header
        self._tail = 4 if checksum else 0
        self._block = b""  # a block header split between two reads
        self._last = False  # the block being passed is its frame's last
        self._between = False  # a frame has ended: a frame header or the file's end is next
        self._held = b""  # the start of a frame header, kept until the rest of it is read
        self._zeros = 0  # bytes of a skippable frame still to pass: zeros, or a problem
        self._eof = False
        self._pos = 0
        self.frames = 1
        # Where the last valid frame ends, once the file ended or something else began there.
        self.end: int | None = None
        # A frame after the first that a reader must refuse (a window too big, no checksum).
        self.problem: Problem | None = None

    @property
    def consumed(self) -> int:
        """Compressed bytes read from the file so far."""
        return self._pos

    @property
    def complete(self) -> bool:
        """Whether every frame has gone through whole (last block and checksum)."""
        return self.end is not None

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the frames; their end reads as the end of the file."""
        while self.end is None and not self._eof:
            if data := self._step(size):
                return data
        return b""

    def _step(self, size: int) -> bytes:
        chunk = self._raw.read(size)
        self._pos += len(chunk)
        if self._progress is not None:
            self._progress(self._pos)
        start = self._pos - len(chunk) - len(self._held)  # the file offset of data[0]
        data, self._held = (self._held + chunk if self._held else chunk), b""
        if not chunk:
            self._eof = True
            if self._between:
                self.end = start  # what was held, if anything, is not a frame: trailing data
            return b""
        inside = self._scan(data, start)
        return data if inside is None else data[:inside]

    def _scan(self, data: bytes, start: int) -> int | None:
        """Walk frame and block headers in ``data``; returns where its bytes stop passing."""
        i, n = 0, len(data)
        while True:
            if self._last and not self._skip:
                self._last, self._between = False, True
            if i == n:
                return None
            if self._zeros:
                i = self._pass_zeros(data, i, start)
            elif self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
            elif self._between:
                i = self._next_frame(data, i, start)
            else:
                i = self._block_header(data, i)
            if i < 0:  # the bytes stop passing at -i - 1
                return -i - 1

    def _pass_zeros(self, data: bytes, i: int, start: int) -> int:
        step = min(self._zeros, len(data) - i)
        if data.count(0, i, i + step) != step:
            at = i + step - len(data[i : i + step].lstrip(b"\0"))
            self.problem = Problem(
                member=FRAME_MEMBER,
                expected="zeros in a skippable frame",
                found=f"byte {start + at} (in frame {self.frames}) is {data[at]:#04x}",
            )
            self.end = start + i
            return -i - 1
        self._zeros -= step
        self._between = not self._zeros
        return i + step

    def _next_frame(self, data: bytes, i: int, start: int) -> int:
        header = self._frame_header(data[i : i + _MAX_HEADER], start + i)
        if header is None:
            self.end = start + i
            return -i - 1
        if header == _MORE:  # the header goes on in the next read
            self._held = data[i:]
            return -i - 1
        self._between = False
        self.frames += 1
        kind, size = header
        if kind == "skippable":  # its header is in ``data``; then ``size`` zeros
            self._zeros = size
            self._between = not size
            return i + _SKIPPABLE_HEADER
        self._skip = size
        return i

    def _block_header(self, data: bytes, i: int) -> int:
        take = data[i : i + 3 - len(self._block)]
        self._block += take
        if len(self._block) == 3:
            value = int.from_bytes(self._block, "little")
            self._block = b""
            block_type, block_size = (value >> 1) & 3, value >> 3
            self._skip = 1 if block_type == 1 else block_size
            if value & 1:
                self._last = True
                self._skip += self._tail
        return i + len(take)

    def _frame_header(self, head: bytes, offset: int) -> tuple[str, int] | None:
        """What ``head`` starts: ("zstd", its header's size), ("skippable", its content's
        size), :data:`_MORE` when more bytes are needed to tell, or None when no frame
        starts here (trailing data) or one that must be refused does."""
        if _skippable(head):
            if len(head) < _SKIPPABLE_HEADER:
                return _MORE
            return ("skippable", int.from_bytes(head[4:8], "little"))
        if len(head) < _HEADER_PREFIX:
            return _MORE if _ZSTD_MAGIC.startswith(head[:4]) else None
        return self._zstd_header(head, offset) if head.startswith(_ZSTD_MAGIC) else None

    def _zstd_header(self, head: bytes, offset: int) -> tuple[str, int] | None:
        try:
            size = zstandard.frame_header_size(head)
            if len(head) < size:
                return _MORE
            params = zstandard.get_frame_parameters(head[:size])
        except zstandard.ZstdError:
            return None
        self.problem = _frame_problem(params, f"frame {self.frames + 1}, at byte {offset}: ")
        if self.problem is not None:
            return None
        self._tail = 4 if params.has_checksum else 0
        return ("zstd", size)

    def finish(self, file_size: int) -> Problem | None:
        """After decompression: every frame must be complete and the file must end with them."""
        while self.end is None and self.read(CHUNK_SIZE):
            pass
        if self.problem is not None:
            return self.problem
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


def _skippable(head: bytes) -> bool:
    """Whether ``head`` may begin a skippable frame (magic 0x184D2A50 to 0x184D2A5F)."""
    rest = head[1:4]
    return bool(head) and 0x50 <= head[0] <= 0x5F and rest == b"\x2a\x4d\x18"[: len(rest)]


def _frame_problem(params: zstandard.FrameParameters, where: str = "") -> Problem | None:
    """What a reader refuses in a frame's header: a window over the limit, no checksum."""
    if params.window_size > MAX_WINDOW_SIZE:
        return Problem(
            member=FRAME_MEMBER,
            expected=f"a window of at most {MAX_WINDOW_SIZE} bytes",
            found=f"{where}a window of {params.window_size} bytes",
        )
    if not params.has_checksum:
        return Problem(member=FRAME_MEMBER, expected="a frame checksum", found=f"{where}none")
    return None


def frame_start(fh: BinaryIO, path: Path) -> tuple[int, bool, Problem | None]:
    """Check the first zstd frame header; returns (header size, has checksum, its problem)."""
    head = fh.read(_MAX_HEADER)
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
    return header_size, params.has_checksum, _frame_problem(params)


def decompressor(fh: BinaryIO, guard: FrameGuard) -> zstandard.ZstdDecompressionReader:
    """A reader of the decompressed bytes of the frames ``guard`` walks."""
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
    source: BinaryIO = guard  # type: ignore[assignment]  # it only needs read()
    return dctx.stream_reader(source, read_size=CHUNK_SIZE, read_across_frames=True, closefd=False)
