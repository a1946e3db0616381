"""A photon's source requirements at lock time: pinned, archived, and handed to the resolver.

Each source line (``name @ git+URL@rev``, ``./mylib``, ``name @ https://…/x.tar.gz``)
becomes a source archive (:func:`photonpack.sources.archive.source_archive`),
and the resolver is given ``name @ file:///…/<sha256>.tar.gz`` for it: pip
prepares its metadata (its build backend, in pip's isolated environment) and
resolves its dependencies like any other package's. The lock then records
the pinned form, not that file (:mod:`photonpack.lock.source_entries`).

A git ref is resolved once: a re-lock keeps the commit the previous lock
pinned, unless ``-U`` (or ``-P`` naming the package) asks to move it. A local
project is digested again every time, so an edit is noticed
(:func:`changed_trees`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from photonpack.errors import ResolutionError
from photonpack.lock.index import DistFile
from photonpack.lock.pylock import Lock
from photonpack.lock.relative import is_file_url, recorded
from photonpack.sources.form import ArchiveSource, DirectorySource, SourceForm, VcsSource

if TYPE_CHECKING:  # tarfile, zipfile, git: not for a lock that is up to date
    from photonpack.sources.archive import SourceArchive

__all__ = [
    "changed_trees",
    "pin_sources",
    "relative_to_lock",
    "resolver_line",
    "source_cache",
    "source_file",
    "unfragmented",
]


@contextlib.contextmanager
def source_cache(given: Path | None) -> Iterator[Path]:
    """``given``, or a temporary directory for this lock only."""
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="photonpack-sources-") as temp:
        yield Path(temp)


def pin_sources(
    sources: Sequence[SourceForm],
    base_dir: Path,
    cache_dir: Path,
    *,
    previous: Lock | None,
    upgrade: bool,
    upgrade_packages: Sequence[str],
) -> dict[str, SourceArchive]:
    """The file URL the resolver is given -> the source archive, for each of ``sources``."""
    from photonpack.sources.archive import source_archive

    moved = {str(canonicalize_name(name)) for name in upgrade_packages}
    kept = {} if previous is None or upgrade else _commits(previous, moved)
    archives: dict[str, SourceArchive] = {}
    for written in sources:
        _check_git(written)
        form = written
        if isinstance(written, VcsSource) and (commit := kept.get(_vcs_key(written))):
            form = dataclasses.replace(written, commit=commit)
        made = source_archive(form, base_dir, cache_dir)
        archives[made.path.as_uri()] = made
    return archives


def relative_to_lock(
    archives: dict[str, SourceArchive], base_dir: Path, lock_dir: Path
) -> dict[str, SourceArchive]:
    """``archives`` with each local path made relative to the lock's directory (PEP 751).

    A line's path is relative to the photon's directory (``base_dir``); a lock records
    it relative to its own. The same directory (the default lock): kept as written.
    """
    if base_dir.resolve() == lock_dir.resolve():
        return archives
    return {url: made._replace(pinned=_moved(made.pinned, base_dir, lock_dir))
            for url, made in archives.items()}  # fmt: skip


def _moved(form: SourceForm, base_dir: Path, lock_dir: Path) -> SourceForm:
    if isinstance(form, DirectorySource) and not Path(form.path).expanduser().is_absolute():
        path = recorded(base_dir / Path(form.path).expanduser(), lock_dir)
        return dataclasses.replace(form, path=path)
    if isinstance(form, ArchiveSource) and _relative_path(form.url):
        return dataclasses.replace(form, url=recorded(base_dir / form.url, lock_dir))
    return form


def _relative_path(location: str) -> bool:
    return "://" not in location and not is_file_url(location) and not Path(location).is_absolute()


def resolver_line(url: str, archive: SourceArchive) -> str:
    """``name[extras] @ file:///…`` (or the bare URL when the name is the metadata's)."""
    form = archive.pinned
    marker = f" ; {form.marker}" if form.marker else ""
    extras = f"[{','.join(form.extras)}]" if form.extras else ""
    if form.name is None:
        return f"{url}{marker}"
    return f"{form.name}{extras} @ {url}{marker}"


def unfragmented(url: str) -> str:
    """``url`` without its ``#fragment``: the key :func:`pin_sources` gives."""
    return url.partition("#")[0]


def source_file(name: str, version: str, made: SourceArchive) -> DistFile:
    """The source archive of a pinned source, as the file its package is locked from."""
    return DistFile(
        filename=f"{name.replace('-', '_')}-{version}.tar.gz",
        url=made.path.as_uri(),
        sha256=made.sha256,
        size=made.path.stat().st_size,
    )


def changed_trees(lock: Lock) -> list[str]:
    """``path (was …, now …)`` for each locked local project whose tree changed since.

    A project's path is relative to the lock's directory.
    """
    base_dir = lock.path.parent
    changed = []
    for package in lock.packages:
        source = package.sdist.source if package.sdist is not None else None
        if not isinstance(source, DirectorySource):
            continue
        from photonpack.sources.tree import tree_digest  # tarfile: only for local projects

        root = (base_dir / Path(source.path).expanduser()).resolve()
        now = tree_digest(root) if root.is_dir() else "missing"
        if now != source.tree_digest:
            changed.append(f"local project {source.path} changed since it was locked")
    return changed


def _vcs_key(form: VcsSource) -> tuple[str, str, str | None, str | None]:
    return (form.vcs, form.url, form.rev, form.subdirectory)


def _commits(previous: Lock, moved: set[str]) -> dict[tuple[str, str, str | None, str | None], str]:
    """The commits ``previous`` pinned, by (vcs, url, rev, subdirectory), less those to move."""
    commits = {}
    for package in previous.packages:
        source = package.sdist.source if package.sdist is not None else None
        if isinstance(source, VcsSource) and source.commit and package.name not in moved:
            commits[_vcs_key(source)] = source.commit
    return commits


def _check_git(form: SourceForm) -> None:
    if isinstance(form, VcsSource) and form.vcs != "git":
        raise ResolutionError(
            f"requirement {str(form)!r} is a {form.vcs} requirement; photonpack fetches git "
            "repositories only: use a git mirror of it, or a wheel and --find-links"
        )
