"""The sha256 of a file, read once in chunks: what the store, the index and the runtime check."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    """The file's sha256 (lowercase hex) and its size in bytes. OSError if unreadable."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
