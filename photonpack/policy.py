"""The admission policy: what ``verify`` checks beyond the hashes, for every way in.

For a photon whose blobs matched their digests: the lock is one of its files
and a valid lock; the lock's wheels per target are exactly the manifest's
(:func:`check_lock`); every wheel is the project its file name names, in the
manifest, in the lock (``packaging.pylock`` checks that), in its ``.dist-info``
directory and in its METADATA, and follows the zip layout rules
(:func:`photonpack.install.wheel.inspect_wheel`); and the lock is closed on
every target (:mod:`photonpack.lock.closure`); and each carried local project's
source archive holds the tree the lock pins (its tree digest recomputed from the
archive's files, not trusted from its path).
``verify``, ``run``, ``push`` and ``pull`` apply this one function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from photonpack.archive import Problem, blob_member
from photonpack.archive.manifest import Manifest
from photonpack.archive.problem import integrity_error
from photonpack.errors import LockFileError
from photonpack.install.metadata import identity_problem
from photonpack.install.wheel import CorruptWheelError, Wheel, inspect_wheel
from photonpack.lock.closure import closure_gaps
from photonpack.lock.pylock import Lock, LockedWheel
from photonpack.lock.sdist import LockedSdist
from photonpack.lock.target import Target
from photonpack.sources.form import DirectorySource
from photonpack.sources.tarball import archive_digest

__all__ = ["InspectWheel", "check_lock", "enforce_policy", "policy_problems", "refuse"]

# (sha256 hex, wheel filename) -> the verified blob inspected as that wheel
# (CorruptWheelError when it breaks the format), or None when the blob was not
# verified (a problem reported already).
InspectWheel = Callable[[str, str], Wheel | None]


def policy_problems(
    manifest: Manifest, read_blob: Callable[[str], bytes], inspect: InspectWheel
) -> list[Problem]:
    """Every policy problem of ``manifest``, whose blobs were verified.

    ``read_blob(sha256_hex)`` returns a small verified blob's bytes (the lock);
    ``inspect`` reads a wheel's zip directory and METADATA (see :data:`InspectWheel`).
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
    lock_or_problem = _read_lock(manifest, lock_entry.sha256, read_blob(lock_entry.sha256))
    if isinstance(lock_or_problem, Problem):
        return [lock_or_problem]
    lock = lock_or_problem
    problems = check_lock(manifest, lock) + _named_problems(manifest)
    wheels, wheel_problems = _inspected(manifest, inspect)
    problems += wheel_problems
    problems += _closure_problems(manifest, lock, wheels)
    problems += _tree_problems(manifest, lock, read_blob)
    return list(dict.fromkeys(problems))


def enforce_policy(manifest: Manifest, blob_path: Callable[[str], Path], what: str) -> None:
    """Raise :class:`IntegrityError` listing every :func:`policy_problems` finding.

    ``blob_path(sha256_hex)`` is a verified blob's file (the store's, a pull's).
    """

    def inspect(sha256: str, filename: str) -> Wheel:
        return inspect_wheel(blob_path(sha256), filename=filename)

    refuse(what, policy_problems(manifest, lambda hex_: blob_path(hex_).read_bytes(), inspect))


def refuse(what: str, problems: Sequence[Problem]) -> None:
    """Raise :class:`IntegrityError` listing ``problems`` of ``what``, if there are any."""
    if problems:
        raise integrity_error(
            what, list(problems), "the photon was damaged or altered; nothing of it was kept"
        )


def _read_lock(manifest: Manifest, lock_sha256: str, data: bytes) -> Lock | Problem:
    from photonpack.lock.lockfile import parse_lock

    try:
        return parse_lock(data.decode("utf-8"), path=Path(manifest.lock))
    except (LockFileError, UnicodeDecodeError) as exc:
        return Problem(
            member=blob_member(lock_sha256),
            label=manifest.lock,
            expected="a valid photonpack pylock file",
            found=str(exc),
        )


def _lock_member(manifest: Manifest) -> str:
    entry = manifest.file(manifest.lock)
    return blob_member(entry.sha256) if entry else manifest.lock


def _file_name_says(filename: str) -> tuple[str, str] | None:
    """The project and version a wheel's file name names (None: not a wheel's name)."""
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    return name, str(version)


def _same(said: tuple[str, str], name: str, version: str) -> bool:
    try:
        return canonicalize_name(name) == said[0] and Version(version) == Version(said[1])
    except InvalidVersion:
        return False


def _named_problems(manifest: Manifest) -> list[Problem]:
    """The manifest's name and version of each wheel are its file name's.

    The lock's are checked where it is read (``packaging.pylock``).
    """
    problems: list[Problem] = []
    for wheel in manifest.wheels:
        said = _file_name_says(wheel.filename)
        if said is None:
            expected, found = "a wheel file name (name-version-tags.whl)", wheel.filename
        elif not _same(said, wheel.name, wheel.version):
            expected = f"the project its file name names, {said[0]} {said[1]}"
            found = f"photon.json names {wheel.name} {wheel.version}"
        else:
            continue
        problems.append(
            Problem(
                member=blob_member(wheel.sha256),
                label=f"wheel:{wheel.filename}",
                expected=expected,
                found=found,
            )
        )
    return problems


def _inspected(manifest: Manifest, inspect: InspectWheel) -> tuple[dict[str, Wheel], list[Problem]]:
    """Each wheel blob inspected once (by sha256), and what breaks the format or lies."""
    wheels: dict[str, Wheel] = {}
    problems: list[Problem] = []
    for entry in manifest.wheels:
        member, label = blob_member(entry.sha256), f"wheel:{entry.filename}"
        try:
            wheel = inspect(entry.sha256, entry.filename)
        except CorruptWheelError as exc:
            problems.append(
                Problem(
                    member=member,
                    label=label,
                    expected="a wheel that follows the binary distribution format",
                    found=exc.reason,
                )
            )
            continue
        if wheel is None:
            continue
        wheels[entry.sha256] = wheel
        reason = identity_problem(entry.filename, wheel.dist_info, wheel.metadata)
        if reason is not None:
            problems.append(
                Problem(
                    member=member,
                    label=label,
                    expected="a wheel whose file name, .dist-info directory and METADATA agree",
                    found=reason,
                )
            )
    return wheels, problems


def _closure_problems(manifest: Manifest, lock: Lock, wheels: dict[str, Wheel]) -> list[Problem]:
    built = {w.source.sha256: w.sha256 for w in manifest.wheels if w.source is not None}

    def requires_dist(locked: LockedWheel | LockedSdist) -> Sequence[str] | None:
        # A locked sdist stands for the wheel the archive built from it.
        wheel = wheels.get(built.get(locked.sha256, locked.sha256))
        return wheel.metadata.requires_dist if wheel is not None else None

    return [
        Problem(
            member=_lock_member(manifest),
            label=manifest.lock,
            expected=f"every dependency locked: {gap.requirer} needs {gap.requirement} "
            f"on {gap.target}",
            found=gap.found,
        )
        for gap in closure_gaps(lock, requires_dist=requires_dist)
    ]


def _tree_problems(
    manifest: Manifest, lock: Lock, read_blob: Callable[[str], bytes]
) -> list[Problem]:
    """Each local project the lock pins by its tree digest is carried with that tree.

    The archive's bytes may differ from the lock's (another zlib made them), and
    its URL is only the project's path: the files inside are what is checked.
    """
    import io
    import tarfile

    carried = {w.source.url: w.source for w in manifest.wheels if w.source is not None}
    problems = []
    for sdist in lock.sdists():
        form, have = sdist.source, carried.get(sdist.url)
        if not isinstance(form, DirectorySource) or form.tree_digest is None or have is None:
            continue  # not a local project, or not carried (check_lock says so)
        try:
            data = read_blob(have.sha256)
        except (KeyError, OSError):
            continue  # the blob did not verify: reported already
        try:
            found = archive_digest(io.BytesIO(data))
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            found = f"not a source archive ({exc})"
        if found != form.tree_digest:
            problems.append(
                Problem(
                    member=blob_member(have.sha256),
                    label=f"source:{have.filename}",
                    expected=f"the files of {form.path} the lock pins (tree {form.tree_digest})",
                    found=f"files with tree {found}" if found.startswith("sha256:") else found,
                )
            )
    return problems


def check_lock(manifest: Manifest, lock: Lock) -> list[Problem]:
    """Every wheel the lock lists for each target is in the manifest, with the locked
    sha256, size and version, for that target; and nothing else is."""
    lock = lock.with_source_archives(_made_sources(manifest, lock))
    problems: list[Problem] = []
    lock_member = _lock_member(manifest)
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
        sources = {s.sha256: s for s in lock.sources_for(target)}
        problems += _built_problems(manifest, target, sources, lock_member)
        for wheel in manifest.wheels:
            from_source = wheel.source is not None and wheel.source.sha256 in sources
            if name in wheel.targets and wheel.filename not in locked and not from_source:
                problems.append(
                    Problem(
                        member=blob_member(wheel.sha256),
                        label=f"wheel:{wheel.filename}",
                        expected=f"only wheels the lock installs on {name}",
                        found="a wheel the lock does not list for that target (extra)",
                    )
                )
    return list(dict.fromkeys(problems))


def _made_sources(manifest: Manifest, lock: Lock) -> dict[str, tuple[str, int]]:
    """Locked sha256 -> (sha256, size) of a pinned source's archive made by another zlib.

    A source pinned by a tree digest or a commit is recorded by that pin (its URL,
    the same in the lock and in photon.json); its archive's bytes depend on the zlib
    of the machine that built the photon, so they may differ from the lock's.
    """
    by_url = {w.source.url: w.source for w in manifest.wheels if w.source is not None}
    made = {}
    for sdist in lock.sdists():
        have = by_url.get(sdist.url) if sdist.source is not None else None
        if have is not None and have.sha256 != sdist.sha256:
            made[sdist.sha256] = (have.sha256, have.size)
    return made


def _built_problems(
    manifest: Manifest, target: Target, sources: Mapping[str, LockedSdist], lock_member: str
) -> list[Problem]:
    """Every sdist the lock builds for ``target`` has its wheel, of its project and version."""
    name = str(target)
    built = {
        w.source.sha256: w for w in manifest.wheels if w.source is not None and name in w.targets
    }
    problems = []
    for sha, sdist in sorted(sources.items()):
        have = built.get(sha)
        if have is None:
            problems.append(
                Problem(
                    member=lock_member,
                    label=f"source:{sdist.filename}",
                    expected=f"in the archive: a wheel built from it (sha256 {sha}) for {name}",
                    found="no wheel built from it is listed in photon.json (missing)",
                )
            )
        elif not _same((canonicalize_name(sdist.name), sdist.version), have.name, have.version):
            problems.append(
                Problem(
                    member=blob_member(have.sha256),
                    label=f"wheel:{have.filename}",
                    expected=f"{sdist.name} {sdist.version}, as built from {sdist.filename}",
                    found=f"{have.name} {have.version}",
                )
            )
    return problems
