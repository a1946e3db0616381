"""The three kinds of source a requirement line can name, as frozen values.

The parser (:mod:`photonpack.lock.forms`) makes them from a line; pinning
(:func:`photonpack.sources.archive.source_archive`) returns the same form with
its pin filled in (``commit``, ``tree_digest``, ``sha256``), which is what a
lock records. ``__str__`` gives back a requirement line pip reads, pin
included, so a pinned form is also a reproducible pip requirement.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = [
    "ARCHIVE_SUFFIXES",
    "PIN",
    "ArchiveSource",
    "DirectorySource",
    "SourceForm",
    "VcsSource",
    "pin_of",
]

# A source's pin, written one way wherever a photon records it (photon.json's source.pin):
# ``tree:<hex>`` a project's tree digest, ``git:<commit>``, ``sha256:<hex>`` a download.
PIN = re.compile(r"(tree|sha256):[0-9a-f]{64}|git:[0-9a-f]{40}(?:[0-9a-f]{24})?")


# The file names an archive requirement may have (pip reads the same set, less .tbz and .txz).
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip")


def _head(name: str | None, extras: tuple[str, ...]) -> str:
    if name is None:
        return ""
    return f"{name}[{','.join(extras)}] @ " if extras else f"{name} @ "


def _tail(marker: str | None) -> str:
    return f" ; {marker}" if marker else ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class VcsSource:
    """``name @ git+URL@rev#subdirectory=sub``: a commit of a git repository."""

    url: str  # the repository URL without ``git+``, ``@rev`` or fragment: https://host/repo.git
    rev: str | None = None  # as written: a branch, tag or (abbreviated) commit; None = HEAD
    subdirectory: str | None = None
    name: str | None = None  # from ``name @`` or ``#egg=``; None: the project's metadata decides
    extras: tuple[str, ...] = ()
    marker: str | None = None
    vcs: str = "git"
    commit: str | None = None  # the pin: the full commit id ``rev`` resolved to

    def __str__(self) -> str:
        rev = self.commit or self.rev
        fragment = f"#subdirectory={self.subdirectory}" if self.subdirectory else ""
        at = f"@{rev}" if rev else ""
        head = _head(self.name, self.extras)
        return f"{head}{self.vcs}+{self.url}{at}{fragment}" + _tail(self.marker)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DirectorySource:
    """``./mylib`` or ``-e ./mylib``: a project directory beside the photon."""

    path: str  # as written, relative to the photon's directory (or absolute)
    editable: bool = False
    name: str | None = None
    extras: tuple[str, ...] = ()
    marker: str | None = None
    tree_digest: str | None = None  # the pin: ``sha256:`` of the tree (sources.tree)

    def __str__(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        prefix = "-e " if self.editable else ""
        return f"{prefix}{self.path}{extras}" + _tail(self.marker)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArchiveSource:
    """``name @ https://host/x-1.0.tar.gz`` (or ``.zip``, or a local archive path)."""

    url: str  # an http(s) or file URL, or a path relative to the photon's directory
    name: str | None = None
    extras: tuple[str, ...] = ()
    marker: str | None = None
    subdirectory: str | None = None
    sha256: str | None = None  # from ``#sha256=`` when written, else the pin once downloaded
    size: int | None = None  # of the file, once downloaded (PEP 751 records it)

    def __str__(self) -> str:
        fragment = f"#sha256={self.sha256}" if self.sha256 else ""
        return f"{_head(self.name, self.extras)}{self.url}{fragment}" + _tail(self.marker)


SourceForm = VcsSource | DirectorySource | ArchiveSource


def pin_of(form: SourceForm | None, sha256: str) -> str | None:
    """The :data:`PIN` of a pinned ``form``, or of an index sdist (``form`` None) whose
    download has ``sha256``; None for a form not pinned yet."""
    if form is None:
        return f"sha256:{sha256}"
    if isinstance(form, DirectorySource):
        digest = form.tree_digest
        return f"tree:{digest.removeprefix('sha256:')}" if digest else None
    if isinstance(form, VcsSource):
        return f"{form.vcs}:{form.commit}" if form.commit else None
    return f"sha256:{form.sha256}" if form.sha256 else None
