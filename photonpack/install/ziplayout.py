"""A wheel's zip layout, held to the rules that close ZIP confusion (uv, after CVE-2025-54368).

Two zip readers may see two different wheels in one file when its parts
disagree: the installer reads members from their local headers, a scanner or
another installer from the central directory. So every member's local header
must name the member and state the method, CRC and sizes the central directory
states (or leave them to a data descriptor that does), no member may overlap
another, nothing may come before the first local header, and nothing may follow
the end-of-central-directory record (its comment included). Duplicate names
are refused by the wheel reader. A broken rule raises :class:`LayoutError`
with a one-line reason; the caller names the wheel.
"""

from __future__ import annotations

import itertools
import mmap
import struct
import zipfile
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["LayoutError", "check_layout"]

# signature, version needed, flags, method, time, date, crc32, compressed size, size,
# name length, extra length
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_END = struct.Struct("<4sHHHHIIH")  # the end-of-central-directory record, before its comment
_END_SIGNATURE = b"PK\x05\x06"
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_ZIP64_EXTRA = 0x0001
_MAX_32 = 0xFFFFFFFF
_DATA_DESCRIPTOR = 0x08  # general purpose flag bit 3: CRC and sizes follow the data
_UTF8 = 0x800  # general purpose flag bit 11: the name is UTF-8


class LayoutError(ValueError):
    """A rule of the zip layout is broken; ``str()`` says which, in one line."""


def check_layout(
    data: bytes | memoryview | mmap.mmap, infos: Sequence[zipfile.ZipInfo]
) -> dict[str, int]:
    """Check the layout of the zip file ``data`` whose central directory is ``infos``.

    Returns where each member's data starts, so that readers of member data
    use offsets checked once. ``data`` is the whole file (a memory map).
    """
    starts: dict[str, int] = {}
    extents: list[tuple[int, int, str]] = []
    with memoryview(data) as view:  # released on return: a memory map can then be closed
        _check_end(view)
        for info in infos:
            start, end = _check_member(view, info)
            starts[info.orig_filename] = start
            extents.append((info.header_offset, end, info.orig_filename))
    extents.sort()
    if extents and extents[0][0] != 0:
        raise LayoutError(f"{extents[0][0]} bytes come before the first local header")
    for (_, end, name), (offset, _, after) in itertools.pairwise(extents):
        if offset < end:
            raise LayoutError(f"members {name} and {after} overlap")
    return starts


def _check_end(view: memoryview) -> None:
    """Nothing may follow the end-of-central-directory record and its comment."""
    tail_start = max(0, len(view) - (_END.size + 0xFFFF))
    position = bytes(view[tail_start:]).rfind(_END_SIGNATURE)
    if position < 0:
        raise LayoutError("it has no end-of-central-directory record")
    position += tail_start
    if position + _END.size > len(view):
        raise LayoutError("its end-of-central-directory record is truncated")
    comment = _END.unpack_from(view, position)[7]
    extra = len(view) - (position + _END.size + comment)
    if extra > 0:
        raise LayoutError(f"{extra} bytes follow the end-of-central-directory record")
    if extra < 0:
        raise LayoutError("its end-of-central-directory comment is truncated")


def _check_member(view: memoryview, info: zipfile.ZipInfo) -> tuple[int, int]:
    """The member's local header agrees with its central directory entry: (data start, end)."""
    member, offset = info.orig_filename, info.header_offset
    if offset < 0 or offset + _LOCAL.size > len(view):
        raise LayoutError(f"member {member} has no local header (offset {offset})")
    (signature, _version, flags, method, _time, _date, crc, compressed, size, name_length,
     extra_length) = _LOCAL.unpack_from(view, offset)  # fmt: skip
    if signature != _LOCAL_SIGNATURE:
        raise LayoutError(f"member {member} has no local header (offset {offset})")
    name_start = offset + _LOCAL.size
    raw_name = bytes(view[name_start : name_start + name_length])
    local_name = raw_name.decode("utf-8" if flags & _UTF8 else "cp437", "replace")
    if local_name != member:
        raise LayoutError(
            f"member {member} is named {local_name!r} in its local header "
            "(local header and central directory disagree)"
        )
    if method != info.compress_type:
        raise LayoutError(
            f"member {member} has compression method {method} in its local header but "
            f"{info.compress_type} in the central directory"
        )
    extra = bytes(view[name_start + name_length : name_start + name_length + extra_length])
    compressed, size, zip64 = _zip64_sizes(extra, compressed, size)
    start = name_start + name_length + extra_length
    end = start + info.compress_size
    if end > len(view):
        raise LayoutError(f"member {member} is truncated")
    central = (info.CRC, info.compress_size, info.file_size)
    if flags & _DATA_DESCRIPTOR:
        if (crc, compressed, size) not in ((0, 0, 0), central):
            _disagree(member, "local header", (crc, compressed, size), central)
        found, end = _descriptor(view, end, zip64=zip64)
        if found != central:
            _disagree(member, "data descriptor", found, central)
    elif (crc, compressed, size) != central:
        _disagree(member, "local header", (crc, compressed, size), central)
    return start, end


def _zip64_sizes(extra: bytes, compressed: int, size: int) -> tuple[int, int, bool]:
    """Sizes a local header leaves to its zip64 extra field (0xFFFFFFFF), read from it."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        if kind == _ZIP64_EXTRA:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, at + 4))
            if size == _MAX_32 and values:
                size = values.pop(0)
            if compressed == _MAX_32 and values:
                compressed = values.pop(0)
            return compressed, size, True
        at += 4 + length
    return compressed, size, False


def _descriptor(view: memoryview, at: int, *, zip64: bool) -> tuple[tuple[int, int, int], int]:
    """The CRC and sizes of the data descriptor at ``at``, and where it ends."""
    if bytes(view[at : at + 4]) == _DESCRIPTOR_SIGNATURE:
        at += 4
    layout = struct.Struct("<IQQ" if zip64 else "<III")
    if at + layout.size > len(view):
        raise LayoutError("a data descriptor is truncated")
    crc, compressed, size = layout.unpack_from(view, at)
    return (crc, compressed, size), at + layout.size


def _disagree(
    member: str, where: str, found: tuple[int, int, int], central: tuple[int, int, int]
) -> NoReturn:
    def show(values: tuple[int, int, int]) -> str:
        return f"CRC {values[0]:08x}, {values[1]} bytes compressed, {values[2]} bytes"

    raise LayoutError(
        f"member {member} has {show(found)} in its {where} but {show(central)} in the "
        "central directory"
    )
