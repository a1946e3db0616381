"""Digests, written once: the ``Digest`` type, the sha256 hex pattern, streaming hashing.

Two spellings travel through photonpack and must never be confused: a
*digest* names content at an interface (``sha256:<64 hex>``: an archive's
identity, a registry reference, a store ref) and is a :class:`Digest`; a
manifest's ``sha256`` field or a blob's file name is the bare hex, checked with
:func:`is_sha256_hex`. Nothing accepts both.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "CHUNK_SIZE",
    "SHA256_HEX",
    "Digest",
    "copy_hashed",
    "is_sha256_hex",
    "sha256_file",
]

CHUNK_SIZE = 1 << 20
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_PREFIX = "sha256:"


def is_sha256_hex(text: object) -> bool:
    """Whether ``text`` is 64 lowercase hex digits (no prefix)."""
    return isinstance(text, str) and SHA256_HEX.fullmatch(text) is not None


class Digest(str):
    """``sha256:<64 lowercase hex>``, validated on construction.

    A ``str`` subclass, so it prints, compares, sorts and serialises as the
    text it is; constructing one from anything else raises ``ValueError``.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> Digest:
        if not (isinstance(text, str) and text.startswith(_PREFIX)):
            raise ValueError(f"invalid digest {text!r}: expected sha256:<64 hex digits>")
        if not is_sha256_hex(text[len(_PREFIX) :]):
            raise ValueError(f"invalid digest {text!r}: expected sha256:<64 hex digits>")
        return super().__new__(cls, text)

    @classmethod
    def from_hex(cls, hex_digest: str) -> Digest:
        """The digest whose hex is ``hex_digest`` (64 lowercase hex digits)."""
        return cls(_PREFIX + hex_digest)

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        """The sha256 digest of ``data``."""
        return cls(_PREFIX + hashlib.sha256(data).hexdigest())

    @property
    def hex(self) -> str:
        """The 64 hex digits, without the ``sha256:`` prefix."""
        return self[len(_PREFIX) :]

    @property
    def short(self) -> str:
        """``sha256:1c62f47e…`` for messages that name many digests."""
        return f"{self[: len(_PREFIX) + 8]}…"


def sha256_file(path: Path, *, on_chunk: Callable[[int], None] | None = None) -> tuple[str, int]:
    """The file's sha256 (lowercase hex) and its size in bytes. OSError if unreadable.

    ``on_chunk`` is told the size of each chunk hashed (progress).
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
    return digest.hexdigest(), size


def copy_hashed(source: IO[bytes], out: IO[bytes]) -> tuple[str, int]:
    """Copy ``source`` to ``out`` in chunks; the sha256 hex and size of what was copied."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
