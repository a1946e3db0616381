"""A wheel's deflate streams, reused as gzip members of the image's layers.

A wheel is a zip file: each big file in it is a raw deflate stream with the
CRC-32 and size of its content. A gzip file may hold several members, each a
deflate stream with a header, the CRC-32 and the size (RFC 1952, 2.2; eStargz
layers are made this way, and every runtime reads them). So when an installed
file is byte for byte a member of the wheel it came from, its layer needs no
deflate: its content is the wheel's stream, copied, between a fixed header
and a trailer the zip already records (``layer.py`` writes it).

The bytes are the photon's own (its verified wheel), so the image digest stays
a function of the photon and the base, and depends on no zlib version for
them. The writer only reuses a stream whose file, as read for the layer's tar,
has the size and CRC-32 the zip records; anything else is compressed as before.
The stream itself is not inflated again (zlib inflates at about twice the
speed it deflates at level 1 here): the installer inflated it into that file. A zip member with
bytes after the end of its deflate stream (no tool writes one) would give a
layer that does not inflate to its diff ID, which runtimes refuse at pull.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STREAM_BYTES", "Stream", "wheel_streams"]

# A smaller stream saves less deflate than it costs: each reused stream closes the
# member being compressed (which then loses its window) and adds 18 bytes of header
# and trailer. Changing it changes every gzip image digest.
STREAM_BYTES = 4096
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_LOCAL_SIGNATURE = b"PK\x03\x04"
_SITE_DATA = ("/purelib/", "/platlib/")  # after "NAME-VERSION.data"


@dataclass(frozen=True, kw_only=True)
class Stream:
    """A file's content as its wheel holds it: ``length`` bytes of raw deflate at ``offset``."""

    wheel: Path
    offset: int
    length: int
    crc: int  # CRC-32 of the content
    size: int  # of the content


def _installed_name(member: str) -> str | None:
    """Where under site-packages a wheel member lands, or None (scripts, data, headers)."""
    top = member.partition("/")[0]
    if top.endswith(".data"):
        for prefix in _SITE_DATA:
            if member[len(top) :].startswith(prefix):
                return member[len(top) + len(prefix) :]
        return None
    return member


def _streams_of(wheel: Path, site: str) -> dict[str, Stream]:
    found: dict[str, Stream] = {}
    with wheel.open("rb") as handle, zipfile.ZipFile(handle) as archive:
        for info in archive.infolist():
            if (
                info.compress_type != zipfile.ZIP_DEFLATED
                or info.flag_bits & 0x1  # encrypted
                or info.compress_size < STREAM_BYTES
                or info.is_dir()
            ):
                continue
            name = _installed_name(info.filename)
            if name is None:
                continue
            handle.seek(info.header_offset)
            signature, name_length, extra_length = _LOCAL_HEADER.unpack(
                handle.read(_LOCAL_HEADER.size)
            )
            if signature != _LOCAL_SIGNATURE:
                continue
            found[f"{site}/{name}"] = Stream(
                wheel=wheel,
                offset=info.header_offset + _LOCAL_HEADER.size + name_length + extra_length,
                length=info.compress_size,
                crc=info.CRC,
                size=info.file_size,
            )
    return found


def wheel_streams(wheels: Iterable[tuple[str, Path]], site: str) -> dict[str, Stream]:
    """The deflate streams of the wheels' files by their path in the image (``site``/...).

    ``wheels`` are (filename, path) pairs; where two wheels hold one path, the first
    by filename is taken (the writer checks the content anyway).
    """
    streams: dict[str, Stream] = {}
    for _name, path in sorted(wheels):
        for image_path, stream in _streams_of(path, site).items():
            streams.setdefault(image_path, stream)
    return streams
