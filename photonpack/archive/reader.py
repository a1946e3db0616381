"""Reading an archive: one streaming pass that re-hashes every byte, with bounded memory.

The zstd frame is walked block by block as it streams (truncation and trailing
data are caught without a second read), tar headers are parsed here rather
than by ``tarfile``'s stream mode (exact refusals, no seeking), and sha256
runs in a second thread. ``bundle`` re-exports the public names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import queue
import re
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from photonpack.archive.manifest import Manifest
from photonpack.archive.sinks import BlobSink, NullSink
from photonpack.errors import ArchiveError, IntegrityError

__all__ = [
    "CHUNK_SIZE",
    "MANIFEST_MEMBER",
    "MAX_MANIFEST_SIZE",
    "MAX_WINDOW_SIZE",
    "Problem",
    "blob_member",
    "read_manifest",
    "unpack",
]

MANIFEST_MEMBER = "photon.json"

# --- Reading limits: memory stays bounded whatever the archive claims. ---
MAX_WINDOW_SIZE = 1 << 24  # 4x what we write; a bigger window is refused
MAX_MANIFEST_SIZE = 64 << 20
MAX_PAX_SIZE = 1 << 16
CHUNK_SIZE = 1 << 20
_HASH_QUEUE_DEPTH = 8  # chunks in flight to the hashing thread: 8 MiB at most

_BLOCK = tarfile.BLOCKSIZE
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BLOB_NAME = re.compile(r"blobs/sha256/([0-9a-f]{64})")
_FRAME = "(zstd frame)"
_END = "(end of archive)"


def blob_member(sha256: str) -> str:
    """The tar member name of a blob."""
    return f"blobs/sha256/{sha256}"


# ---------------------------------------------------------------- problems


@dataclasses.dataclass(frozen=True, kw_only=True)
class Problem:
    """One integrity failure: which member, what was expected, what was found."""

    member: str
    expected: str
    found: str
    label: str = ""  # what the member stands for: "counter.py", "wheel:six-1.16.0-....whl"

    def __str__(self) -> str:
        label = f" ({self.label})" if self.label else ""
        return f"{self.member}{label}: expected {self.expected}, found {self.found}"


class _Fatal(Exception):
    """The stream cannot be read further; carries the problem that stopped it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _integrity_error(path: Path, problems: list[Problem]) -> IntegrityError:
    lines = "\n".join(f"  {p}" for p in problems)
    noun = "problem" if len(problems) == 1 else "problems"
    return IntegrityError(
        f"{path} failed verification ({len(problems)} {noun}):\n{lines}\n"
        "the archive was damaged or altered; fetch or build it again"
    )


# ---------------------------------------------------------------- reading


class _FrameGuard:
    """Passes compressed bytes through while walking zstd block headers.

    zstandard's stream reader silently stops at a truncated frame and does not
    say where the frame ended; walking the 3-byte block headers tells both, so
    truncation and trailing data are refused without reading the file twice.
    """

    def __init__(self, raw: BinaryIO, header_size: int, checksum: bool) -> None:
        self._raw = raw
        self._skip = header_size
        self._tail = 4 if checksum else 0
        self._pending = b""
        self._last = False
        self._pos = 0
        self.end: int | None = None

    @property
    def complete(self) -> bool:
        """Whether the whole frame (last block and checksum) has gone through."""
        return self.end is not None

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the frame; the end of the frame reads as the end of the file."""
        if self.end is not None:
            return b""
        data = self._raw.read(size)
        inside = self._scan(data)
        self._pos += len(data)
        return data if inside is None else data[:inside]

    def _scan(self, data: bytes) -> int | None:
        """Walk block headers in ``data``; returns where in it the frame ends, if it does."""
        i, n = 0, len(data)
        while i < n or (self._last and self._skip == 0):
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
            elif self._last:
                self.end = self._pos + i
                return i
            else:
                take = data[i : i + 3 - len(self._pending)]
                self._pending += take
                i += len(take)
                if len(self._pending) == 3:
                    value = int.from_bytes(self._pending, "little")
                    self._pending = b""
                    block_type, block_size = (value >> 1) & 3, value >> 3
                    self._skip = 1 if block_type == 1 else block_size
                    if value & 1:
                        self._last = True
                        self._skip += self._tail
        return None

    def finish(self, file_size: int) -> Problem | None:
        """After decompression: the frame must be complete and the file must end with it."""
        while self.end is None and self.read(CHUNK_SIZE):
            pass
        if self.end is None:
            return Problem(
                member=_FRAME,
                expected="a complete zstd frame with its checksum",
                found=f"the file ends after {file_size} bytes, inside the frame (truncated)",
            )
        if file_size > self.end:
            return Problem(
                member="(after the zstd frame)",
                expected=f"the end of the file at byte {self.end}",
                found=f"{file_size - self.end} bytes of trailing data",
            )
        return None


_DATA, _DIGEST, _STOP = range(3)


class _Hasher:
    """sha256 in a second thread: hashlib releases the GIL, so it overlaps decompression."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[int, bytes | memoryview]] = queue.Queue(_HASH_QUEUE_DEPTH)
        self._results: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="photonpack-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        digest = hashlib.sha256()
        while True:
            op, data = self._queue.get()
            if op == _DATA:
                digest.update(data)
            elif op == _DIGEST:
                self._results.put(digest.hexdigest())
                digest = hashlib.sha256()
            else:
                return

    def update(self, data: bytes | memoryview) -> None:
        self._queue.put((_DATA, data))

    def hexdigest(self) -> str:
        self._queue.put((_DIGEST, b""))
        return self._results.get()

    def close(self) -> None:
        self._queue.put((_STOP, b""))
        self._thread.join()


class _Stream:
    """Decompressed bytes handed out as views of big chunks, with the member being read."""

    def __init__(self, reader: zstandard.ZstdDecompressionReader, guard: _FrameGuard) -> None:
        self._reader = reader
        self.guard = guard
        self._buf = memoryview(b"")
        self.member = MANIFEST_MEMBER

    def _fill(self) -> bool:
        try:
            data = self._reader.read(CHUNK_SIZE)
        except zstandard.ZstdError as exc:
            raise _Fatal(
                Problem(member=self.member, expected="a valid zstd stream", found=str(exc))
            ) from exc
        self._buf = memoryview(data)
        return bool(data)

    def exact(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only at the end of the stream."""
        parts: list[bytes] = []
        need = size
        while need and (self._buf or self._fill()):
            part = self._buf[:need]
            parts.append(bytes(part))
            self._buf = self._buf[len(part) :]
            need -= len(part)
        return b"".join(parts)

    def chunks(self, size: int) -> Iterator[memoryview]:
        """Views covering the next ``size`` bytes; stops early at the end of the stream."""
        need = size
        while need and (self._buf or self._fill()):
            part = self._buf[:need]
            self._buf = self._buf[len(part) :]
            need -= len(part)
            yield part

    def skip(self, size: int) -> int:
        """Discard ``size`` bytes; returns how many were there."""
        return sum(len(c) for c in self.chunks(size))

    def rest_is_zeros(self) -> int:
        """Read to the end; returns the length of the spans that are not zero padding."""
        nonzero = 0
        while self._buf or self._fill():
            nonzero += len(bytes(self._buf).strip(b"\0"))
            self._buf = memoryview(b"")
        return nonzero


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        fh = path.open("rb")
        return fh, os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _frame_start(fh: BinaryIO, path: Path) -> tuple[int, bool, Problem | None]:
    """Check the zstd frame header; returns (header size, has checksum, window problem)."""
    head = fh.read(18)  # the longest zstd frame header
    fh.seek(0)
    if not head.startswith(_ZSTD_MAGIC):
        raise ArchiveError(
            f"{path} is not a photon archive: it is not zstd-compressed "
            f"(first bytes {head[:4].hex() or 'none'}, expected {_ZSTD_MAGIC.hex()})"
        )
    try:
        params = zstandard.get_frame_parameters(head)
        header_size = zstandard.frame_header_size(head)
    except zstandard.ZstdError as exc:
        raise ArchiveError(
            f"{path} is not a photon archive: bad zstd frame header ({exc})"
        ) from exc
    problem = None
    if params.window_size > MAX_WINDOW_SIZE:
        problem = Problem(
            member=_FRAME,
            expected=f"a window of at most {MAX_WINDOW_SIZE} bytes",
            found=f"a window of {params.window_size} bytes",
        )
    elif not params.has_checksum:
        problem = Problem(member=_FRAME, expected="a frame checksum", found="none")
    return header_size, params.has_checksum, problem


def _next_header(stream: _Stream) -> tarfile.TarInfo | None:
    """The next member's header (pax size applied); None at the end-of-archive block."""
    pax_size: int | None = None
    while True:
        block = stream.exact(_BLOCK)
        if len(block) < _BLOCK:
            raise _Fatal(
                Problem(
                    member=_END,
                    expected="another tar header or the end-of-archive blocks",
                    found="the end of the stream (truncated)",
                )
            )
        if block == b"\0" * _BLOCK:
            return None
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise _Fatal(
                Problem(member=stream.member, expected="a valid tar header", found=str(exc))
            ) from exc
        if info.type != tarfile.XHDTYPE:
            if pax_size is not None:
                info.size = pax_size
            return info
        if info.size > MAX_PAX_SIZE:
            raise _Fatal(
                Problem(
                    member=info.name,
                    expected=f"a pax header of at most {MAX_PAX_SIZE} bytes",
                    found=f"{info.size} bytes",
                )
            )
        records = stream.exact(info.size)
        stream.skip(-info.size % _BLOCK)
        pax_size = _pax_size(records, info.name)


def _pax_size(records: bytes, member: str) -> int | None:
    """The ``size`` of a pax header; any other key could rename or retype a member."""
    size = None
    for line in records.split(b"\n"):
        if not line:
            continue
        _, _, keyvalue = line.partition(b" ")
        key, _, value = keyvalue.partition(b"=")
        if key != b"size" or not value.isdigit():
            raise _Fatal(
                Problem(
                    member=member,
                    expected="only a pax 'size' record",
                    found=f"record {key.decode(errors='replace')!r}",
                )
            )
        size = int(value)
    return size


_NO_DATA = frozenset(
    {
        tarfile.LNKTYPE,
        tarfile.SYMTYPE,
        tarfile.DIRTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
    }
)


def _regular(info: tarfile.TarInfo) -> bool:
    # Not TarInfo.isreg(): that also accepts GNU sparse and contiguous files.
    return info.type in (tarfile.REGTYPE, tarfile.AREGTYPE)


def _type_name(info: tarfile.TarInfo) -> str:
    names = {
        tarfile.SYMTYPE: "a symbolic link",
        tarfile.LNKTYPE: "a hard link",
        tarfile.DIRTYPE: "a directory",
        tarfile.CHRTYPE: "a character device",
        tarfile.BLKTYPE: "a block device",
        tarfile.FIFOTYPE: "a FIFO",
    }
    return names.get(info.type, f"tar type {info.type!r}")


class _Scan:
    """One pass over an archive: checks every member against the manifest."""

    def __init__(self, path: Path, sink: BlobSink, report: Callable[[Problem], None]) -> None:
        self.path = path
        self.sink = sink
        self.report = report
        self.manifest: Manifest | None = None

    def read_manifest(self, stream: _Stream) -> Manifest:
        try:
            info = _next_header(stream)
        except _Fatal as exc:
            not_tar = exc.problem.expected == "a valid tar header"
            if not_tar or (exc.problem.member == _END and stream.guard.complete):
                raise ArchiveError(
                    f"{self.path} is not a photon archive: zstd data, but not a tar stream "
                    f"({exc.problem.found})"
                ) from None
            raise
        if info is None or info.name != MANIFEST_MEMBER:
            found = "an empty tar stream" if info is None else f"{info.name!r}"
            raise _Fatal(
                Problem(
                    member=found, expected=f"{MANIFEST_MEMBER} as the first member", found=found
                )
            )
        if not _regular(info):
            raise _Fatal(
                Problem(member=MANIFEST_MEMBER, expected="a regular file", found=_type_name(info))
            )
        if info.size > MAX_MANIFEST_SIZE:
            raise _Fatal(
                Problem(
                    member=MANIFEST_MEMBER,
                    expected=f"at most {MAX_MANIFEST_SIZE} bytes",
                    found=f"{info.size} bytes",
                )
            )
        data = stream.exact(info.size)
        if len(data) < info.size:
            raise _Fatal(_short(MANIFEST_MEMBER, info.size, len(data)))
        stream.skip(-info.size % _BLOCK)
        try:
            manifest = Manifest.from_bytes(data)
        except ArchiveError as exc:
            raise _Fatal(
                Problem(member=MANIFEST_MEMBER, expected="a valid manifest", found=exc.message)
            ) from exc
        if manifest.to_bytes() != data:
            raise _Fatal(
                Problem(
                    member=MANIFEST_MEMBER,
                    expected="canonical JSON (sorted keys, no spaces)",
                    found="another encoding of a manifest",
                )
            )
        self.manifest = manifest
        return manifest

    def members(self, stream: _Stream, manifest: Manifest) -> None:
        expected = manifest.blobs()
        labels = {k: ", ".join(v) for k, v in manifest.blob_labels().items()}
        seen: set[str] = set()
        previous = ""
        hasher = _Hasher()
        try:
            while (info := _next_header(stream)) is not None:
                stream.member = info.name
                match = _BLOB_NAME.fullmatch(info.name)
                sha256 = match.group(1) if match else ""
                problem = self._check_member(info, sha256, previous, expected, labels)
                previous = max(previous, info.name)
                if problem is not None:
                    self.report(problem)
                    seen.add(sha256)
                    self._skip(stream, info)
                    continue
                seen.add(sha256)
                self._blob(stream, info, sha256, labels[sha256], hasher)
        finally:
            hasher.close()
        for sha256 in sorted(set(expected) - seen):
            self.report(
                Problem(
                    member=blob_member(sha256),
                    label=labels[sha256],
                    expected=f"a member of {expected[sha256]} bytes, listed in {MANIFEST_MEMBER}",
                    found="no such member (missing)",
                )
            )

    def _check_member(  # noqa: PLR0911 - one return per refusal reads best
        self,
        info: tarfile.TarInfo,
        sha256: str,
        previous: str,
        expected: dict[str, int],
        labels: dict[str, str],
    ) -> Problem | None:
        name = info.name
        if not _regular(info):
            return Problem(member=name, expected="a regular file", found=_type_name(info))
        if not sha256:
            return Problem(
                member=name,
                expected="a member named blobs/sha256/<64 hex digits>",
                found=repr(name),
            )
        if name == previous:
            return Problem(member=name, expected="each blob once", found="a duplicate member")
        if name < previous:
            return Problem(
                member=name, expected=f"members sorted by name, after {previous}", found="unsorted"
            )
        if sha256 not in expected:
            return Problem(
                member=name,
                expected=f"only blobs listed in {MANIFEST_MEMBER}",
                found="an unlisted blob",
            )
        if info.size != expected[sha256]:
            return Problem(
                member=name,
                label=labels[sha256],
                expected=f"{expected[sha256]} bytes",
                found=f"{info.size} bytes",
            )
        return None

    def _skip(self, stream: _Stream, info: tarfile.TarInfo) -> None:
        size = 0 if info.type in _NO_DATA else info.size
        got = stream.skip(size)
        if got < size:
            raise _Fatal(_short(info.name, size, got))
        stream.skip(-size % _BLOCK)

    def _blob(
        self, stream: _Stream, info: tarfile.TarInfo, sha256: str, label: str, hasher: _Hasher
    ) -> None:
        writer = None if self.sink.has(sha256) else self.sink.open(sha256, info.size)
        got = 0
        try:
            for chunk in stream.chunks(info.size):
                got += len(chunk)
                hasher.update(chunk)
                if writer is not None:
                    writer.write(chunk)
            found = hasher.hexdigest()
            if got < info.size:
                raise _Fatal(_short(info.name, info.size, got, label))
            stream.skip(-info.size % _BLOCK)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if found != sha256:
            if writer is not None:
                writer.abort()
            self.report(
                Problem(
                    member=info.name,
                    label=label,
                    expected=f"sha256 {sha256}",
                    found=f"sha256 {found}",
                )
            )
        elif writer is not None:
            writer.commit()


def _short(member: str, size: int, got: int, label: str = "") -> Problem:
    return Problem(
        member=member,
        label=label,
        expected=f"{size} bytes",
        found=f"{got} bytes before the end of the stream (truncated)",
    )


def _decompressor(fh: BinaryIO, guard: _FrameGuard) -> zstandard.ZstdDecompressionReader:
    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_SIZE)
    source: BinaryIO = guard  # type: ignore[assignment]  # it only needs read()
    return dctx.stream_reader(source, read_size=CHUNK_SIZE, read_across_frames=False, closefd=False)


def read_manifest(path: Path) -> Manifest:
    """The manifest of an archive from its first member only: fast, and not a verification."""
    fh, _ = _open(path)
    with fh:
        header_size, checksum, problem = _frame_start(fh, path)
        if problem is not None:
            raise _integrity_error(path, [problem])
        guard = _FrameGuard(fh, header_size, checksum)
        stream = _Stream(_decompressor(fh, guard), guard)
        try:
            return _Scan(path, NullSink(), _raise).read_manifest(stream)
        except _Fatal as exc:
            raise _integrity_error(path, [exc.problem]) from None


def _raise(problem: Problem) -> None:
    raise _Fatal(problem)


def unpack(
    path: Path,
    sink: BlobSink,
    *,
    on_problem: Callable[[Problem], None] | None = None,
) -> Manifest:
    """Stream ``path`` once, verify everything, hand matching blobs to ``sink``.

    Without ``on_problem`` the first problem raises IntegrityError. With it,
    problems that leave the stream readable (a bad digest, an unlisted or
    missing member) are reported and reading goes on; a problem that stops the
    stream (truncation, corrupt zstd data, a bad manifest) is reported and then
    raised. ArchiveError: the file is unreadable or not a zstd tar at all.
    """
    fh, file_size = _open(path)
    problems: list[Problem] = []

    def report(problem: Problem) -> None:
        problems.append(problem)
        if on_problem is None:
            raise _Fatal(problem)
        on_problem(problem)

    guard: _FrameGuard | None = None
    with fh:
        header_size, checksum, problem = _frame_start(fh, path)
        try:
            if problem is not None:
                report(problem)
                raise _Fatal(problem)
            guard = _FrameGuard(fh, header_size, checksum)
            stream = _Stream(_decompressor(fh, guard), guard)
            scan = _Scan(path, sink, report)
            manifest = scan.read_manifest(stream)
            scan.members(stream, manifest)
            stream.member = _END
            if nonzero := stream.rest_is_zeros():
                report(
                    Problem(
                        member=_END,
                        expected="nothing after the end-of-archive blocks",
                        found=f"{nonzero} bytes of trailing data in the tar stream",
                    )
                )
            if (tail := guard.finish(file_size)) is not None:
                report(tail)
        except _Fatal as exc:
            stopped = [exc.problem]
            if exc.problem.found.endswith("(truncated)") and guard is not None:
                # Say why the stream ended: usually the file itself is cut short.
                frame = guard.finish(file_size)
                stopped += [frame] if frame is not None and frame.member == _FRAME else []
            for stop in stopped:
                if stop not in problems:
                    problems.append(stop)
                    if on_problem is not None:
                        on_problem(stop)
            raise _integrity_error(path, problems) from None
        except OSError as exc:
            raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return manifest
