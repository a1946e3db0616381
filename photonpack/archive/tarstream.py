"""The tar stream inside the zstd frame: decompressed bytes and the member headers in them.

Headers are parsed here rather than by ``tarfile``'s stream mode, for exact
refusals and no seeking: a pax header may only carry a member's ``size`` (any
other key could rename or retype a member), and is bounded in size. Each
header must be the exact bytes photonpack writes (:func:`member_header`), so
an accepted archive is the canonical one: no field can vary unnoticed. Data is
handed out as views of big decompressed chunks, so blobs are hashed and
written without copies. The stream also bounds what a small file can expand
to (``limits.MAX_RATIO``) and how much zero padding may follow the end blocks.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator

import zstandard

from photonpack._units import format_size
from photonpack.archive.limits import (
    CHUNK_SIZE,
    MAX_END_PADDING,
    MAX_PAX_SIZE,
    MAX_RATIO,
    RATIO_ALLOWANCE,
    RATIO_ENV,
)
from photonpack.archive.problem import Fatal, Problem
from photonpack.archive.zstdframe import FrameGuard

__all__ = [
    "BLOCK",
    "END_MEMBER",
    "MEMBER_MODE",
    "NO_DATA",
    "Stream",
    "member_header",
    "next_header",
    "regular",
    "type_name",
]

BLOCK = tarfile.BLOCKSIZE
# Owner, group and mode are fixed so umask and the builder's uid never leak in.
MEMBER_MODE = 0o644
# The member a problem at or after the end-of-archive blocks is reported under.
END_MEMBER = "(end of archive)"


class Stream:
    """Decompressed bytes handed out as views of big chunks, with the member being read."""

    def __init__(
        self,
        reader: zstandard.ZstdDecompressionReader,
        guard: FrameGuard,
        member: str,
        *,
        max_ratio: int = MAX_RATIO,
    ) -> None:
        self._reader = reader
        self.guard = guard
        self._buf = memoryview(b"")
        self.member = member
        self.max_ratio = max_ratio
        self.produced = 0  # decompressed bytes so far

    def _fill(self) -> bool:
        try:
            data = self._reader.read(CHUNK_SIZE)
        except zstandard.ZstdError as exc:
            raise Fatal(
                Problem(member=self.member, expected="a valid zstd stream", found=str(exc))
            ) from exc
        self.produced += len(data)
        consumed = self.guard.consumed
        if self.produced > RATIO_ALLOWANCE + self.max_ratio * consumed:
            raise Fatal(
                Problem(
                    member=self.member,
                    expected=f"an archive expanding at most {self.max_ratio}:1 past its first "
                    f"{format_size(RATIO_ALLOWANCE)} ({RATIO_ENV} sets the bound)",
                    found=f"{format_size(self.produced)} from "
                    f"{format_size(consumed)} of compressed data",
                )
            )
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

    def padding(self, size: int) -> Problem | None:
        """Read the ``size`` bytes padding a member to a block: they must be zeros."""
        data = self.exact(size)
        if nonzero := len(data) - data.count(0):
            return Problem(
                member=self.member,
                expected="zero bytes padding the member to a 512-byte block",
                found=f"{nonzero} other bytes",
            )
        return None

    def end_problem(self) -> Problem | None:
        """After the first end-of-archive block: the second one, then at most the zero
        padding tar writes (``MAX_END_PADDING``), then the end of the stream."""
        rest = self.exact(BLOCK + MAX_END_PADDING + 1)
        expected = "nothing after the end-of-archive blocks"
        if nonzero := len(rest.replace(b"\0", b"")):
            found = f"{nonzero} bytes of trailing data in the tar stream"
        elif len(rest) < BLOCK:
            expected = "the second end-of-archive block"
            found = f"{len(rest)} bytes (truncated)"
        elif len(rest) > BLOCK + MAX_END_PADDING:
            expected += f" but at most {MAX_END_PADDING} bytes of zero padding (what tar writes)"
            found = "more zero bytes"
        else:
            return None
        return Problem(member=END_MEMBER, expected=expected, found=found)


def member_header(name: str, size: int, mtime: int) -> bytes:
    """The header photonpack writes for a member (a pax ``size`` record past 8 GiB)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = MEMBER_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def next_header(stream: Stream) -> tuple[tarfile.TarInfo, bytes] | None:
    """The next member's header (pax size applied) and its raw bytes; None at the
    end-of-archive block."""
    pax_size: int | None = None
    raw = b""
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
        if block == b"\0" * BLOCK and not raw:
            return None
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise Fatal(
                Problem(member=stream.member, expected="a valid tar header", found=str(exc))
            ) from exc
        raw += block
        if info.type != tarfile.XHDTYPE:
            if pax_size is not None:
                info.size = pax_size
            return info, raw
        if info.size > MAX_PAX_SIZE:
            raise Fatal(
                Problem(
                    member=info.name,
                    expected=f"a pax header of at most {MAX_PAX_SIZE} bytes",
                    found=f"{info.size} bytes",
                )
            )
        if raw != block:
            raise Fatal(
                Problem(member=info.name, expected="one pax header per member", found="two")
            )
        records = stream.exact(info.size)
        padding = stream.exact(-info.size % BLOCK)
        raw += records + padding
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
