"""The helpers of Lepton's ``leptonai.photon.types``, for photons written for its SDK.

``FileParam`` (Lepton's first binary input, deprecated there in favour of
``File``), ``get_file_content``, ``make_png_response`` and friends, and
``to_bool``. ``import leptonai.photon.types`` resolves here (and to the SDK in
:mod:`photonpack.serving.photon`) when the real ``leptonai`` is absent.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any, Protocol

from fastapi.staticfiles import StaticFiles

from photonpack.serving.errors import FileContentError
from photonpack.serving.fetch import download
from photonpack.serving.photon import VALIDATING, File, JPEGResponse, PNGResponse, WAVResponse

__all__ = [
    "File",
    "FileContentError",
    "FileParam",
    "JPEGResponse",
    "PNGResponse",
    "StaticFiles",
    "WAVResponse",
    "get_file_content",
    "make_img_response",
    "make_jpeg_response",
    "make_png_response",
    "to_bool",
]

# Lepton's first client sent FileParam content as "encoded:<base64>".
_OLD_PREFIX = "encoded:"
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_TRUE = ("yes", "true", "t", "1", "y", "on", "aye", "yea")
_FALSE = ("no", "false", "f", "0", "n", "off", "nay", "")


class FileParam(File):
    """Lepton's deprecated binary input: a :class:`File` that warns when made in code."""

    def __init__(self, content: Any = None, /, **data: Any) -> None:
        if VALIDATING.get():  # a request's FileParam: the deprecation is the photon's code
            super().__init__(content, **data)
            return
        warnings.warn(
            "FileParam is deprecated (as it was in Lepton's SDK); use File, which accepts the "
            "same bytes, file objects and base64 text",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(content, **data)

    @classmethod
    def _wire(cls, value: Any) -> Any:
        # File's validator then reads the data: URI.
        if isinstance(value, str) and value.startswith(_OLD_PREFIX):
            return "data:application/octet-stream;base64," + value[len(_OLD_PREFIX) :]
        return value


def get_file_content(
    src: File | str | bytes, allow_local_file: bool = False, return_file: bool = False
) -> bytes | IO[bytes]:
    """The bytes of ``src``: a ``File``, raw bytes, an http(s) URL, a ``data:`` URI or base64.

    A local path is read only with ``allow_local_file``, so that a served
    photon does not read its own disk on a caller's say-so. ``return_file``
    gives a temporary file (or the opened local file) instead of bytes.
    """
    if isinstance(src, File):
        return src.get_temp_file() if return_file else src.get_content()
    if isinstance(src, bytes):
        return _as_file(src) if return_file else src
    if not isinstance(src, str):
        raise TypeError(
            "get_file_content() expects a File, bytes, a URL, a local path, a data: URI or "
            f"base64 text, got {type(src).__name__}"
        )
    if src.startswith(("http://", "https://")):
        content = download(src)
    elif allow_local_file and Path(src).is_file():
        path = Path(src)
        return path.open("rb") if return_file else path.read_bytes()
    elif src.startswith("data:") and ";base64," in src:
        content = _b64(src.split(",", 1)[1], src)
    elif len(src) % 4 == 0 and _BASE64.fullmatch(src):
        content = _b64(src, src)
    else:
        raise FileContentError(
            f"cannot read file content from {_short(src)}: expected a URL, a data: URI or "
            "base64 text (or a local path, with allow_local_file=True)"
        )
    return _as_file(content) if return_file else content


def _b64(text: str, src: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise FileContentError(f"invalid base64 in {_short(src)}: {exc}") from exc


def _as_file(content: bytes) -> IO[bytes]:
    file = tempfile.NamedTemporaryFile()  # noqa: SIM115 - the caller owns it, as in Lepton
    file.write(content)
    file.flush()
    file.seek(0)
    return file


def _short(text: str) -> str:
    return repr(text if len(text) < 100 else text[:100] + "...")


class _Image(Protocol):
    """What the image helpers need of an image: PIL's ``Image.save``."""

    def save(self, fp: IO[bytes], format: str) -> None: ...


def make_img_response(
    img: _Image,
    format: str,
    response_type: type[PNGResponse] | type[JPEGResponse],
) -> PNGResponse | JPEGResponse:
    """``img`` (a PIL image, or anything with its ``save``) encoded as ``format``."""
    return response_type(_encoded(img, format))


def make_png_response(img: _Image) -> PNGResponse:
    """A PNG response of ``img``."""
    return PNGResponse(_encoded(img, "PNG"))


def make_jpeg_response(img: _Image) -> JPEGResponse:
    """A JPEG response of ``img``."""
    return JPEGResponse(_encoded(img, "JPEG"))


def _encoded(img: _Image, format: str) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=format)
    return buffer.getvalue()


def to_bool(s: str) -> bool:
    """Lepton's string flags: "yes", "true", "on", "1"... are True; "no", "off", ""... False."""
    if not isinstance(s, str):
        raise TypeError(f"to_bool() expects a string, got {type(s).__name__}")
    if s.lower() in _TRUE:
        return True
    if s.lower() in _FALSE:
        return False
    known = ", ".join([*_TRUE, *(f for f in _FALSE if f)])
    raise ValueError(f"{s!r} is not a boolean: use one of {known} (any case), or ''")
