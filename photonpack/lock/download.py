"""Verified downloads of locked files: every byte checked against the lock's digest.

Downloads run in parallel into a cache directory (the store's blobs), through
a temporary file that takes the blob's name only once its sha256 and size
matched. Standard library only (urllib): ``build`` fetches without pip.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from photonpack._digest import sha256_file
from photonpack._fs import AtomicFile
from photonpack.errors import IntegrityError
from photonpack.lock.index import IndexSettings, redact_url, stream

__all__ = ["LockedFile", "fetch_wheels", "with_credentials"]

_WORKERS = 8


class LockedFile(Protocol):
    """A file the lock pins: what ``fetch_wheels`` needs of a locked wheel."""

    @property
    def filename(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...


W = TypeVar("W", bound=LockedFile)


def fetch_wheels(
    wheels: Sequence[W],
    cache: Path,
    *,
    progress: Callable[[W, int], None] | None = None,
    index: IndexSettings | None = None,
    partial: Path | None = None,
    done: Callable[[W, Path], None] | None = None,
) -> dict[str, Path]:
    """Download ``wheels`` into ``cache/sha256/<hex>`` in parallel, each verified.

    Files already in the cache are re-hashed, not trusted. ``progress`` is
    called with each wheel and the bytes just received. Credentials of
    ``index`` URLs are sent to the same hosts (a lock never stores them).
    Downloads in progress live in ``partial`` (on the cache's filesystem; the
    cache directory itself by default) and are renamed into the cache once
    verified, so that a killed download leaves nothing in the cache.
    ``done(wheel, path)`` is called in the downloading thread once a file is
    verified (an exception it raises is the fetch's). Returns sha256 hex ->
    path. Raises :class:`IntegrityError` when bytes differ from the lock.
    """
    import concurrent.futures

    unique = {wheel.sha256: wheel for wheel in wheels}
    directory = cache / "sha256"
    directory.mkdir(parents=True, exist_ok=True)
    # The biggest first: with a 1 GB wheel among small ones, re-hashing it last
    # would keep one core busy alone at the end.
    biggest_first = sorted(unique.values(), key=lambda wheel: (-wheel.size, wheel.sha256))
    with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
        futures = {
            wheel.sha256: pool.submit(
                _fetch_one, wheel, directory, partial or directory, progress, index, done=done
            )
            for wheel in biggest_first
        }
        return {digest: futures[digest].result() for digest in sorted(futures)}


def with_credentials(url: str, index: IndexSettings | None) -> str:
    """``url`` with the ``user:password@`` that ``index`` configures for its host, if any."""
    if index is None:
        return url
    parts = urllib.parse.urlsplit(url)
    for configured in (index.index_url, *index.extra_index_urls, *index.find_links):
        known = urllib.parse.urlsplit(configured)
        if known.username is not None and (known.hostname, known.port) == (
            parts.hostname,
            parts.port,
        ):
            userinfo = known.netloc.rpartition("@")[0]
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
    return url


def _fetch_one(
    wheel: W,
    directory: Path,
    partial: Path,
    progress: Callable[[W, int], None] | None,
    index: IndexSettings | None,
    *,
    done: Callable[[W, Path], None] | None = None,
) -> Path:
    path = _fetch_verified(wheel, directory, partial, progress, index)
    if done is not None:
        done(wheel, path)
    return path


def _fetch_verified(
    wheel: W,
    directory: Path,
    partial: Path,
    progress: Callable[[W, int], None] | None,
    index: IndexSettings | None,
) -> Path:
    final = directory / wheel.sha256
    if final.is_file() and sha256_file(final) == (wheel.sha256, wheel.size):
        return final
    sha = hashlib.sha256()
    size = 0

    def check(_temp: Path) -> None:
        if (sha.hexdigest(), size) != (wheel.sha256, wheel.size):
            raise IntegrityError(
                f"{wheel.filename} from {redact_url(wheel.url)} does not match the lock: "
                f"expected sha256 {wheel.sha256} and {wheel.size} bytes, "
                f"got {'more than ' + str(wheel.size) if size > wheel.size else size} bytes"
                f"{'' if size > wheel.size else ' with sha256 ' + sha.hexdigest()}; "
                "the index serves different bytes than when the lock was made: "
                "re-lock only if you trust the new file"
            )

    atomic = AtomicFile(final, temp_dir=partial)
    try:
        for chunk in stream(with_credentials(wheel.url, index)):
            sha.update(chunk)
            size += len(chunk)
            if size > wheel.size:
                break
            atomic.write(chunk)
            if progress is not None:
                progress(wheel, len(chunk))
    except BaseException:
        atomic.abort()
        raise
    return atomic.commit(check=check, sync_dir=False)
