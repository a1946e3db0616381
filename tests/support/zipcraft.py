"""Edit a real wheel's zip structures in place, to make the ZIP confusion cases of uv's rules."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zipfile
from pathlib import Path

__all__ = ["central_entry", "local_header", "patch", "rewrite_member"]


def local_header(data: bytes, member: str) -> int:
    """Offset of ``member``'s local header (the first one naming it)."""
    at = data.find(b"PK\x03\x04")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 26)[0]
        if data[at + 30 : at + 30 + name_length] == member.encode():
            return at
        at = data.find(b"PK\x03\x04", at + 4)
    raise KeyError(member)


def central_entry(data: bytes, member: str) -> int:
    """Offset of ``member``'s central directory entry."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == member.encode():
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(member)


def patch(path: Path, offset: int, fmt: str, *values: int) -> None:
    """Overwrite the struct ``fmt`` at ``offset`` of the file ``path``."""
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))


def rewrite_member(wheel: Path, member: str, data: bytes) -> None:
    """Replace ``member`` of ``wheel`` with ``data``, and its RECORD row: only the content lies."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    with zipfile.ZipFile(wheel) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info, content in members:
            written = content
            if info.filename == member:
                written = data
            elif info.filename.endswith(".dist-info/RECORD"):
                rows = [
                    f"{member},sha256={digest},{len(data)}" if row.startswith(f"{member},") else row
                    for row in content.decode().splitlines()
                ]
                written = ("\n".join(rows) + "\n").encode()
            zf.writestr(info, written)
    wheel.write_bytes(out.getvalue())
