"""A wheel's METADATA as one pip distribution in memory, shared by every target of a lock.

pip's own path for a PEP 658 ``.metadata`` file writes it into a temporary
directory of the resolver step and reads it back; each target of a lock made its
own, and parsed the same METADATA (numpy's: 60 kB, its README included) five
times over: for its name, its version, its ``Requires-Dist`` and pip's check of
direct references. :func:`metadata_distribution` keeps the bytes in memory and
parses them once; the result is read-only (markers are evaluated when asked, in
the asking target's environment), so every target can use the same one.

Only with pip's ``importlib.metadata`` backend (Python 3.11 and later); with the
``pkg_resources`` backend, None: pip's own path.

:func:`wheel_metadata` reads a wheel's METADATA member alone (the zip's central
directory, then that member): a local wheel's, where pip's path for a ``file:``
link reads and hashes the whole file first, or a remote one's through
:func:`~photonpack.lock.remotezip.ranged_wheel`, where pip would download it whole.
"""

from __future__ import annotations

import functools
import io
import pathlib
import struct
import zlib
from typing import IO, Any

__all__ = ["metadata_distribution", "wheel_metadata"]


def metadata_distribution(metadata: bytes, filename: str) -> Any:
    """A pip distribution of the wheel ``filename``'s METADATA, or None (see above)."""
    kind = _in_memory()
    if kind is None:
        return None
    from pip._internal.metadata.importlib._dists import Distribution

    dist = kind({pathlib.PurePosixPath("METADATA"): metadata}, pathlib.PurePosixPath(filename))
    return Distribution(dist, None, None)


def wheel_metadata(wheel_file: str | IO[bytes]) -> bytes | None:
    """The ``*.dist-info/METADATA`` member of the wheel at ``wheel_file`` (a path or a seekable
    file), or None where pip should read the wheel its own way and report what is wrong (not
    a zip, unreadable, no or several ``.dist-info`` directories, a CRC that does not match).

    Only the member's directory entry is decoded, not the whole directory's (torch's wheel:
    13,000 entries, a third of a second for ``zipfile``); stored or deflated members only.
    """
    try:
        if isinstance(wheel_file, str):
            with pathlib.Path(wheel_file).open("rb") as file:
                return _metadata_member(file)
        return _metadata_member(wheel_file)
    except (OSError, ValueError, EOFError, struct.error, zlib.error):
        return None


# The zip records read (APPNOTE.TXT 4.3): end of central directory, zip64 locator and end
# of central directory, central directory entry, local file header.
_END = struct.Struct("<4s4H2LH")
_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_ENTRY = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
_MAX = 0xFFFFFFFF  # a 32-bit field that says "see the zip64 record"
_MAX_METADATA = 16 << 20  # a METADATA larger than this is not one
_METADATA = b".dist-info/METADATA"
_METADATA_NAME = pathlib.PurePosixPath("METADATA")


def _metadata_member(file: IO[bytes]) -> bytes | None:
    directory = _directory(file)
    found = None if directory is None else _metadata_entry(directory)
    if found is None:
        return None
    entry, name, extra = found
    flags, method, crc = entry[3], entry[4], entry[7]
    packed, unpacked, offset = _zip64(extra, entry[8], entry[9], entry[16])
    if flags & 1 or method not in (0, 8) or unpacked > _MAX_METADATA:
        return None  # encrypted, or a compression this reader does not inflate
    local = _LOCAL.unpack(_read(file, offset, _LOCAL.size))
    if local[0] != b"PK\x03\x04" or _read(file, offset + _LOCAL.size, local[9]) != name:
        return None
    data = _read(file, offset + _LOCAL.size + local[9] + local[10], packed)
    if method == 8:
        data = zlib.decompressobj(-15).decompress(data, unpacked + 1)
    return data if len(data) == unpacked and zlib.crc32(data) == crc else None


def _directory(file: IO[bytes]) -> bytes | None:
    """The zip's central directory, found from its end record (zip64's where it has one)."""
    size = file.seek(0, io.SEEK_END)
    tail_size = min(size, _END.size)
    tail = _read(file, size - tail_size, tail_size)
    if not tail.startswith(b"PK\x05\x06"):  # a comment follows the record: at most 64 kB
        tail_size = min(size, _END.size + 0xFFFF)
        tail = _read(file, size - tail_size, tail_size)
    at = len(tail)
    while True:  # the last record that the comment it declares ends the file after
        at = tail.rfind(b"PK\x05\x06", 0, at)
        if at < 0:
            return None
        if at + _END.size <= len(tail) == at + _END.size + _END.unpack_from(tail, at)[7]:
            break
    count, directory_size, directory_at = _END.unpack_from(tail, at)[4:7]
    if _MAX in (directory_size, directory_at) or count == 0xFFFF:
        end = size - tail_size + at
        signature, _, end64, _ = _LOCATOR.unpack(_read(file, end - _LOCATOR.size, _LOCATOR.size))
        record = _END64.unpack(_read(file, end64, _END64.size))
        if (signature, record[0]) != (b"PK\x06\x07", b"PK\x06\x06"):
            return None
        directory_size, directory_at = record[8], record[9]
    return _read(file, directory_at, directory_size)


def _metadata_entry(directory: bytes) -> tuple[tuple[Any, ...], bytes, bytes] | None:
    """The one ``<name>.dist-info/METADATA`` entry of ``directory``: its fields, name, extra."""
    found = []
    position = 0
    while position < len(directory):
        entry = _ENTRY.unpack_from(directory, position)
        if entry[0] != b"PK\x01\x02":
            return None
        name_end = position + _ENTRY.size + entry[10]
        name = directory[position + _ENTRY.size : name_end]
        if name.endswith(_METADATA) and name.count(b"/") == 1:
            found.append((entry, name, directory[name_end : name_end + entry[11]]))
        position = name_end + entry[11] + entry[12]
    return found[0] if len(found) == 1 else None


def _zip64(extra: bytes, packed: int, unpacked: int, offset: int) -> tuple[int, int, int]:
    """The sizes and offset of a directory entry, from its zip64 extra field where it has one."""
    position = 0
    while position + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, position)
        if kind == 1:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, position + 4))
            # In this order, each present only where the 32-bit field says _MAX.
            unpacked = values.pop(0) if unpacked == _MAX else unpacked
            packed = values.pop(0) if packed == _MAX else packed
            offset = values.pop(0) if offset == _MAX else offset
            break
        position += 4 + length
    return packed, unpacked, offset


def _read(file: IO[bytes], offset: int, size: int) -> bytes:
    file.seek(offset)
    data = file.read(size)
    if len(data) != size:
        raise EOFError(f"{size} bytes at {offset}: the file ends first")
    return data


@functools.cache
def _in_memory() -> Any:
    from pip._internal.metadata import select_backend

    if getattr(select_backend(), "NAME", None) != "importlib":
        return None
    from pip._internal.metadata.importlib._dists import WheelDistribution

    class ParsedOnce(WheelDistribution):
        """pip's in-memory wheel metadata, its METADATA parsed at the first question."""

        _parsed: Any = None

        @property
        def metadata(self) -> Any:
            if self._parsed is None:
                self._parsed = _headers_then_body(self, WheelDistribution) or super().metadata
            return self._parsed

    return ParsedOnce


def _headers_then_body(dist: Any, kind: Any) -> Any:
    """``dist.metadata`` parsed from its headers alone, with the rest as its payload, in the
    type a ``kind`` of distribution gives; None where the whole text must be parsed (CRLF
    lines, a defect, a MIME type of parts).

    The email parser reads a body line by line only to join the lines again (pydantic's
    METADATA: 150 kB of changelog, 4 ms against 0.2 ms for its headers).
    """
    import email

    text = dist.read_text("METADATA")
    head, blank, body = (text or "").partition("\n\n")
    if not head or not blank or "\r" in head:
        return None
    parsed = email.message_from_string(head + blank)
    if parsed.defects or parsed.get_content_maintype() not in ("text", "application"):
        return None
    parsed.set_payload(body)
    return _message_type(kind)(parsed)  # as importlib.metadata wraps the parser's message


@functools.cache
def _message_type(kind: Any) -> Any:
    """The type of ``kind().metadata``: importlib.metadata's wrapper of an email message."""
    return type(kind({_METADATA_NAME: b"Name: x\n"}, pathlib.PurePosixPath("x")).metadata)
