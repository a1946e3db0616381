"""A local project directory: which files are its source, their digest, their archive.

The rule for what is *not* source, written once (docs/lock.md repeats it):

- anywhere in the tree: the directories ``.git``, ``.hg``, ``.svn``,
  ``__pycache__``, ``.venv``, ``.tox``, ``.nox``, ``.mypy_cache``,
  ``.pytest_cache``, ``.ruff_cache`` and ``*.egg-info``, and the files
  ``*.pyc`` and ``*.pyo``: version control, caches and build metadata, which
  change without the source changing;
- at the project's root only: ``build/`` and ``dist/``, where backends write
  (a package may well have a subpackage named ``build``).

Everything else is source: regular files (executable or not) and symbolic
links that stay inside the tree. A link pointing outside it, or a socket or
device, is an error, never silently skipped. ``.gitignore`` is not read: a
lock must not depend on how one's git is configured.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from photonpack._digest import sha256_file
from photonpack.errors import SourceError
from photonpack.sources.tarball import Kind, Member, digest_lines, link_escapes, write_archive

__all__ = [
    "EXCLUDED_ANYWHERE",
    "EXCLUDED_AT_ROOT",
    "check_project",
    "tree_archive",
    "tree_digest",
    "tree_members",
]

EXCLUDED_ANYWHERE = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)
EXCLUDED_SUFFIXES = (".egg-info", ".pyc", ".pyo")
EXCLUDED_AT_ROOT = frozenset({"build", "dist"})
PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg")


def check_project(root: Path, *, written: str) -> None:
    """Raise :class:`SourceError` unless ``root`` is a directory holding a Python project."""
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise SourceError(
            f"local project {written} ({root}) {what}; a path in requirement_dependency is "
            "relative to the photon's directory"
        )
    if not any((root / name).is_file() for name in PROJECT_FILES):
        raise SourceError(
            f"local project {written} ({root}) is not a Python project: it has no "
            "pyproject.toml, setup.py or setup.cfg; point the line at the project's root"
        )


def tree_members(root: Path) -> list[Member]:
    """The source files of the project at ``root``, sorted by path (see the module docstring)."""
    found = list(_walk(root, root))
    return sorted(found, key=lambda m: m.path.encode())


def _excluded(name: str, *, at_root: bool, is_dir: bool) -> bool:
    if name in EXCLUDED_ANYWHERE or name.endswith(EXCLUDED_SUFFIXES):
        return True
    return at_root and is_dir and name in EXCLUDED_AT_ROOT


def _walk(root: Path, directory: Path) -> Iterator[Member]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise SourceError(f"cannot read {directory}: {exc.strerror or exc}") from exc
    for entry in entries:
        path = Path(entry.path)
        relative = path.relative_to(root).as_posix()
        info = entry.stat(follow_symlinks=False)
        is_dir = stat.S_ISDIR(info.st_mode)
        if _excluded(entry.name, at_root=directory == root, is_dir=is_dir):
            continue
        if is_dir:
            yield from _walk(root, path)
        elif stat.S_ISREG(info.st_mode):
            yield Member(path=relative, kind=_kind(info.st_mode), size=info.st_size)
        elif stat.S_ISLNK(info.st_mode):
            yield Member(path=relative, kind="link", target=_link_target(root, path, relative))
        else:
            raise SourceError(
                f"{path} is neither a file, a directory nor a symbolic link; a project's "
                "source holds only those: move it out of the project"
            )


def _kind(mode: int) -> Kind:
    return "exec" if mode & 0o111 else "file"


def _link_target(root: Path, path: Path, relative: str) -> str:
    target = str(path.readlink())
    if link_escapes(relative, target):
        raise SourceError(
            f"{path} is a symbolic link to {target}, outside the project {root}; a source "
            "archive holds the project only: copy the file into the project instead"
        )
    return target


def tree_digest(root: Path) -> str:
    """``sha256:`` of the project's source tree (:mod:`photonpack.sources.tarball`'s rule)."""
    entries = []
    for member in tree_members(root):
        if member.kind == "link":
            sha256 = hashlib.sha256(member.target.encode()).hexdigest()
        else:
            sha256 = _file_sha256(root / member.path)
        entries.append((member.kind, sha256, member.path))
    return digest_lines(entries)


def _file_sha256(path: Path) -> str:
    try:
        return sha256_file(path)[0]
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def tree_archive(root: Path, out: BinaryIO) -> str:
    """Write the source archive of the project at ``root`` to ``out``; return its tree digest."""

    def content(member: Member) -> IO[bytes]:
        try:
            return (root / member.path).open("rb")
        except OSError as exc:
            raise SourceError(f"cannot read {root / member.path}: {exc.strerror}") from exc

    try:
        return write_archive(tree_members(root), content, out)
    except (tarfile.TarError, OSError) as exc:  # a file shrank between listing and archiving
        raise SourceError(
            f"the project {root} changed while it was archived ({exc}); try again"
        ) from exc
