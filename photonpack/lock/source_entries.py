"""Pinned sources as PEP 751 package tables: ``[packages.vcs]``, ``.directory``, ``.archive``.

What a lock writes for a source (and reads back), so pip and uv still read
the file: a git commit as ``vcs`` (``type``, ``url``, ``requested-revision``,
``commit-id``, ``subdirectory``), a local project as ``directory`` (``path``,
``editable``) with its tree digest under ``[packages.tool.photonpack]``
(PEP 751 has no hash for a directory; ``lock --check`` compares this one), an
archive as ``archive`` (``url`` or ``path``, ``size``, ``hashes.sha256``).
The package's ``name``, ``version`` and ``marker`` are the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from photonpack.errors import LockFileError
from photonpack.sources.form import ArchiveSource, DirectorySource, SourceForm, VcsSource

__all__ = ["source_entry", "source_from_entry"]


def source_entry(pinned: SourceForm) -> dict[str, Any]:
    """The keys a ``[[packages]]`` table gets for the pinned source ``pinned``."""
    if isinstance(pinned, VcsSource):
        if pinned.commit is None:
            raise ValueError(f"{pinned} is not pinned: pin_commit first")
        vcs: dict[str, Any] = {"type": pinned.vcs, "url": pinned.url}
        if pinned.rev is not None:
            vcs["requested-revision"] = pinned.rev
        vcs["commit-id"] = pinned.commit
        if pinned.subdirectory:
            vcs["subdirectory"] = pinned.subdirectory
        return {"vcs": vcs}
    if isinstance(pinned, DirectorySource):
        if pinned.tree_digest is None:
            raise ValueError(f"{pinned} is not pinned: take its tree digest first")
        directory = {"path": pinned.path, "editable": pinned.editable}
        return {"directory": directory, "tool": {"photonpack": {"tree-digest": pinned.tree_digest}}}
    if pinned.sha256 is None:
        raise ValueError(f"{pinned} is not pinned: download and hash it first")
    location = "url" if "://" in pinned.url else "path"
    archive: dict[str, Any] = {location: pinned.url}
    if pinned.size is not None:
        archive["size"] = pinned.size
    archive["hashes"] = {"sha256": pinned.sha256}
    if pinned.subdirectory:
        archive["subdirectory"] = pinned.subdirectory
    return {"archive": archive}


def source_from_entry(entry: Mapping[str, Any], *, at: str) -> SourceForm | None:
    """The pinned source of a ``[[packages]]`` table, None for one from an index.

    ``at`` locates the table in messages (``packages[3]``); the file is assumed
    valid PEP 751 (``packaging.pylock`` checked it), so only photonpack's own
    requirements are checked here.
    """
    name = entry.get("name")
    if isinstance(vcs := entry.get("vcs"), Mapping):
        if vcs.get("url") is None:
            raise LockFileError(f"{at}.vcs has no url: photonpack fetches git repositories by URL")
        return VcsSource(
            vcs=str(vcs["type"]),
            url=str(vcs["url"]),
            rev=vcs.get("requested-revision"),
            commit=str(vcs["commit-id"]),
            subdirectory=vcs.get("subdirectory"),
            name=name,
        )
    if isinstance(directory := entry.get("directory"), Mapping):
        tool = (entry.get("tool") or {}).get("photonpack") or {}
        digest = tool.get("tree-digest")
        if not isinstance(digest, str):
            raise LockFileError(
                f"{at}.tool.photonpack.tree-digest is missing: a local project is pinned by "
                "its tree digest; lock again with photonpack lock"
            )
        return DirectorySource(
            path=str(directory["path"]),
            editable=bool(directory.get("editable", False)),
            tree_digest=digest,
            name=name,
        )
    if isinstance(archive := entry.get("archive"), Mapping):
        sha256 = (archive.get("hashes") or {}).get("sha256")
        if not isinstance(sha256, str):
            raise LockFileError(f"{at}.archive.hashes has no sha256, the hash photonpack checks")
        return ArchiveSource(
            url=str(archive.get("url") or archive.get("path")),
            sha256=sha256,
            size=archive.get("size"),
            subdirectory=archive.get("subdirectory"),
            name=name,
        )
    return None
