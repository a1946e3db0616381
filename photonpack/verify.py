"""``photonpack verify``: re-hash an archive offline and apply the admission policy.

The archive is streamed once (``archive.unpack``) into a sink that keeps the
lock file in memory and inspects each wheel as its blob is verified: the blob
goes to a temporary file, is inspected (zip directory, METADATA, RECORD
listing: see :mod:`photonpack.policy`) when it matched its digest, and is
deleted at once. Memory stays bounded and the disk holds one wheel at a time;
the archive is read once. Every problem is collected, not just the first, so
CI sees each offending member at once.

A photon in the store (``verify -n NAME``) is checked where it lies: each of
its blobs is re-hashed in place and the same policy applied, with the same
report, without writing its archive anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from photonpack._digest import sha256_file
from photonpack.archive import BlobWriter, ByteProgress, MemorySink, Problem, read_manifest, unpack
from photonpack.archive.manifest import Manifest
from photonpack.errors import IntegrityError
from photonpack.install.wheel import CorruptWheelError, Wheel, inspect_wheel
from photonpack.policy import check_lock, enforce_policy, policy_problems

__all__ = [
    "PolicySink",
    "VerifyResult",
    "check_lock",
    "enforce_policy",
    "policy_problems",
    "verify_archive",
    "verify_store",
    "verify_stored",
]

if TYPE_CHECKING:
    from photonpack.store import Store


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """What ``verify`` found: clean when ``problems`` is empty."""

    path: Path | None  # None: a photon in the store, read from no file
    manifest: Manifest | None
    problems: tuple[Problem, ...]
    archive_size: int

    @property
    def ok(self) -> bool:
        """No problem at all."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The ``verify --json`` document (see docs: shape is stable)."""
        m = self.manifest
        return {
            "path": None if self.path is None else str(self.path),
            "ok": self.ok,
            "name": m.name if m else None,
            "digest": m.digest if m else None,
            "archive_size": self.archive_size,
            "blobs": len(m.blobs()) if m else None,
            "payload_size": m.total_size if m else None,
            "problems": [
                {
                    "member": p.member,
                    "label": p.label,
                    "expected": p.expected,
                    "found": p.found,
                    "message": str(p),
                }
                for p in self.problems
            ],
        }


def verify_archive(
    path: Path, *, expected: str | None = None, progress: ByteProgress | None = None
) -> VerifyResult:
    """Stream ``path`` once, re-hash every blob and check the lock against the wheels.

    Integrity problems are returned, not raised; ArchiveError still means the
    file is unreadable or not a photon archive at all. ``expected`` pins the
    archive's digest (``--digest``): another photon is a problem too.
    ``progress`` is told the bytes of the file read so far.
    """
    problems: list[Problem] = []
    try:
        head: Manifest | None = read_manifest(path)
    except IntegrityError:
        head = None  # unpack below reports exactly what is wrong
    lock_entry = head.file(head.lock) if head else None
    manifest: Manifest | None
    with tempfile.TemporaryDirectory(prefix="photonpack-verify-") as scratch:
        sink = PolicySink(head, Path(scratch))
        try:
            manifest = unpack(path, sink, on_problem=problems.append, progress=progress)
        except IntegrityError:
            manifest = head if not any(p.member == "photon.json" for p in problems) else None
    lock_read = lock_entry is None or lock_entry.sha256 in sink.blobs
    if manifest is not None and lock_read:  # else its blob was bad: reported already
        problems += sink.problems(manifest)
    if expected is not None and manifest is not None and manifest.digest != expected:
        problems.append(
            Problem(
                member="photon.json",
                label="digest",
                expected=f"the photon {expected} (--digest)",
                found=f"the photon {manifest.digest}",
            )
        )
    return VerifyResult(
        path=path,
        manifest=manifest,
        problems=tuple(problems),
        archive_size=path.stat().st_size,
    )


def verify_stored(
    store: Store,
    manifest: Manifest,
    *,
    archive_size: int,
    expected: str | None = None,
    progress: ByteProgress | None = None,
) -> VerifyResult:
    """``verify -n NAME``: re-hash ``manifest``'s blobs in ``store`` and apply the policy.

    The same checks and the same problems as :func:`verify_archive` on the
    photon's archive, but in place: nothing is written, and the blobs are
    hashed in parallel. ``archive_size`` is the size recorded with the name.
    ``progress`` is told the bytes hashed so far, of ``manifest.total_size``.
    """
    labels = {sha: ", ".join(names) for sha, names in manifest.blob_labels().items()}
    blobs = list(manifest.blobs().items())
    hashed = _Counter(progress)

    def check(blob: tuple[str, int]) -> Problem | None:
        return _stored_problem(store, blob[0], blob[1], labels, hashed.add)

    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(check, blobs))
    problems = [problem for problem in found if problem is not None]
    bad = {problem.member.rpartition("/")[2] for problem in problems}
    lock_entry = manifest.file(manifest.lock)
    if lock_entry is None or lock_entry.sha256 not in bad:  # else reported already

        def inspect(sha256: str, filename: str) -> Wheel | None:
            return (
                None if sha256 in bad else inspect_wheel(store.blob_path(sha256), filename=filename)
            )

        problems += policy_problems(
            manifest, lambda hex_: store.blob_path(hex_).read_bytes(), inspect
        )
    if expected is not None and manifest.digest != expected:
        problems.append(
            Problem(
                member="photon.json",
                label="digest",
                expected=f"the photon {expected} (--digest)",
                found=f"the photon {manifest.digest}",
            )
        )
    return VerifyResult(
        path=None, manifest=manifest, problems=tuple(problems), archive_size=archive_size
    )


class _Counter:
    """Bytes hashed by the threads of :func:`verify_stored`, told to ``progress`` as a total."""

    def __init__(self, progress: ByteProgress | None) -> None:
        self._progress = progress
        self._done = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        if self._progress is not None:
            with self._lock:
                self._done += n
                self._progress(self._done)


def _stored_problem(
    store: Store,
    sha256: str,
    size: int,
    labels: dict[str, str],
    hashed: Callable[[int], None],
) -> Problem | None:
    member, label = f"blobs/sha256/{sha256}", labels.get(sha256, "")
    try:
        digest, actual = sha256_file(store.blob_path(sha256), on_chunk=hashed)
    except FileNotFoundError:
        return Problem(
            member=member,
            label=label,
            expected=f"{size} bytes in the store",
            found="no such blob (missing)",
        )
    if actual != size:
        return Problem(
            member=member, label=label, expected=f"{size} bytes", found=f"{actual} bytes"
        )
    if digest != sha256:
        return Problem(
            member=member, label=label, expected=f"sha256 {sha256}", found=f"sha256 {digest}"
        )
    return None


def verify_store(store: Store) -> list[str]:
    """``verify --store``: re-hash every blob, working directory and environment of ``store``.

    What is found corrupt is taken out of use (see :meth:`Store.verify` and
    :func:`~photonpack.install.audit.audit_environments`). One line per problem.
    """
    from photonpack.install.audit import audit_environments

    store.check_root()
    return store.verify() + audit_environments(store)


class PolicySink(MemorySink):
    """What the admission policy reads of a photon, taken while its archive streams.

    Keeps the lock (and local projects' source archives) in memory; writes each
    wheel blob to ``scratch``, inspects it once verified, then deletes it, so the
    wheels never pile up on disk; every other blob is only hashed.
    """

    def __init__(self, manifest: Manifest | None, scratch: Path) -> None:
        lock_entry = manifest.file(manifest.lock) if manifest else None
        kept = {lock_entry.sha256} if lock_entry else set()
        # A local project's source archive is read back: its files must be the tree the lock pins.
        wheels = manifest.wheels if manifest else ()
        kept |= {w.source.sha256 for w in wheels if w.source and "://" not in w.source.url}
        super().__init__(kept)
        self.wheels = {w.sha256: w.filename for w in wheels}
        self.scratch = scratch
        self.results: dict[str, Wheel | CorruptWheelError] = {}

    def problems(
        self, manifest: Manifest, stored: Callable[[str], Path | None] = lambda _hex: None
    ) -> list[Problem]:
        """:func:`policy_problems` of ``manifest``, from what was taken; ``stored(hex)``
        names a verified local copy of a blob this sink was not given (None: there is none)."""

        def read(hex_: str) -> bytes:
            path = None if hex_ in self.blobs else stored(hex_)
            return path.read_bytes() if path is not None else self.blobs[hex_]

        def inspect(hex_: str, filename: str) -> Wheel | None:
            path = None if hex_ in self.results else stored(hex_)
            if path is not None:
                return inspect_wheel(path, filename=filename)
            return self.inspected(hex_, filename)

        return policy_problems(manifest, read, inspect)

    def has(self, sha256: str) -> bool:
        """The lock and the wheels are written; the rest is only hashed."""
        return super().has(sha256) and sha256 not in self.wheels

    def open(self, sha256: str, size: int) -> BlobWriter:
        """The lock in memory, a wheel in a temporary file."""
        if sha256 not in self.wheels:
            return super().open(sha256, size)
        return _InspectingWriter(self, sha256)

    def inspected(self, sha256: str, filename: str) -> Wheel | None:
        """What :func:`inspect_wheel` found (None: the blob did not verify)."""
        result = self.results.get(sha256)
        if isinstance(result, CorruptWheelError):
            raise CorruptWheelError(filename, result.reason)
        return result


class _InspectingWriter:
    def __init__(self, sink: PolicySink, sha256: str) -> None:
        self._sink, self._sha256 = sink, sha256
        self._path = sink.scratch / sha256
        self._file: IO[bytes] = self._path.open("wb")

    def write(self, data: bytes | memoryview) -> object:
        return self._file.write(data)

    def commit(self) -> None:
        self._file.close()
        try:
            wheel = inspect_wheel(self._path, filename=self._sink.wheels[self._sha256])
            # Only what the policy reads is kept: a wheel's file list can be long.
            self._sink.results[self._sha256] = dataclasses.replace(wheel, files=(), scripts=())
        except CorruptWheelError as exc:
            self._sink.results[self._sha256] = exc
        finally:
            self._path.unlink()

    def abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
