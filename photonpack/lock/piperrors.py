"""pip's and pip-tools' errors, translated into photonpack's one-line errors.

Two boundaries: :func:`pip_internals` turns a moved private internal (an
ImportError or AttributeError of a pip release photonpack was not written for)
into one ``LockError`` naming the installed and supported versions;
:func:`translated` turns what pip's resolver raises for one target into the
``PhotonpackError`` that says what is wrong and what to do, or into
:class:`SourcesNeeded`, the signal to retry with sdist-only projects allowed.
"""

from __future__ import annotations

import contextlib
import tarfile
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

from photonpack.errors import IntegrityError, LockError, PackageIndexError, ResolutionError
from photonpack.lock.diagnosis import explain_not_found, mislabelled, parse_requirement, source_only
from photonpack.lock.index import IndexSettings
from photonpack.lock.target import Target

__all__ = ["SourcesNeeded", "pip_internals", "translated"]

# What a pip or pip-tools release that moved an internal raises when it is used.
_MOVED = (ImportError, AttributeError, KeyError, TypeError)


class SourcesNeeded(Exception):  # a signal from one target's resolution to resolve, never further
    """The resolution failed only for want of sdist-only projects: retry with them allowed."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(", ".join(sorted(names)))
        self.names = names


@contextlib.contextmanager
def pip_internals() -> Iterator[None]:
    """A moved pip internal is one LockError naming the versions, not a traceback."""
    try:
        yield
    except _MOVED as exc:
        raise LockError(_moved(exc)) from exc


def _moved(exc: BaseException) -> str:
    from importlib import metadata

    installed, supported = [], []
    wanted = _supported_versions()
    for name in ("pip", "pip-tools"):
        try:
            installed.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            installed.append(f"no {name}")
        supported.append(f"{name}{wanted.get(name, '')}")
    fix = " ".join(f"'{s}'" for s in supported)
    return (
        f"photonpack cannot drive the installed pip: {type(exc).__name__}: {exc}; "
        f"installed are {' and '.join(installed)}, photonpack supports "
        f"{' and '.join(supported)}: install those (pip install {fix})"
    )


def _supported_versions() -> dict[str, str]:
    """The pip and pip-tools bounds of photonpack's own requirements (pyproject.toml)."""
    from importlib import metadata

    try:
        lines = metadata.requires("photonpack") or []
    except metadata.PackageNotFoundError:
        return {}
    bounds = {}
    for line in lines:
        requirement = parse_requirement(line)
        if requirement is not None and requirement.name in ("pip", "pip-tools"):
            lower_first = sorted(requirement.specifier, key=lambda s: s.operator[0] == "<")
            bounds[requirement.name] = ",".join(str(s) for s in lower_first)
    return bounds


@contextlib.contextmanager
def translated(
    target: Target,
    index: IndexSettings,
    *,
    resolvers: Sequence[Any],
    sources: set[str] | None,
) -> Iterator[None]:
    """pip's errors while resolving for ``target`` as photonpack's (see the module docstring).

    ``resolvers``: every pip resolver made for the target (after a failure, their
    factories know the wheels discarded as mislabelled); ``sources``: the
    sdist-only projects allowed so far, None when sources are not allowed at all.
    """
    from pip._internal.exceptions import (
        DistributionNotFound,
        HashError,
        HashErrors,
        InstallationError,
        NetworkConnectionError,
        PipError,
    )

    try:
        yield
    except DistributionNotFound as exc:
        if sources is not None and (new := source_only(exc, index) - sources):
            raise SourcesNeeded(new) from exc
        raise explain_not_found(exc, target, index, mislabelled(resolvers)) from exc
    except (HashError, HashErrors) as exc:
        # pip's first line speaks of a requirements file; the indented details name the file.
        details = "\n".join(line for line in str(exc).splitlines() if line[:1].isspace())
        raise IntegrityError(
            f"while locking for {target}, the index served bytes that do not match the "
            f"sha256 it publishes:\n{details}\nthe index or a proxy in between is corrupt "
            "or tampered with; nothing was written"
        ) from exc
    except NetworkConnectionError as exc:
        raise PackageIndexError(
            f"a package index failed while locking for {target}: {exc}; check the network, "
            "or pass --index-url/--find-links for an internal mirror"
        ) from exc
    except InstallationError as exc:
        if sources:  # preparing an sdist's metadata ran its backend, and it failed
            raise ResolutionError(
                f"cannot prepare the metadata of the sdist of "
                f"{', '.join(sorted(sources))} while locking for {target}: {exc}; lock "
                "runs its build backend (in pip's isolated build environment, build "
                "requirements from the index) to learn its dependencies: check that its "
                "build requirements are on the index, or give a wheel with --find-links"
            ) from exc
        raise ResolutionError(f"cannot resolve for {target}: {exc}") from exc
    except PipError as exc:
        raise ResolutionError(f"cannot resolve for {target}: {exc}") from exc
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        # Only an sdist pip prepares metadata from is unpacked while resolving.
        raise ResolutionError(
            f"cannot read the source distribution of {', '.join(sorted(sources or ()))} "
            f"while locking for {target} ({exc}); the index serves a broken sdist: "
            "require another version, or give a wheel with --find-links"
        ) from exc
