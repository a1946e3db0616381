"""Reading limits: memory stays bounded whatever an archive claims.

Every reader of the archive format (the zstd frame walker, the tar header
stream, the verifying scan) takes its bounds from here, so the worst case of
one streaming pass can be read off in one place.
"""

__all__ = [
    "CHUNK_SIZE",
    "HASH_QUEUE_DEPTH",
    "MAX_MANIFEST_SIZE",
    "MAX_PAX_SIZE",
    "MAX_WINDOW_SIZE",
]

MAX_WINDOW_SIZE = 1 << 24  # 4x what we write; a bigger window is refused
MAX_MANIFEST_SIZE = 64 << 20
MAX_PAX_SIZE = 1 << 16
CHUNK_SIZE = 1 << 20
HASH_QUEUE_DEPTH = 8  # chunks in flight to the hashing thread: 8 MiB at most
