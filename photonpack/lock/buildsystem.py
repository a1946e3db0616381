"""An sdist's ``[build-system]``, read from its archive without running anything.

Separate from :mod:`photonpack.lock.buildreqs` (which resolves what it names)
so that reading it (``sdistmeta``, at lock) does not import the resolver.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath
from typing import Any

from photonpack.errors import LockError
from photonpack.lock.sdist import DEFAULT_BACKEND, DEFAULT_BUILD_REQUIRES, BuildSystem

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = ["read_build_system"]

_MAX_PYPROJECT = 1 << 20  # a pyproject.toml larger than this is not one


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
    import tarfile
    import zipfile

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
