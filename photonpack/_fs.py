"""Atomic writes, written once: a file or a directory appears whole under its name, or not at all.

The recipe is the classic one: write a temporary file on the same filesystem,
flush and fsync it, rename it over the final name, then fsync the directory so
that the rename itself survives a power cut. A failure at any point leaves the
final name untouched and the temporary file removed. These helpers raise
``OSError``; each caller translates it into the error its user understands
(the store's, the lock's, the build's).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, cast

__all__ = [
    "AtomicFile",
    "Writeback",
    "atomic_write",
    "fsync_dir",
    "publish_dir",
    "start_writeback",
    "sync_filesystem",
    "write_atomic",
]


def fsync_dir(path: Path) -> None:
    """Make the renames into ``path`` durable (best effort: some filesystems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def start_writeback(fd: int) -> None:
    """Have the kernel start writing ``fd``'s dirty pages to disk, without waiting for it.

    A file written now and fsynced (or syncfs'd) later then reaches the disk while
    the writer goes on: the flush at the end waits for what is left, not for all of
    it. Linux's ``sync_file_range(SYNC_FILE_RANGE_WRITE)``; elsewhere nothing (the
    later flush does it all). It promises nothing about durability.
    """
    function = _sync_file_range()
    if function is not None:
        function(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # a failure only means no head start


_SYNC_FILE_RANGE_WRITE = 2


class Writeback:
    """:func:`start_writeback` from a thread of its own, for a writer that must not wait.

    ``sync_file_range`` blocks while the disk's request queue is full (a pull
    of the torch photon spent ~2 s there); ``start(fd)`` hands a duplicate of
    ``fd`` to the thread and returns. ``close`` (the ``with`` block's end)
    waits for what was handed over.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="photonpack-writeback")

    def start(self, fd: int) -> None:
        """Have the disk start on ``fd``'s dirty pages, soon; the caller may close ``fd``."""
        self._pool.submit(self._run, os.dup(fd))

    @staticmethod
    def _run(fd: int) -> None:
        try:
            start_writeback(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Writeback:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    import ctypes

    function = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)
    if function is None:
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem that holds ``path`` to disk (``syncfs``; ``sync`` without it)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # the C library this process runs on
    if not hasattr(libc, "syncfs"):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if libc.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(path))
    finally:
        os.close(fd)


class AtomicFile:
    """A temporary file that takes its final name only on :meth:`commit`.

    ``temp_dir`` must be on the final name's filesystem (default: its
    directory); the store keeps temporary files apart from its blobs so that a
    killed run leaves nothing that looks like one, and names them with
    ``prefix`` (its owner's pid) so that they can be collected.
    """

    def __init__(
        self,
        path: Path,
        *,
        temp_dir: Path | None = None,
        prefix: str | None = None,
        mode: int = 0o644,
    ) -> None:
        self.path = path
        self._mode = mode
        prefix = prefix if prefix is not None else f".{path.name}-"
        fd, name = tempfile.mkstemp(prefix=prefix, dir=temp_dir or path.parent)
        self.temp = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, data: bytes | memoryview) -> int:
        return self.file.write(data)

    def commit(
        self,
        *,
        target: Path | None = None,
        check: Callable[[Path], None] | None = None,
        sync: bool = True,
        sync_dir: bool = True,
    ) -> Path:
        """Flush, fsync, ``check(temp)``, rename to ``target`` (default: ``path``), fsync its dir.

        ``check`` may raise to refuse the bytes (the temporary file is then
        removed). ``sync=False`` skips both fsyncs, for files a crash may lose
        but not tear; ``sync_dir=False`` leaves the directory's fsync to a
        caller that renames many files into one directory.
        """
        final = target or self.path
        try:
            self.file.flush()
            if sync:
                os.fsync(self.file.fileno())
            self.file.close()
            self.temp.chmod(self._mode)
            if check is not None:
                check(self.temp)
            final.parent.mkdir(parents=True, exist_ok=True)
            self.temp.replace(final)
        except BaseException:
            self.abort()
            raise
        if sync and sync_dir:
            fsync_dir(final.parent)
        return final

    def abort(self) -> None:
        """Discard the temporary file; the final name is untouched."""
        self.file.close()
        self.temp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(
    path: Path, *, temp_dir: Path | None = None, mode: int = 0o644, sync: bool = True
) -> Iterator[BinaryIO]:
    """``with atomic_write(path) as out: out.write(...)``: ``path`` appears only on success."""
    atomic = AtomicFile(path, temp_dir=temp_dir, mode=mode)
    try:
        yield atomic.file
    except BaseException:
        atomic.abort()
        raise
    atomic.commit(sync=sync)


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644, sync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, mode=mode, sync=sync) as out:
        out.write(data)


def publish_dir(temp: Path, final: Path, *, marker: str | None = None, sync: bool = True) -> None:
    """Rename the finished directory ``temp`` to ``final``, replacing an incomplete leftover.

    ``marker`` names an empty file written into ``temp`` first: its presence
    under ``final`` is what says "complete". ``sync=False`` leaves the
    directory's fsync to a caller that publishes many directories into one.
    """
    if marker is not None:
        (temp / marker).write_bytes(b"")
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():  # an incomplete leftover of a killed run
        shutil.rmtree(final)
    temp.rename(final)
    if sync:
        fsync_dir(final.parent)
