"""What a build puts in an archive besides wheels: the photon's files and the serving code.

The photon's working directory (its source, its ``extra_files``, its lock) and
photonpack's own serving package are copied into the store, hashed on the way,
so the archive holds exactly what was hashed.
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import photonpack
from photonpack.archive.manifest import FileEntry
from photonpack.errors import BuildError
from photonpack.lock.declaration import Declaration
from photonpack.serving.source import PhotonSpec
from photonpack.store import Store

__all__ = ["SERVING_DISTRIBUTION", "photon_files", "runtime_entries", "serving_files"]


def photon_files(
    spec: PhotonSpec, declaration: Declaration, lock_path: Path, store: Store
) -> list[FileEntry]:
    """The photon's working directory: source, extra files and the lock, into the store."""
    base = spec.directory.resolve()
    chosen: dict[str, Path] = {}
    for path in _source_files(spec):
        chosen[path.relative_to(base).as_posix()] = path
    for inside, local in declaration.extra_files:
        for rel, path in _expand_extra(base, inside, local):
            chosen[rel] = path
    chosen[lock_path.name] = lock_path
    return [_add_file(store, rel, path) for rel, path in sorted(chosen.items())]


def _source_files(spec: PhotonSpec) -> list[Path]:
    if spec.path is not None:
        return [spec.path.resolve()]
    assert spec.module is not None
    top = spec.module.split(".")[0]
    package = spec.root / top
    if package.is_dir():
        return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
    return [spec.root / f"{top}.py"]


def _expand_extra(base: Path, inside: str, local: str) -> Iterator[tuple[str, Path]]:
    where = f"extra_files entry {inside!r}"
    source = base / local
    if source.is_symlink():
        raise BuildError(f"{where}: {source} is a symbolic link; copy the file instead")
    resolved = source.resolve()
    if not resolved.is_relative_to(base):
        raise BuildError(
            f"{where}: {local!r} is outside the photon's directory {base}; "
            "move the file next to the photon"
        )
    rel = PurePosixPath(inside)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BuildError(f"{where}: the path inside the photon must be relative and stay inside it")
    if not resolved.exists():
        raise BuildError(f"{where}: {resolved} does not exist")
    if not resolved.is_file() and not resolved.is_dir():
        raise BuildError(f"{where}: {resolved} is not a regular file or a directory")
    if resolved.is_file():
        yield rel.as_posix(), resolved
        return
    for path in sorted(resolved.rglob("*")):
        if path.is_symlink():
            raise BuildError(f"{where}: {path} is a symbolic link; copy the file instead")
        if "__pycache__" in path.parts or path.is_dir():
            continue
        if not path.is_file():
            raise BuildError(f"{where}: {path} is not a regular file")
        yield (rel / path.relative_to(resolved).as_posix()).as_posix(), path


def _add_file(store: Store, rel: str, path: Path) -> FileEntry:
    """Copy ``path`` into the store, hashed on the way, so the archive holds what was hashed."""
    try:
        mode = path.stat().st_mode
        with path.open("rb") as src:
            sha256, size = store.add_blob_stream(src)
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return FileEntry(path=rel, sha256=sha256, size=size, executable=bool(mode & stat.S_IXUSR))


# What travels in every archive: the serving package and the facade that imports it.
# Nothing else of photonpack does, so a change to the packaging side (the CLI,
# the lock, the store) leaves every archive byte-identical.
SERVING_DISTRIBUTION = ("__init__.py", "__about__.py", "py.typed", "serving")


def serving_files() -> list[tuple[str, Path]]:
    """The files of photonpack that run inside a photon's environment, sorted by path.

    Each is ``(path relative to site-packages, file on this machine)``.
    """
    package = Path(photonpack.__file__).parent
    found: list[tuple[str, Path]] = []
    for name in SERVING_DISTRIBUTION:
        top = package / name
        paths = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in paths:
            if path.suffix not in (".py", ".typed") or "__pycache__" in path.parts:
                continue
            found.append(("photonpack/" + path.relative_to(package).as_posix(), path))
    return sorted(found)


def runtime_entries(store: Store) -> list[FileEntry]:
    """The serving files, copied into ``store``: the manifest's ``runtime`` entries."""
    return [
        dataclasses.replace(_add_file(store, rel, path), executable=False)
        for rel, path in serving_files()
    ]
