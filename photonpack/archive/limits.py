"""Reading limits: memory, time and expansion stay bounded whatever an archive claims.

Every reader of the archive format (the zstd frame walker, the tar header
stream, the verifying scan) takes its bounds from here, so the worst case of
one streaming pass can be read off in one place. The one bound a user may need
to move, the decompression ratio, is read from ``PHOTONPACK_MAX_RATIO``.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Mapping

from photonpack.errors import UsageError

__all__ = [
    "CHUNK_SIZE",
    "HASH_QUEUE_DEPTH",
    "MAX_END_PADDING",
    "MAX_MANIFEST_SIZE",
    "MAX_PAX_SIZE",
    "MAX_RATIO",
    "MAX_WINDOW_SIZE",
    "RATIO_ALLOWANCE",
    "RATIO_ENV",
    "max_ratio",
]

MAX_WINDOW_SIZE = 1 << 24  # 4x what we write; a bigger window is refused
MAX_MANIFEST_SIZE = 64 << 20
MAX_PAX_SIZE = 1 << 16
CHUNK_SIZE = 1 << 20
HASH_QUEUE_DEPTH = 8  # chunks in flight to the hashing thread: 8 MiB at most
# After the two end-of-archive blocks, tar pads to a record (20 blocks); more is not tar's.
MAX_END_PADDING = tarfile.RECORDSIZE
# A zip bomb's defence: past the first RATIO_ALLOWANCE decompressed bytes, an archive
# may expand at most MAX_RATIO times what it has read. Wheels are already deflated
# (about 1:1) and source compresses ~5:1; a gigabyte of zeros is ~30,000:1.
MAX_RATIO = 1000
RATIO_ALLOWANCE = 64 << 20
RATIO_ENV = "PHOTONPACK_MAX_RATIO"


def max_ratio(environ: Mapping[str, str] = os.environ) -> int:
    """The decompression ratio bound: ``PHOTONPACK_MAX_RATIO`` or ``MAX_RATIO``."""
    text = environ.get(RATIO_ENV)
    if text is None:
        return MAX_RATIO
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise UsageError(
            f"{RATIO_ENV} must be a whole number >= 1 (the largest decompressed:compressed "
            f"ratio an archive may have), found {text!r}; unset it for {MAX_RATIO} or set it "
            "higher for an archive of very compressible data"
        )
    return int(text)
