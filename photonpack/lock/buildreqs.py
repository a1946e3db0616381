"""Lock what it takes to build each sdist: its build backend's requirements, as hashed wheels.

pip's hash-checking mode does not cover build requirements (its known
bypass); photonpack locks them like everything else. Each sdist is fetched
once (verified against the sha256 just locked), its ``pyproject.toml`` read
from the archive without running anything, and its ``build-system.requires``
resolved, wheels only, for the machine that locks: the build machine
(``tool.photonpack.build-target``). Sdists that declare the same requirements
share one resolution (:class:`BuildEnvironments`).

When a :data:`SourceBuilder` is given (``LockOptions.builder``: ``build`` and
``lock`` pass the store's), a dynamic sdist's metadata is not prepared by pip:
:func:`photonpack.lock.sdistmeta.built_metadata` locks its build environment
here, has the builder build the wheel hermetically (cached in the store, where
``build`` finds it under the same key) and hands pip that wheel's ``METADATA``.
Its backend then runs once per lock and build instead of twice (pip at lock,
the hermetic build at build).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from photonpack.errors import LockError
from photonpack.lock.buildsystem import read_build_system
from photonpack.lock.download import fetch_wheels
from photonpack.lock.index import IndexSettings
from photonpack.lock.pylock import Lock, LockedPackage, LockInputs
from photonpack.lock.target import Target

if TYPE_CHECKING:
    from photonpack.lock.resolve import Resolution
    from photonpack.lock.sdist import LockedSdist

__all__ = [
    "BuildEnvironments",
    "SourceBuilder",
    "build_environment",
    "lock_build_requirements",
]

# lockfile.assemble: a Resolution into a Lock (passed in: lockfile imports this module).
Assemble = Callable[[LockInputs, "Resolution"], Lock]


class BuildEnvironments:
    """The build environments of one lock, by ``build-system.requires``: each resolved once,
    for the machine that locks, wheels only."""

    def __init__(
        self,
        index: IndexSettings,
        directory: Path,
        *,
        assemble: Assemble,
        preferences: Mapping[str, str] | None = None,
    ) -> None:
        self.index = index
        self._directory = directory
        self._assemble = assemble
        self._preferences = dict(preferences or {})
        self._locked: dict[tuple[str, ...], tuple[LockedPackage, ...]] = {}

    def packages(self, requires: tuple[str, ...]) -> tuple[LockedPackage, ...]:
        """The locked packages of the environment ``requires`` installs."""
        if requires not in self._locked:
            from photonpack.lock.resolve import resolve

            host = Target.host()
            resolution = resolve(
                requires, [host], self.index, preferences=self._preferences, allow_sources=False
            )
            inputs = LockInputs(
                requirements=requires,
                serving_requirements=(),
                targets=(host,),
                index=self.index,
                directory=self._directory,
            )
            self._locked[requires] = self._assemble(inputs, resolution).packages
        return self._locked[requires]


# Builds a dynamic sdist at lock time: (its LockedSdist with its build system, the file,
# its build environment's packages, the index) -> the built wheel's METADATA, or None
# (pip prepares the metadata itself, and ``build`` reports what went wrong).
SourceBuilder = Callable[
    ["LockedSdist", Path, Sequence[LockedPackage], IndexSettings], "bytes | None"
]


def lock_build_requirements(lock: Lock, environments: BuildEnvironments) -> Lock:
    """``lock`` with every sdist's build system and the build environments' wheels.

    ``environments`` keeps the previous lock's build packages while still
    compatible (its ``preferences``), as the regular packages' pins are, and
    the environments ``built_metadata`` already locked.
    """
    host = Target.host()
    sdists = lock.sdists()
    with tempfile.TemporaryDirectory(prefix="photonpack-sdists-") as work:
        fetched = fetch_wheels(sdists, Path(work), index=environments.index)
        systems = {s.sha256: read_build_system(fetched[s.sha256], s.filename) for s in sdists}
    environment = {
        requires: environments.packages(requires)
        for requires in sorted({system.requires for system in systems.values()})
    }
    build_packages = {(p.name, p.version): p for packages in environment.values() for p in packages}

    def with_build(package: LockedPackage) -> LockedPackage:
        if package.sdist is None:
            return package
        system = systems[package.sdist.sha256]
        pins = tuple(f"{p.name}=={p.version}" for p in environment[system.requires])
        sdist = dataclasses.replace(package.sdist, build=dataclasses.replace(system, packages=pins))
        return dataclasses.replace(package, sdist=sdist)

    return dataclasses.replace(
        lock,
        packages=tuple(with_build(p) for p in lock.packages),
        build_packages=tuple(build_packages[key] for key in sorted(build_packages)),
        build_target=host,
    )


def build_environment(lock: Lock, sdist: LockedSdist) -> list[LockedPackage]:
    """The locked build packages of ``sdist``'s build environment, in its order."""
    by_pin = {f"{p.name}=={p.version}": p for p in lock.build_packages}
    missing = [pin for pin in sdist.build.packages if pin not in by_pin]
    if missing:
        raise LockError(
            f"lock file {lock.path}: {sdist.filename} needs build package {missing[0]}, which "
            "tool.photonpack.build-packages does not list; run photonpack lock --upgrade"
        )
    return [by_pin[pin] for pin in sdist.build.packages]
