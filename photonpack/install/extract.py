"""Write checked wheels into an environment's scheme, per the binary distribution format.

Members are read from a memory map of the wheel, inflated in one call,
hashed, and written with one ``write`` only once their hash matches RECORD;
members over ``_STREAM_BYTES`` (a torch ``.so``, model weights) are read,
inflated, hashed and written in pieces instead, and their file is removed if
the hash does not match, so memory stays flat whatever a wheel holds;
big wheels are split into chunks so that every core has work, and each file
is reported as soon as it is on disk, so that bytecode compilation starts
before the last wheel is out (inflating, sha256 and writes release the GIL).
Members are inflated by zlib-ng where it is installed (every CPython):
twice as fast as the zlib CPython links, on the install's critical path.
``install.py`` decides what to write (conflicts, shared files) and writes
the RECORDs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import mmap
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photonpack.install.record import b64, record_hash
from photonpack.install.venv import Scheme
from photonpack.install.wheel import Wheel, WheelFile, corrupt

__all__ = [
    "INSTALLER",
    "SCRIPT_SHEBANG",
    "InstalledDist",
    "Job",
    "OnWritten",
    "extract_wheels",
    "target_path",
    "write_new",
]

INSTALLER = "photonpack"
# Scripts find the environment's python next to themselves, so an environment
# built in a temp directory keeps working once renamed into place.
SCRIPT_SHEBANG = (
    '#!/bin/sh\n\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")/python" "$0" "$@"\n\' \'\'\'\n'
)
# A unit of extraction work: big wheels are cut into chunks of about this many
# bytes (or files), so that one wheel with thousands of files is not the long pole.
_CHUNK_BYTES = 4 << 20
_CHUNK_FILES = 96
# Members bigger than this are streamed in pieces of _PIECE_BYTES, not held whole.
_STREAM_BYTES = 16 << 20
_PIECE_BYTES = 1 << 20

# glibc serves a request of this many bytes or more with a mapping of its own, given back when
# freed (see _fixed_mmap_threshold); its mallopt parameter number (malloc.h).
_MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3

OnWritten = Callable[[Path, Sequence[tuple[Path, int]]], None]


@functools.cache
def _fixed_mmap_threshold() -> None:
    """Keep glibc from moving big buffers into the worker threads' heaps (once per process).

    glibc raises its mmap threshold to the size of each mapped block freed (up to
    32 MiB), so the 1-16 MiB buffers of extraction (members inflated whole, pieces of
    streamed ones) come from per-thread heaps that keep the space they freed:
    installing the torch photon's 3 GB of wheels, anonymous memory grew with what
    was written, to a 314 MB peak. Fixed at 1 MiB: 97 MB (4 MiB: no better), for
    ~10 % more system CPU. No-op without glibc.
    """
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


try:
    from zlib_ng import zlib_ng

    def _inflater() -> Any:
        return zlib_ng.decompressobj(-zlib.MAX_WBITS)

    def _inflate(raw: memoryview, limit: int) -> bytes:
        """A raw deflate stream, inflated to at most ``limit`` bytes (zlib.error if bad)."""
        try:
            return zlib_ng.decompressobj(-zlib.MAX_WBITS).decompress(raw, limit)
        except zlib_ng.error as exc:  # type: ignore[misc]  # its stub types it as an instance
            raise zlib.error(str(exc)) from exc

    # its stub types zlib_ng.error as an instance
    _INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, zlib_ng.error)  # type: ignore[assignment]

except ImportError:  # an interpreter zlib-ng has no wheel for: the standard zlib

    def _inflater() -> Any:
        return zlib.decompressobj(-zlib.MAX_WBITS)

    _INFLATE_ERRORS = (zlib.error,)

    def _inflate(raw: memoryview, limit: int) -> bytes:
        """A raw deflate stream, inflated to at most ``limit`` bytes (zlib.error if bad)."""
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, limit)


@dataclass(frozen=True, kw_only=True)
class Job:
    """A checked wheel to extract into ``scheme``."""

    wheel: Wheel
    scheme: Scheme
    targets: Sequence[Path]  # where each of ``wheel.files`` goes
    skip: set[str]  # members already there (another wheel's identical file)


@dataclass(frozen=True, kw_only=True)
class InstalledDist:
    """A distribution written into the environment; its RECORD is still to write."""

    label: str  # the wheel's filename, or RUNTIME
    dist_info: str  # its .dist-info directory in site-packages
    rows: tuple[tuple[Path, str, int], ...]  # (absolute path, "sha256=...", size)


def target_path(scheme: Scheme, wheel: Wheel, file: WheelFile) -> Path:
    if file.scheme == "site":  # nearly every file: no dict, no extra path object
        return scheme.site_packages / file.path
    base = {
        "scripts": scheme.scripts,
        "headers": scheme.headers / wheel.name,
        "data": scheme.root,
    }[file.scheme]
    return base / file.path


def _script_text(module: str, attr: str) -> str:
    head, _, rest = attr.partition(".")
    call = f"{head}.{rest}()" if rest else f"{head}()"
    return (
        f"{SCRIPT_SHEBANG}# -*- coding: utf-8 -*-\n"
        f"import re\nimport sys\nfrom {module} import {head}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({call})\n"
    )


def write_new(path: Path, data: bytes, executable: bool, *, readonly: bool = False) -> None:
    # O_EXCL: never write through anything that is already there.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    mode = (0o755 if executable else 0o644) & (0o555 if readonly else 0o777)
    fd = os.open(path, flags, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        if exc.filename is None:  # os.write does not say which file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        os.close(fd)


def _member_data(wheel: Wheel, file: WheelFile, view: memoryview) -> bytes:
    """The member's bytes, inflated from the mapped wheel and checked against RECORD.

    ``file.data_offset`` was read from the member's local header when the wheel's
    layout was checked (``ziplayout.py``).
    """
    start = file.data_offset
    raw = view[start : start + file.compressed_size]
    if len(raw) != file.compressed_size:
        raise corrupt(wheel.filename, f"member {file.member} is truncated")
    if file.method == zipfile.ZIP_STORED:
        data = bytes(raw)  # a copy: what is hashed is what is written
    elif file.method == zipfile.ZIP_DEFLATED:
        try:  # max_length bounds memory: a member may not inflate past its declared size
            data = _inflate(raw, file.size + 1)
        except zlib.error as exc:
            reason = f"member {file.member} is not valid deflate data"
            raise corrupt(wheel.filename, reason) from exc
    else:  # bzip2, lzma: rare in wheels, left to zipfile
        with zipfile.ZipFile(wheel.path) as zf:
            data = zf.read(file.member)
    if len(data) != file.size:
        raise corrupt(
            wheel.filename,
            f"member {file.member} holds {len(data)} bytes but RECORD says {file.size}",
        )
    digest = hashlib.new(file.algorithm, data).digest()
    if b64(digest) != file.digest:
        raise corrupt(
            wheel.filename,
            f"member {file.member} has {file.algorithm} {b64(digest)}, "
            f"but RECORD says {file.digest}",
        )
    return data


def _streams(file: WheelFile) -> bool:
    """Whether ``file`` is written in pieces (big, and stored or deflated)."""
    return file.size > _STREAM_BYTES and file.method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _write_streamed(wheel: Wheel, file: WheelFile, target: Path, *, readonly: bool) -> None:
    """Inflate, hash and write a big member piece by piece, read from the wheel's file.

    The file is removed again if its bytes are not the ones RECORD names: only
    what was hashed stays written, as for small members.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    mode = (0o755 if file.executable else 0o644) & (0o555 if readonly else 0o777)
    source = os.open(wheel.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        _stream_into(wheel, file, target, source=source, fd=os.open(target, flags, mode))
    finally:
        os.close(source)


def _stream_into(wheel: Wheel, file: WheelFile, target: Path, *, source: int, fd: int) -> None:
    """Copy the member from ``source`` (the wheel) into ``fd`` (``target``, closed here)."""
    digest = hashlib.new(file.algorithm)
    inflater = _inflater() if file.method == zipfile.ZIP_DEFLATED else None
    written = 0
    try:
        offset, end = file.data_offset, file.data_offset + file.compressed_size
        while offset < end:
            raw = os.pread(source, min(_PIECE_BYTES, end - offset), offset)
            if not raw:
                raise corrupt(wheel.filename, f"member {file.member} is truncated")
            offset += len(raw)
            for piece in _pieces(wheel, file, inflater, raw):
                written += len(piece)
                if written > file.size:
                    break
                digest.update(piece)
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view) :]
        if inflater is not None and not inflater.eof:
            raise corrupt(wheel.filename, f"member {file.member} is not valid deflate data")
        if written != file.size:
            raise corrupt(
                wheel.filename,
                f"member {file.member} holds {written} bytes but RECORD says {file.size}",
            )
        if b64(digest.digest()) != file.digest:
            raise corrupt(
                wheel.filename,
                f"member {file.member} has {file.algorithm} {b64(digest.digest())}, "
                f"but RECORD says {file.digest}",
            )
    except BaseException:
        os.close(fd)
        fd = -1
        target.unlink(missing_ok=True)
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def _pieces(wheel: Wheel, file: WheelFile, inflater: Any, raw: bytes) -> Iterator[bytes]:
    """The member's bytes that ``raw`` (its next compressed bytes) holds, in bounded pieces."""
    if inflater is None:
        yield raw
        return
    try:
        while True:
            out = inflater.decompress(raw, _PIECE_BYTES)
            if out:
                yield out
            raw = inflater.unconsumed_tail
            if (not raw and len(out) < _PIECE_BYTES) or inflater.eof:
                return
    except _INFLATE_ERRORS as exc:
        reason = f"member {file.member} is not valid deflate data"
        raise corrupt(wheel.filename, reason) from exc


def _extract_chunk(
    job: Job, start: int, stop: int, mapped: mmap.mmap, *, readonly: bool
) -> list[tuple[Path, str, int]]:
    """Write the job's files ``start:stop``; their RECORD rows."""
    wheel, skip = job.wheel, job.skip
    rows: list[tuple[Path, str, int]] = []
    made: set[Path] = set()
    with memoryview(mapped) as view:
        for file, target in zip(wheel.files[start:stop], job.targets[start:stop], strict=True):
            if file.member in skip:
                rows.append((target, f"{file.algorithm}={file.digest}", file.size))
                continue
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            if _streams(file) and file.scheme != "scripts":
                _write_streamed(wheel, file, target, readonly=readonly)
                rows.append((target, f"{file.algorithm}={file.digest}", file.size))
                continue
            data = _member_data(wheel, file, view)
            if file.scheme == "scripts" and data.startswith(b"#!python"):
                data = SCRIPT_SHEBANG.encode() + data.partition(b"\n")[2]
                write_new(target, data, executable=True, readonly=readonly)
                rows.append((target, record_hash(data), len(data)))
                continue
            write_new(target, data, file.executable, readonly=readonly)
            rows.append((target, f"{file.algorithm}={file.digest}", file.size))
    _release(mapped, wheel.files[start:stop])
    return rows


def _release(mapped: mmap.mmap, files: Sequence[WheelFile]) -> None:
    """Drop the mapped pages of ``files`` from this process's memory (the page cache keeps them).

    Without this, every page of every wheel read so far would count in the
    install's resident memory until the end. Safe on a read-only file mapping:
    a page touched again is simply read back.
    """
    if not files or not hasattr(mmap, "MADV_DONTNEED"):
        return
    first = min(file.data_offset for file in files)
    start = first - first % mmap.PAGESIZE
    stop = min(max(file.data_offset + file.compressed_size for file in files), len(mapped))
    if stop > start:
        with contextlib.suppress(OSError):
            mapped.madvise(mmap.MADV_DONTNEED, start, stop - start)


def _chunks(files: Sequence[WheelFile]) -> list[tuple[int, int]]:
    """``(start, stop)`` of each chunk of ``files``."""
    chunks: list[tuple[int, int]] = []
    start = size = 0
    for index, file in enumerate(files):
        size += file.size
        if size >= _CHUNK_BYTES or index + 1 - start >= _CHUNK_FILES:
            chunks.append((start, index + 1))
            start, size = index + 1, 0
    if start < len(files):
        chunks.append((start, len(files)))
    return chunks


def _finish(
    wheel: Wheel, scheme: Scheme, rows: list[tuple[Path, str, int]], readonly: bool
) -> InstalledDist:
    for script, module, attr in wheel.scripts:
        data = _script_text(module, attr).encode()
        scheme.scripts.mkdir(parents=True, exist_ok=True)
        write_new(scheme.scripts / script, data, executable=True, readonly=readonly)
        rows.append((scheme.scripts / script, record_hash(data), len(data)))
    installer = scheme.site_packages / wheel.dist_info / "INSTALLER"
    installer.parent.mkdir(parents=True, exist_ok=True)
    write_new(installer, f"{INSTALLER}\n".encode(), executable=False, readonly=readonly)
    rows.append((installer, record_hash(f"{INSTALLER}\n".encode()), len(INSTALLER) + 1))
    return InstalledDist(label=wheel.filename, dist_info=wheel.dist_info, rows=tuple(rows))


def _map(wheel: Wheel) -> mmap.mmap:
    with wheel.path.open("rb") as handle:
        try:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file
            raise corrupt(wheel.filename, f"it is not a valid zip archive ({exc})") from exc


def extract_wheels(
    jobs: Sequence[Job],
    *,
    on_written: OnWritten | None = None,
    workers: int | None = None,
    readonly: bool = False,
) -> list[InstalledDist]:
    """Extract checked wheels, each into its scheme, skipping the members named.

    ``on_written(site_packages, [(path, size), ...])`` is called from worker
    threads as files land, so byte-compilation starts before the last wheel
    is out. ``readonly`` creates the files without write permission. Returns
    the distributions in the order of ``jobs``.
    """
    _fixed_mmap_threshold()
    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    # Biggest first, so that the long poles start early.
    order = sorted(range(len(jobs)), key=lambda i: -sum(f.size for f in jobs[i].wheel.files))
    maps: dict[int, mmap.mmap] = {}
    futures: dict[int, list[Future[list[tuple[Path, str, int]]]]] = {}

    def run(index: int, start: int, stop: int) -> list[tuple[Path, str, int]]:
        job = jobs[index]
        rows = _extract_chunk(job, start, stop, maps[index], readonly=readonly)
        if on_written is not None:  # what this wheel wrote: a skipped file is another's
            files = job.wheel.files[start:stop]
            written = [
                (path, size)
                for file, (path, _digest, size) in zip(files, rows, strict=True)
                if file.member not in job.skip
            ]
            on_written(job.scheme.site_packages, written)
        return rows

    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photonpack-wheel")
        )
        stack.callback(lambda: pool.shutdown(wait=True, cancel_futures=True))
        for index in order:
            wheel = jobs[index].wheel
            maps[index] = _map(wheel)
            stack.callback(_close, maps[index])
            chunks = _chunks(wheel.files)
            futures[index] = [pool.submit(run, index, *chunk) for chunk in chunks]
        dists = []
        for index, job in enumerate(jobs):
            rows = [row for future in futures[index] for row in future.result()]
            dists.append(_finish(job.wheel, job.scheme, rows, readonly))
    return dists


def _close(mapped: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):  # a view still alive after an error
        mapped.close()
