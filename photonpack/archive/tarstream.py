"""The tar stream inside the zstd frame: decompressed bytes and the member headers in them.

Headers are parsed here rather than by ``tarfile``'s stream mode, for exact
refusals and no seeking: a pax header may only carry a member's ``size`` (any
other key could rename or retype a member), and is bounded in size. Data is
handed out as views of big decompressed chunks, so blobs are hashed and
written without copies.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator

import zstandard

from photonpack.archive.limits import CHUNK_SIZE, MAX_PAX_SIZE
from photonpack.archive.problem import Fatal, Problem
from photonpack.archive.zstdframe import FrameGuard

__all__ = ["BLOCK", "END_MEMBER", "NO_DATA", "Stream", "next_header", "regular", "type_name"]

BLOCK = tarfile.BLOCKSIZE
# The member a problem at or after the end-of-archive blocks is reported under.
END_MEMBER = "(end of archive)"


class Stream:
    """Decompressed bytes handed out as views of big chunks, with the member being read."""

    def __init__(
        self, reader: zstandard.ZstdDecompressionReader, guard: FrameGuard, member: str
    ) -> None:
        self._reader = reader
        self.guard = guard
        self._buf = memoryview(b"")
        self.member = member

    def _fill(self) -> bool:
        try:
            data = self._reader.read(CHUNK_SIZE)
        except zstandard.ZstdError as exc:
            raise Fatal(
                Problem(member=self.member, expected="a valid zstd stream", found=str(exc))
            ) from exc
        self._buf = memoryview(data)
        return bool(data)

    def exact(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the stream."""
        parts: list[bytes] = []
        need = size
        while need and (self._buf or self._fill()):
            part = self._buf[:need]
            parts.append(bytes(part))
            self._buf = self._buf[len(part) :]
            need -= len(part)
        return b"".join(parts)

    def chunks(self, size: int) -> Iterator[memoryview]:
        """Views covering the next ``size`` bytes; stops early at the end of the stream."""
        need = size
        while need and (self._buf or self._fill()):
            part = self._buf[:need]
            self._buf = self._buf[len(part) :]
            need -= len(part)
            yield part

    def skip(self, size: int) -> int:
        """Discard ``size`` bytes; returns how many were there."""
        return sum(len(c) for c in self.chunks(size))

    def rest_is_zeros(self) -> int:
        """Read to the end; returns the length of the spans that are not zero padding."""
        nonzero = 0
        while self._buf or self._fill():
            nonzero += len(bytes(self._buf).strip(b"\0"))
            self._buf = memoryview(b"")
        return nonzero


def next_header(stream: Stream) -> tarfile.TarInfo | None:
    """The next member's header (pax size applied); None at the end-of-archive block."""
    pax_size: int | None = None
    while True:
        block = stream.exact(BLOCK)
        if len(block) < BLOCK:
            raise Fatal(
                Problem(
                    member=END_MEMBER,
                    expected="another tar header or the end-of-archive blocks",
                    found="the end of the stream (truncated)",
                )
            )
        if block == b"\0" * BLOCK:
            return None
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise Fatal(
                Problem(member=stream.member, expected="a valid tar header", found=str(exc))
            ) from exc
        if info.type != tarfile.XHDTYPE:
            if pax_size is not None:
                info.size = pax_size
            return info
        if info.size > MAX_PAX_SIZE:
            raise Fatal(
                Problem(
                    member=info.name,
                    expected=f"a pax header of at most {MAX_PAX_SIZE} bytes",
                    found=f"{info.size} bytes",
                )
            )
        records = stream.exact(info.size)
        stream.skip(-info.size % BLOCK)
        pax_size = _pax_size(records, info.name)


def _pax_size(records: bytes, member: str) -> int | None:
    """The ``size`` of a pax header; any other key could rename or retype a member."""
    size = None
    for line in records.split(b"\n"):
        if not line:
            continue
        _, _, keyvalue = line.partition(b" ")
        key, _, value = keyvalue.partition(b"=")
        if key != b"size" or not value.isdigit():
            raise Fatal(
                Problem(
                    member=member,
                    expected="only a pax 'size' record",
                    found=f"record {key.decode(errors='replace')!r}",
                )
            )
        size = int(value)
    return size


# Member types whose header carries no data blocks, whatever its size field says.
NO_DATA = frozenset(
    {
        tarfile.LNKTYPE,
        tarfile.SYMTYPE,
        tarfile.DIRTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
    }
)


def regular(info: tarfile.TarInfo) -> bool:
    """Whether the member is a plain regular file."""
    # Not TarInfo.isreg(): that also accepts GNU sparse and contiguous files.
    return info.type in (tarfile.REGTYPE, tarfile.AREGTYPE)


def type_name(info: tarfile.TarInfo) -> str:
    """What a member that is not a regular file is, for a message."""
    names = {
        tarfile.SYMTYPE: "a symbolic link",
        tarfile.LNKTYPE: "a hard link",
        tarfile.DIRTYPE: "a directory",
        tarfile.CHRTYPE: "a character device",
        tarfile.BLKTYPE: "a block device",
        tarfile.FIFOTYPE: "a FIFO",
    }
    return names.get(info.type, f"tar type {info.type!r}")
