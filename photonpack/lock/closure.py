"""A lock is closed: for every target, whatever a locked package needs is locked too.

The roots are the photon's requirements and the serving requirements; each
package then needs the packages its lock entry lists as ``dependencies`` and,
where its wheel is at hand, every ``Requires-Dist`` line whose marker holds on
the target (extras as its requirers ask for them). A dependency the lock
dropped would make an archive that builds, verifies and serves until the
import fails, so ``lock``, ``lock --check``, ``build`` and the admission policy
all refuse such a lock.

A lock entry's ``dependencies`` carry no marker and are the union over the
targets (PEP 751 keeps the graph, not its conditions), so one is required on a
target only if it is locked for some target the package is locked for; the
exact per-target check comes from ``Requires-Dist``, once the wheels are there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion

from photonpack.errors import LockFileError
from photonpack.lock.pylock import Lock, LockedPackage, LockedWheel
from photonpack.lock.sdist import LockedSdist
from photonpack.lock.target import Target

__all__ = ["Gap", "RequiresDist", "check_closure", "closure_gaps"]

# The Requires-Dist lines of a locked wheel (or of the wheel built from a locked sdist),
# or None when its METADATA is not at hand.
RequiresDist = Callable[[LockedWheel | LockedSdist], Sequence[str] | None]


@dataclasses.dataclass(frozen=True, kw_only=True, order=True)
class Gap:
    """One requirement a target's locked packages leave unmet."""

    target: str
    requirer: str  # "anyio 4.4.0", "the photon" or "photonpack's serving stack"
    requirement: str  # as declared: "idna>=2.8"
    found: str  # "idna is not locked for it", "idna 2.0 is locked"

    def __str__(self) -> str:
        return f"{self.requirer} needs {self.requirement} on {self.target}, but {self.found}"


def closure_gaps(lock: Lock, *, requires_dist: RequiresDist | None = None) -> list[Gap]:
    """Every requirement left unmet, per target, sorted; empty for a closed lock."""
    locked = {target: _locked(lock, target) for target in lock.targets}
    gaps: set[Gap] = set()
    for target in lock.targets:
        gaps.update(_target_gaps(lock, target, locked, requires_dist))
    return sorted(gaps)


def check_closure(lock: Lock, *, requires_dist: RequiresDist | None = None) -> None:
    """Raise :class:`LockFileError` naming the first unmet requirement of ``lock``."""
    gaps = closure_gaps(lock, requires_dist=requires_dist)
    if gaps:
        more = f" (and {len(gaps) - 1} more)" if len(gaps) > 1 else ""
        raise LockFileError(
            f"lock file {lock.path} is incomplete: {gaps[0]}{more}; lock again with "
            "photonpack lock --upgrade (or delete the lock and run photonpack lock)"
        )


def _locked(lock: Lock, target: Target) -> dict[str, LockedPackage]:
    return {
        canonicalize_name(p.name): p for p in lock.packages if p.applies_to(target)
    }  # fmt: skip


def _target_gaps(
    lock: Lock,
    target: Target,
    locked_for: Mapping[Target, Mapping[str, LockedPackage]],
    requires_dist: RequiresDist | None,
) -> list[Gap]:
    check = _TargetCheck(target, locked_for[target], lock.inputs.exclusions)
    roots = (
        ("the photon", lock.inputs.requirements),
        ("photonpack's serving stack", lock.inputs.serving_requirements),
    )
    for requirer, lines in roots:
        check.need(requirer, lines, {""})
    graph = _lock_dependencies(locked_for[target], locked_for)
    for name, package in check.locked.items():
        check.need(f"{package.name} {package.version}", graph[name], {""})
    if requires_dist is not None:
        wheels: dict[str, LockedWheel | LockedSdist] = {
            canonicalize_name(w.name): w for w in lock.wheels_for(target)
        }
        wheels |= {canonicalize_name(s.name): s for s in lock.sources_for(target)}
        check.requires_dist(lambda name: requires_dist(wheels[name]) if name in wheels else None)
    return check.gaps


class _TargetCheck:
    """The requirements met and unmet on one target, and the extras each package is asked for."""

    def __init__(
        self, target: Target, locked: Mapping[str, LockedPackage], excluded: Sequence[str] = ()
    ) -> None:
        self.target, self.locked = target, locked
        self.excluded = frozenset(excluded)  # ``uninstall`` lines: absent on purpose
        self.environment = target.environment()
        self.extras: dict[str, set[str]] = {name: set() for name in locked}
        self.gaps: list[Gap] = []

    def need(self, requirer: str, lines: Iterable[str], extras: set[str]) -> None:
        """Each of ``lines`` that applies (for one of ``extras``) is met by a locked package."""
        for line, requirement in _applying(lines, self.environment, extras):
            name = canonicalize_name(requirement.name)
            package = self.locked.get(name)
            if name in self.excluded:
                continue
            if package is None:
                found = f"{name} is not locked for it"
            elif not _satisfies(requirement, package.version):
                found = f"{name} {package.version} is locked"
            else:
                self.extras[name].update(requirement.extras)
                continue
            gap = Gap(target=str(self.target), requirer=requirer, requirement=line, found=found)
            self.gaps.append(gap)

    def requires_dist(self, lines_of: Callable[[str], Sequence[str] | None]) -> None:
        """Every package's Requires-Dist, until the extras asked for stop growing."""
        done: dict[str, set[str]] = {}
        while pending := [n for n in self.locked if done.get(n) != self.extras[n] | {""}]:
            for name in pending:
                asked = done[name] = self.extras[name] | {""}
                package = self.locked[name]
                self.need(f"{package.name} {package.version}", lines_of(name) or (), asked)


def _satisfies(requirement: Requirement, version: str) -> bool:
    try:
        return requirement.specifier.contains(version, prereleases=True)
    except InvalidVersion:  # not PEP 440: the lock reader's to refuse, not this check's
        return True


def _lock_dependencies(
    locked: Mapping[str, LockedPackage], locked_for: Mapping[Target, Mapping[str, LockedPackage]]
) -> dict[str, list[str]]:
    """The ``dependencies`` each package needs on a target (see the module docstring)."""
    elsewhere: dict[tuple[str, str], set[str]] = {}  # locked wherever (name, version) is
    for here in locked_for.values():
        for name, package in here.items():
            elsewhere.setdefault((name, package.version), set()).update(here)
    graph: dict[str, list[str]] = {}
    for name, package in locked.items():
        reachable = elsewhere.get((name, package.version), set())
        graph[name] = [
            dependency
            for dependency in package.dependencies
            if canonicalize_name(dependency) in locked
            or canonicalize_name(dependency) not in reachable
        ]
    return graph


def _applying(
    lines: Iterable[str], environment: Mapping[str, str], extras: set[str]
) -> list[tuple[str, Requirement]]:
    """The requirements among ``lines`` whose marker holds for one of ``extras``.

    A line that is not a PEP 508 requirement (an option, a path) names no
    package to check and is skipped: the resolver took it.
    """
    found = []
    for line in lines:
        try:
            requirement = Requirement(line.split(" --hash=", 1)[0])
        except InvalidRequirement:
            continue
        marker = requirement.marker
        if marker is None or any(marker.evaluate({**environment, "extra": e}) for e in extras):
            found.append((line, requirement))
    return found
