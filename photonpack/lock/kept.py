"""``lock --from PYLOCK``: the pins of a lock the team keeps with another tool, kept exactly.

A team that maintains its environment with uv (``uv export --format
pylock.toml``) or ``pip lock`` gives that file to ``photonpack lock --from``.
For every target, each package of that lock whose marker holds is pinned to
its version, and its wheel for the target is taken from that lock with its
hash, never another file (the caller fetches it from the index when that serves
the same file: lockfile._mirrored). photonpack's serving stack (and the photon's own
requirements) are resolved on top of those pins; what that adds is reported.
A requirement the pins contradict is an error naming both sides.
Pure: values in, values out (the caller reads the file and resolves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from photonpack.errors import LockFileError, NoCompatibleWheelError, ResolutionError
from photonpack.lock.index import DistFile
from photonpack.lock.pylock import Lock
from photonpack.lock.target import Target

if TYPE_CHECKING:  # read only with --from
    from photonpack.lock.standard import StandardLock, StandardPackage

__all__ = ["added_packages", "check_kept", "check_requirements", "kept_for", "pin_lines"]


def kept_for(kept: StandardLock, target: Target) -> dict[str, tuple[StandardPackage, DistFile]]:
    """name -> (package, its wheel for ``target``) for every package of ``kept`` the target gets."""
    from packaging.markers import Marker
    from packaging.specifiers import SpecifierSet

    environment = kept.environment(target.environment())
    if kept.environments and not any(
        Marker(e).evaluate(environment, context="lock_file") for e in kept.environments
    ):
        raise ResolutionError(
            f"{kept.path.name} is locked for {' or '.join(kept.environments)}, which target "
            f"{target} is not; lock it for that target too, or choose another --target"
        )
    python = environment["python_full_version"]
    if kept.requires_python and not SpecifierSet(kept.requires_python).contains(python, True):
        raise ResolutionError(
            f"{kept.path.name} requires Python {kept.requires_python}, and target {target} has "
            f"Python {environment['python_version']}; choose another --target, or lock for it"
        )
    chosen: dict[str, tuple[StandardPackage, DistFile]] = {}
    for package in kept.packages:
        if package.marker and not Marker(package.marker).evaluate(environment, context="lock_file"):
            continue
        chosen[package.name] = (package, _wheel(kept, package, target))
    return chosen


def _wheel(kept: StandardLock, package: StandardPackage, target: Target) -> DistFile:
    where = f"{kept.path.name} locks {package.name}"
    if package.version is None or not package.wheels:
        source = package.source
        what = f"as {source.kind} {source.label}" if source is not None else "with no files"
        raise ResolutionError(
            f"{where} {what}: photonpack builds from locked wheels only; leave it out of the "
            "export (the project itself: uv export --no-emit-project), or build a wheel of it "
            "and lock that"
        )
    ranked = [
        (rank, wheel.label, wheel)
        for wheel in package.wheels
        if (rank := target.wheel_rank(wheel.label)) is not None
    ]
    if not ranked:
        offered = ", ".join(sorted(w.label for w in package.wheels))
        raise NoCompatibleWheelError(
            f"{where} {package.version} with no wheel for target {target}; it has {offered}: "
            "lock it for that platform too, or choose another --target"
        )
    best = min(ranked, key=lambda item: item[:2])[2]
    if best.sha256 is None or best.url is None:
        raise LockFileError(
            f"{where} {package.version} by {best.label} without a sha256 hash: photonpack "
            "verifies every wheel by its sha256; export the lock with sha256 hashes"
        )
    return DistFile(filename=best.label, url=best.url, sha256=best.sha256, size=best.size)


def pin_lines(chosen: Mapping[str, tuple[StandardPackage, DistFile]]) -> tuple[str, ...]:
    """The requirement lines that hold the resolver to the kept versions, sorted."""
    return tuple(sorted(f"{name}=={package.version}" for name, (package, _) in chosen.items()))


def check_requirements(
    kept: StandardLock,
    chosen: Mapping[str, tuple[StandardPackage, DistFile]],
    requirements: Mapping[str, Sequence[str]],
    target: Target,
) -> None:
    """Refuse a requirement (by its owner: "the photon", ...) that a kept version does not meet."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    for owner, lines in requirements.items():
        for line in lines:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name not in chosen or (
                requirement.marker is not None
                and not requirement.marker.evaluate(target.environment())
            ):
                continue
            version = chosen[name][0].version
            assert version is not None
            if not requirement.specifier.contains(version, prereleases=True):
                raise ResolutionError(
                    f"{owner} needs {line}, but {kept.path.name} pins {name} {version} "
                    f"(for {target}): update that pin where the lock is kept, export it "
                    "again, and lock again"
                )


def check_kept(lock: Lock, kept: StandardLock) -> None:
    """For every target, each package of ``kept`` it gets is locked with the kept wheel."""
    for target in lock.targets:
        mine = {wheel.name: wheel for wheel in lock.wheels_for(target)}
        for name, (package, file) in sorted(kept_for(kept, target).items()):
            wheel = mine.get(name)
            if wheel is None or (wheel.version, wheel.sha256) != (package.version, file.sha256):
                found = f"{wheel.filename} ({wheel.sha256})" if wheel else "nothing"
                raise LockFileError(
                    f"lock file {lock.path} does not keep the pins of {kept.path.name}: it "
                    f"locks {found} for {name} on {target}, where {kept.path.name} pins "
                    f"{file.filename} ({file.sha256}); lock again with "
                    f"photonpack lock --from {kept.path.name}"
                )


def added_packages(lock: Lock, kept: StandardLock) -> tuple[str, ...]:
    """``"name version"`` of every package the lock holds that ``kept`` does not."""
    names = {p.name for p in kept.packages}
    return tuple(f"{p.name} {p.version}" for p in lock.packages if p.name not in names)
