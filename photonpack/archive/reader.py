"""Reading an archive: one streaming pass that re-hashes every byte, with bounded memory.

The scan checks ``photon.json`` first (the first member, canonical JSON), then
every blob against it: names, order, sizes and sha256, which runs in a second
thread. The zstd frame is walked by ``zstdframe.py`` and the tar headers are
parsed by ``tarstream.py`` as the file streams; problems found on the way are
reported one by one or raised as one IntegrityError. The ``archive`` package
re-exports the public names.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import queue
import re
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from photonpack._digest import SHA256_HEX
from photonpack.archive.limits import (
    CHUNK_SIZE,
    HASH_QUEUE_DEPTH,
    MAX_MANIFEST_SIZE,
    MAX_WINDOW_SIZE,
    max_ratio,
)
from photonpack.archive.manifest import Manifest
from photonpack.archive.problem import Fatal, Problem, integrity_error
from photonpack.archive.sinks import BlobSink, NullSink
from photonpack.archive.tarstream import (
    BLOCK,
    END_MEMBER,
    MEMBER_MODE,
    NO_DATA,
    Stream,
    member_header,
    next_header,
    regular,
    type_name,
)
from photonpack.archive.zstdframe import (
    FRAME_MEMBER,
    ByteProgress,
    FrameGuard,
    decompressor,
    frame_start,
)
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
_BLOB_NAME = re.compile(f"blobs/sha256/({SHA256_HEX.pattern})")


def blob_member(sha256: str) -> str:
    """The tar member name of a blob."""
    return f"blobs/sha256/{sha256}"


def _integrity_error(path: Path, problems: list[Problem]) -> IntegrityError:
    return integrity_error(
        str(path), problems, "the archive was damaged or altered: fetch or build it again"
    )


_DATA, _DIGEST, _STOP = range(3)


class _Hasher:
    """sha256 in a second thread: hashlib releases the GIL, so it overlaps decompression."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[int, bytes | memoryview]] = queue.Queue(HASH_QUEUE_DEPTH)
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


class _ArchiveFile(io.BufferedReader):
    """The archive's file: a read error, at any offset, is an ArchiveError naming it.

    The read boundary: every consumer (verify, inspect, sbom, diff, push, the
    store) reads through here, so an I/O error mid-stream is one message.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self.path = path

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except OSError as exc:
            raise _unreadable(self.path, exc) from exc

    def readinto(self, buffer: Any) -> int:
        try:
            return super().readinto(buffer)
        except OSError as exc:
            raise _unreadable(self.path, exc) from exc


def _unreadable(path: Path, exc: OSError) -> ArchiveError:
    return ArchiveError(f"cannot read {path}: {exc.strerror or exc}")


def _open(path: Path) -> tuple[BinaryIO, int]:
    try:
        fh = _ArchiveFile(path)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    try:
        return fh, os.fstat(fh.fileno()).st_size
    except OSError as exc:
        fh.close()
        raise _unreadable(path, exc) from exc


class _Scan:
    """One pass over an archive: checks every member against the manifest."""

    def __init__(self, path: Path, sink: BlobSink, report: Callable[[Problem], None]) -> None:
        self.path = path
        self.sink = sink
        self.report = report
        self.manifest: Manifest | None = None
        self.mtime = 0  # every member's, as the first one's header gives it

    def read_manifest(self, stream: Stream) -> Manifest:
        try:
            header = next_header(stream)
        except Fatal as exc:
            not_tar = exc.problem.expected == "a valid tar header"
            if not_tar or (exc.problem.member == END_MEMBER and stream.guard.complete):
                raise ArchiveError(
                    f"{self.path} is not a photon archive: zstd data, but not a tar stream "
                    f"({exc.problem.found})"
                ) from None
            raise
        info = None if header is None else header[0]
        if info is None or info.name != MANIFEST_MEMBER:
            found = "an empty tar stream" if info is None else f"{info.name!r}"
            raise Fatal(
                Problem(
                    member=found, expected=f"{MANIFEST_MEMBER} as the first member", found=found
                )
            )
        if not regular(info):
            raise Fatal(
                Problem(member=MANIFEST_MEMBER, expected="a regular file", found=type_name(info))
            )
        if info.size > MAX_MANIFEST_SIZE:
            raise Fatal(
                Problem(
                    member=MANIFEST_MEMBER,
                    expected=f"at most {MAX_MANIFEST_SIZE} bytes",
                    found=f"{info.size} bytes",
                )
            )
        assert header is not None
        self.mtime = int(info.mtime)
        if (problem := self._noncanonical(*header)) is not None:
            raise Fatal(problem)
        data = stream.exact(info.size)
        if len(data) < info.size:
            raise Fatal(_short(MANIFEST_MEMBER, info.size, len(data)))
        if (padding := stream.padding(-info.size % BLOCK)) is not None:
            raise Fatal(padding)
        try:
            manifest = Manifest.from_bytes(data)
        except ArchiveError as exc:
            raise Fatal(
                Problem(member=MANIFEST_MEMBER, expected="a valid manifest", found=exc.message)
            ) from exc
        if manifest.to_bytes() != data:
            raise Fatal(
                Problem(
                    member=MANIFEST_MEMBER,
                    expected="canonical JSON (sorted keys, no spaces)",
                    found="another encoding of a manifest",
                )
            )
        self.manifest = manifest
        return manifest

    def members(self, stream: Stream, manifest: Manifest) -> None:
        expected = manifest.blobs()
        labels = {k: ", ".join(v) for k, v in manifest.blob_labels().items()}
        seen: set[str] = set()
        previous = ""
        hasher = _Hasher()
        try:
            while (header := next_header(stream)) is not None:
                info = header[0]
                stream.member = info.name
                match = _BLOB_NAME.fullmatch(info.name)
                sha256 = match.group(1) if match else ""
                problem = self._check_member(info, sha256, previous, expected, labels)
                problem = problem or self._noncanonical(*header)
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
        if not regular(info):
            return Problem(member=name, expected="a regular file", found=type_name(info))
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

    def _noncanonical(self, info: tarfile.TarInfo, raw: bytes) -> Problem | None:
        """A header that is not byte for byte what photonpack writes for this member."""
        if raw == member_header(info.name, info.size, self.mtime):
            return None
        return Problem(
            member=info.name,
            expected=f"the tar header photonpack writes (mode {MEMBER_MODE:o}, owner 0, "
            f"mtime {self.mtime} like the first member)",
            found="another header (a field was altered)",
        )

    def _skip(self, stream: Stream, info: tarfile.TarInfo) -> None:
        size = 0 if info.type in NO_DATA else info.size
        got = stream.skip(size)
        if got < size:
            raise Fatal(_short(info.name, size, got))
        stream.skip(-size % BLOCK)

    def _blob(
        self, stream: Stream, info: tarfile.TarInfo, sha256: str, label: str, hasher: _Hasher
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
                raise Fatal(_short(info.name, info.size, got, label))
            padding = stream.padding(-info.size % BLOCK)
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
        if padding is not None:
            self.report(dataclasses.replace(padding, label=label))


def _short(member: str, size: int, got: int, label: str = "") -> Problem:
    return Problem(
        member=member,
        label=label,
        expected=f"{size} bytes",
        found=f"{got} bytes before the end of the stream (truncated)",
    )


def read_manifest(path: Path) -> Manifest:
    """The manifest of an archive from its first member only: fast, and not a verification."""
    fh, _ = _open(path)
    with fh:
        header_size, checksum, problem = frame_start(fh, path)
        if problem is not None:
            raise _integrity_error(path, [problem])
        guard = FrameGuard(fh, header_size, checksum)
        stream = Stream(decompressor(fh, guard), guard, MANIFEST_MEMBER)
        try:
            return _Scan(path, NullSink(), _raise).read_manifest(stream)
        except Fatal as exc:
            raise _integrity_error(path, [exc.problem]) from None


def _raise(problem: Problem) -> None:
    raise Fatal(problem)


def unpack(
    path: Path,
    sink: BlobSink,
    *,
    on_problem: Callable[[Problem], None] | None = None,
    progress: ByteProgress | None = None,
) -> Manifest:
    """Stream ``path`` once, verify everything, hand matching blobs to ``sink``.

    Without ``on_problem`` the first problem raises IntegrityError. With it,
    problems that leave the stream readable (a bad digest, an unlisted or
    missing member) are reported and reading goes on; a problem that stops the
    stream (truncation, corrupt zstd data, a bad manifest) is reported and then
    raised. ArchiveError: the file is unreadable or not a zstd tar at all.
    ``progress`` is told the bytes of the file read so far as it streams.
    """
    ratio = max_ratio()
    fh, file_size = _open(path)
    problems: list[Problem] = []

    def report(problem: Problem) -> None:
        problems.append(problem)
        if on_problem is None:
            raise Fatal(problem)
        on_problem(problem)

    guard: FrameGuard | None = None
    with fh:
        header_size, checksum, problem = frame_start(fh, path)
        try:
            if problem is not None:
                report(problem)
                raise Fatal(problem)
            guard = FrameGuard(fh, header_size, checksum, progress)
            stream = Stream(decompressor(fh, guard), guard, MANIFEST_MEMBER, max_ratio=ratio)
            scan = _Scan(path, sink, report)
            manifest = scan.read_manifest(stream)
            scan.members(stream, manifest)
            stream.member = END_MEMBER
            if (end := stream.end_problem()) is not None:
                report(end)
            if (tail := guard.finish(file_size)) is not None:
                report(tail)
        except Fatal as exc:
            stopped = [exc.problem]
            if exc.problem.found.endswith("(truncated)") and guard is not None:
                # Say why the stream ended: usually the file itself is cut short.
                frame = guard.finish(file_size)
                stopped += [frame] if frame is not None and frame.member == FRAME_MEMBER else []
            for stop in stopped:
                if stop not in problems:
                    problems.append(stop)
                    if on_problem is not None:
                        on_problem(stop)
            raise _integrity_error(path, problems) from None
        except OSError as exc:
            raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return manifest
