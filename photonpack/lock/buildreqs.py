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
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from photonpack.errors import LockError
from photonpack.lock.download import fetch_wheels
from photonpack.lock.index import IndexSettings
from photonpack.lock.pylock import Lock, LockedPackage, LockInputs
from photonpack.lock.sdist import DEFAULT_BACKEND, DEFAULT_BUILD_REQUIRES, BuildSystem
from photonpack.lock.target import Target

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

if TYPE_CHECKING:
    from photonpack.lock.resolve import Resolution
    from photonpack.lock.sdist import LockedSdist

__all__ = [
    "BuildEnvironments",
    "SourceBuilder",
    "build_environment",
    "lock_build_requirements",
    "read_build_system",
]

_MAX_PYPROJECT = 1 << 20  # a pyproject.toml larger than this is not one


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


def read_build_system(path: Path, filename: str) -> BuildSystem:
    """The ``[build-system]`` of the sdist at ``path``, read from its top-level pyproject.toml.

    No ``pyproject.toml`` (or no ``[build-system]``) means setuptools' legacy
    backend, as for pip. Nothing in the sdist is run.
    """
    text = _pyproject(path, filename)
    if text is None:
        return BuildSystem()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{filename}: its pyproject.toml is not valid TOML ({exc})") from exc
    table = data.get("build-system")
    if not isinstance(table, dict):
        return BuildSystem()
    requires = _strings(table.get("requires", list(DEFAULT_BUILD_REQUIRES)), filename, "requires")
    backend = table.get("build-backend", DEFAULT_BACKEND)
    if not isinstance(backend, str):
        raise LockError(f"{filename}: build-system.build-backend is not a string")
    backend_path = _strings(table.get("backend-path", []), filename, "backend-path")
    return BuildSystem(requires=tuple(requires), backend=backend, backend_path=tuple(backend_path))


def _strings(value: Any, filename: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LockError(f"{filename}: build-system.{key} is not a list of strings")
    return value


def _pyproject(path: Path, filename: str) -> str | None:
    """The text of ``<top>/pyproject.toml`` in the sdist, or None when it has none."""
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if _is_top_pyproject(n)]
                if not names:
                    return None
                info = archive.getinfo(names[0])
                if info.file_size > _MAX_PYPROJECT:
                    raise LockError(f"{filename}: its pyproject.toml is too large")
                return archive.read(info).decode("utf-8")
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile() and _is_top_pyproject(member.name):
                    if member.size > _MAX_PYPROJECT:
                        raise LockError(f"{filename}: its pyproject.toml is too large")
                    stream = archive.extractfile(member)
                    assert stream is not None
                    return stream.read().decode("utf-8")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as exc:
        raise LockError(
            f"{filename} is not a readable source distribution ({exc}); "
            "the index serves a broken file: require another version"
        ) from exc
    return None


def _is_top_pyproject(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return len(parts) == 2 and parts[1] == "pyproject.toml"


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
