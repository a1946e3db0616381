"""The archive format: (manifest, blobs) <-> one deterministic zstd-compressed tar.

Layout: ``photon.json`` (the canonical manifest bytes) first, then one
``blobs/sha256/<hex>`` member per distinct content, sorted by hex, then the two
zero blocks that end a tar archive; in one zstd frame, or for a big archive in
two, the manifest's padded to ``HEAD_ALIGN`` bytes and the blobs'. Reading
streams the file once with bounded memory and re-hashes every blob; nothing is
handed to a sink before its bytes matched the manifest.
"""

import hashlib
import io
import os
import struct
import tarfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import zstandard

from photonpack.archive.manifest import Manifest
from photonpack.archive.reader import (
    CHUNK_SIZE,
    MANIFEST_MEMBER,
    MAX_MANIFEST_SIZE,
    MAX_WINDOW_SIZE,
    Problem,
    blob_member,
    read_manifest,
    unpack,
)
from photonpack.archive.sinks import BlobSink, BlobWriter, DirectorySink, MemorySink, NullSink
from photonpack.archive.tarstream import member_header
from photonpack.archive.zstdframe import SKIPPABLE_MAGIC, ByteProgress
from photonpack.errors import BuildError, IntegrityError

__all__ = [
    "CHUNK_SIZE",
    "HEAD_ALIGN",
    "MANIFEST_MEMBER",
    "MAX_MANIFEST_SIZE",
    "MAX_WINDOW_SIZE",
    "SPLIT_SIZE",
    "ArchiveWriter",
    "BlobSink",
    "BlobWriter",
    "BodyWriter",
    "ByteProgress",
    "DirectorySink",
    "MemorySink",
    "NullSink",
    "Problem",
    "WriteProgress",
    "archive_head",
    "archive_mtime",
    "blob_member",
    "head_size",
    "manifest_frame",
    "read_manifest",
    "unpack",
    "write_archive",
]

# --- Determinism: every byte of the file follows from the manifest and blobs. ---
# mtime: SOURCE_DATE_EPOCH when set (reproducible-builds.org), else 1980-01-01,
# the zip epoch wheels use; never the wall clock or the files' own mtimes.
DEFAULT_MTIME = 315532800
# Owner, group and mode are fixed so umask and the builder's uid never leak in
# (tarstream.MEMBER_MODE; the reader refuses any other header: member_header).
# Tar format: POSIX pax (tarfile.PAX_FORMAT). For our short names and sizes
# under 8 GiB it writes plain ustar headers (no pax record at all); a blob over
# 8 GiB gets a standard pax "size" record that every tar reads, where GNU
# base-256 sizes would be an extension.
# zstd level 1: wheels are already deflated, so zstd finds little in them at any
# level, and the CPU it spends is paid by every build and every pull (which writes
# the archive while it downloads). Against level 3 (2 threads, this window and job
# size), level 1 takes about half the CPU: the torch wheel 0.47 s against 0.85 s,
# cudnn's 0.35 s against 0.80 s; a torch photon's wheels (2.76 GB) come out 0.5 %
# larger (2.698 GB against 2.683 GB). Level -1 saved ~0.4 s more there for 0.4 %
# more bytes.
# Readers need no level: archives written at level 3 read as before (a test checks
# it). The window (4 MiB) bounds what a reader must hold. The frame checksum
# makes any flipped byte fail even where no blob hash covers it (tar headers,
# padding). With threads >= 1 zstd's output is
# identical for any thread count (a test checks it), so we use the cores we have.
# The job size is fixed (it is part of what makes the output): zstd's default for
# this window, 16 MiB jobs, holds ~210 MiB of buffers with 2 threads and more
# with 4; 4 MiB jobs hold ~60 MiB with 4 threads, as fast, and nearly as small.
ZSTD_LEVEL = 1
ZSTD_WINDOW_LOG = 22
ZSTD_THREADS = max(1, min(4, os.cpu_count() or 1))
ZSTD_JOB_SIZE = 4 << 20
# Order and framing: photon.json, then blobs sorted by hex (so the same set of
# contents always lands in the same order), the two zero blocks that end a tar,
# no record padding, all of it in one zstd frame with nothing after it; except in a
# big archive (blobs of SPLIT_SIZE bytes or more in all), where the manifest is a
# frame of its own, then a skippable frame of zeros pads it to the next multiple of
# HEAD_ALIGN bytes (the head), then one frame holds the blobs and the end. That
# frame depends on the blobs alone, so a build writes it while it downloads them,
# after a head's room, before the manifest (which holds the handler contract) is
# known, and writes the head last (archive/early.py): a torch photon's 2.7 GB are
# compressed during the download instead of after it. Every writer applies the
# same rule, so the bytes still follow from the manifest and blobs alone.
SPLIT_SIZE = 64 << 20
HEAD_ALIGN = 64 << 10

_BLOCK = tarfile.BLOCKSIZE
_SKIPPABLE_HEADER = 8  # its magic number and its size


def archive_mtime() -> int:
    """The mtime stamped on every member: SOURCE_DATE_EPOCH or 1980-01-01."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return DEFAULT_MTIME
    if not value.isdigit():
        raise BuildError(
            f"SOURCE_DATE_EPOCH must be a whole number of seconds, found {value!r}; "
            "unset it or set it to e.g. the last commit time (git log -1 --format=%ct)"
        )
    return int(value)


# ---------------------------------------------------------------- writing


def _padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


def _zstd_compressor(threads: int = ZSTD_THREADS) -> zstandard.ZstdCompressor:
    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL,
        window_log=ZSTD_WINDOW_LOG,
        write_checksum=1,
        write_content_size=0,
        write_dict_id=0,
        threads=threads,
        job_size=ZSTD_JOB_SIZE,
    )
    return zstandard.ZstdCompressor(compression_params=params)


def manifest_frame(manifest: Manifest, *, mtime: int) -> bytes:
    """A big archive's first frame: the ``photon.json`` member alone."""
    frame = io.BytesIO()
    zw = _zstd_compressor().stream_writer(frame, closefd=False)
    _write_manifest(cast(BinaryIO, zw), manifest, mtime)
    zw.flush(zstandard.FLUSH_FRAME)
    return frame.getvalue()


def _write_manifest(zw: BinaryIO, manifest: Manifest, mtime: int) -> None:
    """The ``photon.json`` member (header, canonical bytes, padding), into ``zw``."""
    data = manifest.to_bytes()
    zw.write(member_header(MANIFEST_MEMBER, len(data), mtime))
    zw.write(data + _padding(len(data)))


def head_size(frame_size: int) -> int:
    """The size of a big archive's head whose manifest frame is ``frame_size`` bytes."""
    return -(-(frame_size + _SKIPPABLE_HEADER) // HEAD_ALIGN) * HEAD_ALIGN


def archive_head(manifest: Manifest, *, mtime: int) -> bytes:
    """A big archive's head: the manifest's frame, then zeros to a multiple of HEAD_ALIGN."""
    frame = manifest_frame(manifest, mtime=mtime)
    pad = head_size(len(frame)) - len(frame) - _SKIPPABLE_HEADER
    return frame + struct.pack("<II", SKIPPABLE_MAGIC, pad) + bytes(pad)


class WriteProgress(Protocol):
    """Told the bytes of blobs an archive holds, then how many are written so far."""

    def begin(self, total_bytes: int) -> None: ...

    def update(self, done: int) -> None: ...


def write_archive(
    out: BinaryIO,
    manifest: Manifest,
    blob_path: Callable[[str], Path],
    *,
    mtime: int | None = None,
    progress: ByteProgress | None = None,
    hashed: Collection[str] = frozenset(),
) -> None:
    """Write the archive of ``manifest`` to ``out``; ``blob_path(hex)`` locates each blob.

    Every blob is re-hashed while it is copied: a file that changed since the
    manifest was made raises IntegrityError and the output is unusable (the
    caller writes to a temp file and renames it only on success), except the
    blobs in ``hashed``, which the caller hashed itself since the manifest was
    made (a build fetches or re-hashes each wheel first): their sizes are checked.
    ``progress`` is told the bytes of blobs written so far, of ``manifest.total_size``.
    """
    writer = ArchiveWriter(out, manifest, mtime=mtime, progress=progress)
    for sha256 in manifest.blobs():
        writer.add_file(sha256, blob_path(sha256), hashed=sha256 in hashed)
    writer.close()


class BodyWriter:
    """The blobs of an archive, in order, then its end: all that follows the manifest.

    ``add_file`` copies (and re-hashes, unless ``hashed``) the next blob;
    ``add_stream`` returns where the next blob's bytes go, its caller vouching for
    them (the output is a temp file, renamed only once every blob was verified);
    ``close`` ends the frame. Alone, it writes a big archive's blobs' frame
    before its manifest is known (``archive/early.py``).
    """

    def __init__(
        self,
        out: BinaryIO,
        blobs: Mapping[str, int],
        labels: Mapping[str, list[str]],
        *,
        mtime: int,
        progress: ByteProgress | None = None,
        threads: int = ZSTD_THREADS,
        zw: BinaryIO | None = None,
    ) -> None:
        self._stamp = mtime
        self._labels = labels
        self._order = iter(blobs.items())
        self._report = progress or (lambda _done: None)
        self._written = 0
        self._open: int | None = None  # the size of the blob being streamed
        self._zw: BinaryIO = zw or cast(
            BinaryIO, _zstd_compressor(threads).stream_writer(out, closefd=False)
        )

    def _next(self, sha256: str) -> int:
        self._end_stream()
        expected, size = next(self._order, ("", 0))
        if sha256 != expected:
            raise AssertionError(f"blob {sha256} written out of order (expected {expected!r})")
        self._zw.write(member_header(blob_member(sha256), size, self._stamp))
        return size

    def add_file(self, sha256: str, path: Path, *, hashed: bool = False) -> None:
        """The next blob, copied from ``path`` and re-hashed on the way (unless ``hashed``)."""
        size = self._next(sha256)
        label = ", ".join(self._labels[sha256])
        _copy_blob(
            self._zw, path, sha256, size, label,
            report=self._report, before=self._written, hashed=hashed,
        )  # fmt: skip
        self._written += size
        self._zw.write(_padding(size))

    def add_stream(self, sha256: str) -> BinaryIO:
        """Where the next blob's bytes go: exactly its size, in order, then the next call."""
        self._open = self._next(sha256)
        return self._zw

    def _end_stream(self) -> None:
        if self._open is not None:
            self._written += self._open
            self._report(self._written)
            self._zw.write(_padding(self._open))
            self._open = None

    def close(self) -> None:
        """The end of the tar stream and of the zstd frame (``out`` stays open)."""
        self._end_stream()
        if next(self._order, None) is not None:
            raise AssertionError("the archive was closed before its last blob")
        self._zw.write(b"\0" * (2 * _BLOCK))
        cast(zstandard.ZstdCompressionWriter, self._zw).flush(zstandard.FLUSH_FRAME)


class ArchiveWriter(BodyWriter):
    """:func:`write_archive` a blob at a time, in the manifest's order, for blobs that
    arrive as streams (a pull writes each one while it downloads and hashes it)."""

    def __init__(
        self,
        out: BinaryIO,
        manifest: Manifest,
        *,
        mtime: int | None = None,
        progress: ByteProgress | None = None,
    ) -> None:
        stamp = archive_mtime() if mtime is None else mtime
        zw = None
        if manifest.total_size >= SPLIT_SIZE:
            out.write(archive_head(manifest, mtime=stamp))
        else:
            zw = cast(BinaryIO, _zstd_compressor().stream_writer(out, closefd=False))
            _write_manifest(zw, manifest, stamp)
        super().__init__(
            out,
            manifest.blobs(),
            manifest.blob_labels(),
            mtime=stamp,
            progress=progress,
            zw=zw,
        )


def _copy_blob(
    zw: BinaryIO,
    path: Path,
    sha256: str,
    size: int,
    label: str,
    *,
    report: ByteProgress,
    before: int,
    hashed: bool,
) -> None:
    digest = hashlib.sha256()
    copied = 0
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(min(CHUNK_SIZE, size - copied + 1)):
                copied += len(chunk)
                if copied > size:
                    break
                if not hashed:
                    digest.update(chunk)
                zw.write(chunk)
                report(before + copied)
    except OSError as exc:
        raise BuildError(f"cannot read {path} ({label}): {exc.strerror or exc}") from exc
    if copied != size or (not hashed and digest.hexdigest() != sha256):
        found = "more bytes" if copied > size else f"{copied} bytes, sha256 {digest.hexdigest()}"
        raise IntegrityError(
            f"{path} ({label}) changed after the manifest was made: expected {size} bytes, "
            f"sha256 {sha256}, found {found}; run photonpack verify --store to take the damaged "
            "copy out of use, then build or pull again"
        )
