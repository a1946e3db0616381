"""Any PEP 751 lock, whoever wrote it (uv, ``pip lock``, photonpack): for ``diff`` and ``--from``.

photonpack's own locks are read by :mod:`photonpack.lock.pylock`, which also
requires ``[tool.photonpack]``. This module reads only what the standard
says, validated by ``packaging.pylock``: each package's version and marker,
and what it is locked to, as artifacts: its wheels, and an sdist, archive,
VCS commit or directory. A ``path`` is relative to the lock file's directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photonpack.errors import LockFileError
from photonpack.lock.relative import resolved_url

if TYPE_CHECKING:
    from packaging.pylock import Package

__all__ = ["Artifact", "StandardLock", "StandardPackage", "is_photonpack_lock", "read_any_lock"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Artifact:
    """One thing a package is locked to: a wheel, an sdist, an archive, a VCS commit, a directory.

    ``label`` is a file's name, or what identifies a source (``git+URL@commit``,
    ``directory PATH``); ``url`` is where a file's bytes are (a ``path`` resolved
    against the lock's directory), None for a VCS or directory source.
    """

    kind: str
    label: str
    url: str | None
    sha256: str | None
    size: int | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class StandardPackage:
    """One ``[[packages]]`` entry."""

    name: str
    version: str | None
    marker: str | None
    artifacts: tuple[Artifact, ...]

    @property
    def wheels(self) -> tuple[Artifact, ...]:
        """The package's wheels."""
        return tuple(a for a in self.artifacts if a.kind == "wheel")

    @property
    def source(self) -> Artifact | None:
        """What is not a wheel: its sdist, archive, VCS commit or directory, if any."""
        return next((a for a in self.artifacts if a.kind != "wheel"), None)

    @property
    def described_version(self) -> str:
        """The version, or what stands in for one (a VCS commit, a directory)."""
        if self.version is not None:
            return self.version
        source = self.source
        return f"({source.kind} {source.label})" if source is not None else "(no version)"


@dataclasses.dataclass(frozen=True, kw_only=True)
class StandardLock:
    """A PEP 751 lock file: who wrote it, where it applies, its packages."""

    path: Path
    created_by: str
    environments: tuple[str, ...]
    requires_python: str | None
    default_groups: tuple[str, ...]  # the dependency groups an installer takes by default
    packages: tuple[StandardPackage, ...]
    sha256: str  # of the file's bytes

    def environment(self, base: Mapping[str, str]) -> dict[str, Any]:
        """A target's marker environment, with the default groups and no extras (PEP 751)."""
        return {**base, "extras": frozenset(), "dependency_groups": frozenset(self.default_groups)}


def is_photonpack_lock(data: Mapping[str, Any]) -> bool:
    """Whether the parsed file has a ``[tool.photonpack]`` section."""
    tool = data.get("tool")
    return isinstance(tool, Mapping) and "photonpack" in tool


def read_any_lock(path: Path) -> StandardLock:
    """Read and validate any PEP 751 lock file."""
    from photonpack.lock.pylock import check_pep751, load_toml

    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError as exc:
        raise LockFileError(f"lock file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LockFileError(f"cannot read lock file {path}: {exc}") from exc
    fix = "fix it, or write it again with the tool that made it"
    pylock = check_pep751(load_toml(text, path=path), path, fix=fix)
    return StandardLock(
        path=path,
        created_by=pylock.created_by,
        environments=tuple(str(m) for m in pylock.environments or ()),
        requires_python=str(pylock.requires_python) if pylock.requires_python else None,
        default_groups=tuple(pylock.default_groups or ()),
        packages=tuple(_package(p, path.parent) for p in pylock.packages),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _package(package: Package, base: Path) -> StandardPackage:
    artifacts = [
        Artifact(
            kind="wheel",
            label=wheel.filename,
            url=_where(wheel.path, wheel.url, base),
            sha256=wheel.hashes.get("sha256"),
            size=wheel.size,
        )
        for wheel in package.wheels or ()
    ]
    if package.sdist is not None:
        sdist = package.sdist
        artifacts.append(
            Artifact(
                kind="sdist",
                label=sdist.filename,
                url=_where(sdist.path, sdist.url, base),
                sha256=sdist.hashes.get("sha256"),
                size=sdist.size,
            )
        )
    if package.archive is not None:
        archive = package.archive
        where = _where(archive.path, archive.url, base)
        artifacts.append(
            Artifact(
                kind="archive",
                label=(archive.path or archive.url or "").replace("\\", "/").rpartition("/")[2],
                url=where,
                sha256=archive.hashes.get("sha256"),
                size=archive.size,
            )
        )
    if package.vcs is not None:
        vcs = package.vcs
        label = f"{vcs.type}+{vcs.url or vcs.path}@{vcs.commit_id}"
        artifacts.append(Artifact(kind="vcs", label=label, url=None, sha256=None, size=None))
    if package.directory is not None:
        path = package.directory.path
        artifacts.append(Artifact(kind="directory", label=path, url=None, sha256=None, size=None))
    return StandardPackage(
        name=str(package.name),
        version=str(package.version) if package.version is not None else None,
        marker=str(package.marker) if package.marker is not None else None,
        artifacts=tuple(artifacts),
    )


def _where(path: str | None, url: str | None, base: Path) -> str | None:
    # As pip reads a lock: a path wins over a URL.
    return resolved_url(path, base) if path else url
