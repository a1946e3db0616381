"""``photonpack verify``: re-hash an archive offline and check lock <-> wheels <-> manifest.

The archive is streamed once (``bundle.unpack`` into a sink that keeps only
the lock file); every problem is collected, not just the first, so CI sees
each offending member at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photonpack.archive import MemorySink, Problem, blob_member, read_manifest, unpack
from photonpack.archive.manifest import Manifest
from photonpack.archive.problem import integrity_error
from photonpack.errors import IntegrityError, LockFileError

__all__ = [
    "VerifyResult",
    "check_lock",
    "enforce_policy",
    "policy_problems",
    "verify_archive",
    "verify_store",
]

if TYPE_CHECKING:
    from photonpack.lock.pylock import Lock
    from photonpack.store import Store


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """What ``verify`` found: clean when ``problems`` is empty."""

    path: Path
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
            "path": str(self.path),
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


def verify_archive(path: Path, *, expected: str | None = None) -> VerifyResult:
    """Stream ``path`` once, re-hash every blob and check the lock against the wheels.

    Integrity problems are returned, not raised; ArchiveError still means the
    file is unreadable or not a photon archive at all. ``expected`` pins the
    archive's digest (``--digest``): another photon is a problem too.
    """
    problems: list[Problem] = []
    try:
        head: Manifest | None = read_manifest(path)
    except IntegrityError:
        head = None  # unpack below reports exactly what is wrong
    lock_entry = head.file(head.lock) if head else None
    sink = MemorySink({lock_entry.sha256} if lock_entry else set())
    manifest: Manifest | None
    try:
        manifest = unpack(path, sink, on_problem=problems.append)
    except IntegrityError:
        manifest = head if not any(p.member == "photon.json" for p in problems) else None
    lock_read = lock_entry is None or lock_entry.sha256 in sink.blobs
    if manifest is not None and lock_read:  # else its blob was bad: reported already
        problems += policy_problems(manifest, sink.blobs.__getitem__)
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


def _lock_problems(manifest: Manifest, lock_sha256: str, data: bytes) -> list[Problem]:
    from photonpack.lock.lockfile import parse_lock

    member = blob_member(lock_sha256)
    try:
        lock = parse_lock(data.decode("utf-8"), path=Path(manifest.lock))
    except (LockFileError, UnicodeDecodeError) as exc:
        return [
            Problem(
                member=member,
                label=manifest.lock,
                expected="a valid photonpack pylock file",
                found=str(exc),
            )
        ]
    return check_lock(manifest, lock)


def policy_problems(manifest: Manifest, read_blob: Callable[[str], bytes]) -> list[Problem]:
    """What ``verify`` checks beyond the hashes, for a photon whose blobs were verified.

    ``read_blob(sha256_hex)`` returns a verified blob's bytes (only small ones
    are asked for: the lock). This is the one admission policy: ``verify``,
    ``run``, ``push``, ``pull`` and everything built on them apply it.
    """
    lock_entry = manifest.file(manifest.lock)
    if lock_entry is None:
        return [
            Problem(
                member="photon.json",
                label="lock",
                expected=f"the lock file {manifest.lock} among the photon's files",
                found="not listed (missing)",
            )
        ]
    return _lock_problems(manifest, lock_entry.sha256, read_blob(lock_entry.sha256))


def enforce_policy(manifest: Manifest, read_blob: Callable[[str], bytes], what: str) -> None:
    """Raise :class:`IntegrityError` listing every :func:`policy_problems` finding."""
    problems = policy_problems(manifest, read_blob)
    if problems:
        raise integrity_error(
            what, problems, "the photon was damaged or altered; nothing of it was kept"
        )


def check_lock(manifest: Manifest, lock: Lock) -> list[Problem]:
    """Every wheel the lock lists for each target is in the manifest, with the locked
    sha256, size and version, for that target; and nothing else is."""
    problems: list[Problem] = []
    lock_entry = manifest.file(manifest.lock)
    lock_member = blob_member(lock_entry.sha256) if lock_entry else manifest.lock
    locked_targets = sorted(str(t) for t in lock.targets)
    if locked_targets != list(manifest.targets):
        problems.append(
            Problem(
                member="photon.json",
                label="targets",
                expected=f"the lock's targets {locked_targets}",
                found=f"{list(manifest.targets)}",
            )
        )
    by_filename = {w.filename: w for w in manifest.wheels}
    for target in lock.targets:
        name = str(target)
        locked = {w.filename: w for w in lock.wheels_for(target)}
        for filename, want in locked.items():
            have = by_filename.get(filename)
            label = f"wheel:{filename}"
            if have is None:
                problems.append(
                    Problem(
                        member=lock_member,
                        label=label,
                        expected=f"in the archive: the lock installs it on {name} "
                        f"(sha256 {want.sha256}, {want.size} bytes)",
                        found="not listed in photon.json (missing)",
                    )
                )
                continue
            member = blob_member(have.sha256)
            if name not in have.targets:
                problems.append(
                    Problem(
                        member=member,
                        label=label,
                        expected=f"listed for target {name}, where the lock installs it",
                        found=f"targets {list(have.targets)}",
                    )
                )
            for field, expected, found in (
                ("sha256", want.sha256, have.sha256),
                ("size", want.size, have.size),
                ("version", want.version, have.version),
            ):
                if expected != found:
                    problems.append(
                        Problem(
                            member=member,
                            label=label,
                            expected=f"the locked {field} {expected}",
                            found=f"{field} {found}",
                        )
                    )
        for wheel in manifest.wheels:
            if name in wheel.targets and wheel.filename not in locked:
                problems.append(
                    Problem(
                        member=blob_member(wheel.sha256),
                        label=f"wheel:{wheel.filename}",
                        expected=f"only wheels the lock installs on {name}",
                        found="a wheel the lock does not list for that target (extra)",
                    )
                )
    return list(dict.fromkeys(problems))


def verify_store(store: Store) -> list[str]:
    """``verify --store``: re-hash every blob, working directory and environment of ``store``.

    What is found corrupt is taken out of use (see :meth:`Store.verify` and
    :func:`~photonpack.install.audit.audit_environments`). One line per problem.
    """
    from photonpack.install.audit import audit_environments

    store.check_root()
    return store.verify() + audit_environments(store)
