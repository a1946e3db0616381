"""``source_archive(form, base_dir, cache_dir)``: any source form, pinned, as a source archive.

The one entry point the lock and the builder call. It returns the archive's
path (under ``cache_dir/sources/``, named by its sha256), that sha256, and the
form with its pin filled in (a git commit id, a directory's tree digest, an
archive's sha256), which is what a lock records. Given a form that is
already pinned, it checks the pin instead of choosing one: a directory whose
tree changed since the lock is an error, a pinned tree or commit is taken from
the archive made for it earlier (remembered under ``sources/pins/``; a tree's
archive read back and its digest recomputed first), else exported offline
from the cache when it is there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NamedTuple

from photonpack._digest import sha256_file
from photonpack._fs import fsync_dir
from photonpack.errors import SourceError, StaleLockError
from photonpack.sources import remote, tarball, tree, vcs
from photonpack.sources.form import ArchiveSource, DirectorySource, SourceForm, VcsSource

__all__ = ["SourceArchive", "source_archive"]


class SourceArchive(NamedTuple):
    """A source archive on disk, its sha256 (hex), and the pinned form it was made from."""

    path: Path
    sha256: str
    pinned: SourceForm


def source_archive(form: SourceForm, base_dir: Path, cache_dir: Path) -> SourceArchive:
    """Pin ``form`` (relative paths from ``base_dir``) and write its source archive.

    ``cache_dir`` holds the git repositories, downloads and archives (the store's
    cache directory); it is created when missing.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(form, DirectorySource):
        return _directory(form, base_dir, cache_dir)
    if isinstance(form, VcsSource):
        return _vcs(form, cache_dir)
    return _archive(form, base_dir, cache_dir)


def _directory(form: DirectorySource, base_dir: Path, cache_dir: Path) -> SourceArchive:
    """The project's archive; when ``form`` is pinned (build), the one made earlier for that
    tree if the cache holds it, since gzip -9 costs some fifty times the tree's digest."""
    root = (base_dir / Path(form.path).expanduser()).resolve()
    tree.check_project(root, written=form.path)
    if form.tree_digest is not None:
        _check_tree(form, tree.tree_digest(root))
        if (cached := _cached_tree(cache_dir, form.tree_digest)) is not None:
            return SourceArchive(cached[0], cached[1], form)
    path, sha256, digest = _written(cache_dir, lambda out: tree.tree_archive(root, out))
    _check_tree(form, digest)
    _remember(cache_dir, f"tree {digest}", sha256)
    return SourceArchive(path, sha256, dataclasses.replace(form, tree_digest=digest))


def _check_tree(form: DirectorySource, digest: str) -> None:
    if form.tree_digest is not None and form.tree_digest != digest:
        raise StaleLockError(
            f"local project {form.path} changed since it was locked (its tree was "
            f"{form.tree_digest}, it is now {digest}); run photonpack lock"
        )


def _cached_tree(cache_dir: Path, digest: str) -> tuple[Path, str] | None:
    """The archive remembered for the tree ``digest``, if its files still are that tree
    (read back: the pins file alone is not trusted for what a build is made from)."""
    cached = _cached(cache_dir, f"tree {digest}")
    if cached is None:
        return None
    try:
        with cached[0].open("rb") as archive:
            same = tarball.archive_digest(archive) == digest
    except (tarfile.TarError, OSError, EOFError, ValueError):
        same = False
    return cached if same else None


def _vcs(form: VcsSource, cache_dir: Path) -> SourceArchive:
    pinned = vcs.pin_commit(form, cache_dir)
    key = f"git\0{pinned.url}\0{pinned.commit}\0{pinned.subdirectory or ''}"
    cached = _cached(cache_dir, key)
    if cached is not None:
        return SourceArchive(cached[0], cached[1], pinned)
    path, sha256, _ = _written(cache_dir, lambda out: vcs.export_commit(pinned, cache_dir, out))
    _remember(cache_dir, key, sha256)
    return SourceArchive(path, sha256, pinned)


def _archive(form: ArchiveSource, base_dir: Path, cache_dir: Path) -> SourceArchive:
    local, sha256 = remote.fetch_archive(form, base_dir, cache_dir)
    pinned = dataclasses.replace(form, sha256=sha256, size=local.stat().st_size)
    path, archive_sha256, _ = _written(
        cache_dir, lambda out: remote.repack_archive(local, pinned, out)
    )
    return SourceArchive(path, archive_sha256, pinned)


def _written(cache_dir: Path, write: Callable[[BinaryIO], str]) -> tuple[Path, str, str]:
    """Run ``write`` into a temporary file, then publish it as ``sources/<sha256>.tar.gz``."""
    directory = cache_dir / "sources"
    directory.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".tar.gz")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = write(out)
            out.flush()
            os.fsync(out.fileno())
        sha256 = sha256_file(temp)[0]
        final = directory / f"{sha256}.tar.gz"
        temp.chmod(0o644)
        temp.replace(final)  # same content, same name: a concurrent writer is harmless
        fsync_dir(directory)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final, sha256, digest


def _pin_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / "sources" / "pins" / hashlib.sha256(key.encode()).hexdigest()


def _cached(cache_dir: Path, key: str) -> tuple[Path, str] | None:
    """The archive made earlier for ``key``, if it is still there and intact."""
    try:
        sha256 = _pin_file(cache_dir, key).read_text().strip()
        path = cache_dir / "sources" / f"{sha256}.tar.gz"
        if sha256_file(path)[0] == sha256:
            os.utime(path)  # used: gc keeps it for the keep window (photonpack.store.gc_cache)
            return path, sha256
    except OSError:
        pass
    return None


def _remember(cache_dir: Path, key: str, sha256: str) -> None:
    pin = _pin_file(cache_dir, key)
    pin.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, name = tempfile.mkstemp(dir=pin.parent, prefix=".tmp-")
        with os.fdopen(handle, "w") as out:
            out.write(sha256 + "\n")
        Path(name).replace(pin)
    except OSError as exc:
        raise SourceError(f"cannot write the source cache {pin.parent}: {exc.strerror}") from exc
