"""The source archive: a deterministic ``.tar.gz`` of a project tree, and the tree's digest.

Both a local directory (:mod:`photonpack.sources.tree`) and a git commit
(:mod:`photonpack.sources.vcs`) become the same thing: a sorted list of
members (regular files, executables, symbolic links) under one top-level
directory, ``source/``. What makes the bytes the same on every machine is
named here, once:

- members sorted by path (as UTF-8 bytes), no directory entries;
- mode 0644, or 0755 when any execute bit is set (0777 for links); owner
  and group 0 with empty names; every mtime :data:`SOURCE_MTIME`;
- POSIX pax format (long or non-ASCII names get a pax header, never a
  GNU extension);
- gzip level 9 with mtime 0, no file name and OS "unknown" (Python's own
  header), so only the deflate stream remains: the same for the same zlib
  (zlib-ng, as some distributions ship it, compresses differently, which is
  why a lock pins the *tree digest*, not the archive's bytes).

The tree digest names the content independently of tar and gzip:
``sha256`` over ``<kind> <sha256 of content> <path>\\0`` for every member in
order, where kind is ``file``, ``exec`` or ``link`` (a link's content is its
target). Permissions, owners, times and the archive format do not enter it.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import posixpath
import tarfile
from collections.abc import Callable, Iterable
from typing import IO, BinaryIO, Literal

__all__ = [
    "PREFIX",
    "SOURCE_MTIME",
    "Kind",
    "Member",
    "archive_digest",
    "digest_lines",
    "link_escapes",
    "write_archive",
]

# 1980-01-01, the zip epoch wheels use. Fixed rather than SOURCE_DATE_EPOCH: a source's
# bytes are an input, they must not depend on the environment of the machine exporting it.
SOURCE_MTIME = 315532800
PREFIX = "source"
_MODES = {"file": 0o644, "exec": 0o755, "link": 0o777}

Kind = Literal["file", "exec", "link"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Member:
    """One entry of a source tree: a path relative to its root, and what it is."""

    path: str  # POSIX, relative, no ``.`` or ``..`` parts
    kind: Kind
    size: int = 0  # of a file's content
    target: str = ""  # of a link


def link_escapes(path: str, target: str) -> bool:
    """Whether a link at ``path`` (relative to the tree) to ``target`` points outside the tree."""
    if target.startswith("/"):
        return True
    inside = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    return inside == ".." or inside.startswith("../")


def digest_lines(entries: Iterable[tuple[Kind, str, str]]) -> str:
    """``sha256:`` of ``(kind, content sha256, path)`` entries, in the order given."""
    hasher = hashlib.sha256()
    for kind, sha256, path in entries:
        hasher.update(f"{kind} {sha256} {path}\0".encode())
    return "sha256:" + hasher.hexdigest()


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.hasher = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hasher.update(data)
        return data


def write_archive(
    members: Iterable[Member],
    content: Callable[[Member], IO[bytes]],
    out: BinaryIO,
) -> str:
    """Write the source archive of ``members`` (sorted here) to ``out``; return the tree digest.

    ``content(member)`` opens a file member's bytes (exactly ``member.size`` of them).
    """
    ordered = sorted(members, key=lambda m: m.path.encode())
    entries: list[tuple[Kind, str, str]] = []
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for member in ordered:
            info = tarfile.TarInfo(f"{PREFIX}/{member.path}")
            info.mode = _MODES[member.kind]
            info.mtime = SOURCE_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if member.kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = member.target
                tar.addfile(info)
                sha256 = hashlib.sha256(member.target.encode()).hexdigest()
            else:
                info.size = member.size
                with content(member) as stream:
                    hashing = _Hashing(stream)
                    tar.addfile(info, hashing)  # tarfile reads exactly info.size
                sha256 = hashing.hasher.hexdigest()
            entries.append((member.kind, sha256, member.path))
    return digest_lines(entries)


def archive_digest(archive: IO[bytes]) -> str:
    """The tree digest of a source archive's contents, as :func:`write_archive` returned it.

    Computed from the members themselves (paths, kinds, contents), so it names
    the tree whatever zlib compressed the archive. Raises ``ValueError`` for a
    member a source archive never holds (outside ``source/``, a directory, a
    device) and ``tarfile.TarError``/``OSError`` for an unreadable archive.
    """
    entries: list[tuple[Kind, str, str]] = []
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        for info in tar:
            path = info.name.removeprefix(f"{PREFIX}/")
            if path == info.name or not path:
                raise ValueError(f"{info.name!r} is outside {PREFIX}/")
            if info.issym():
                sha256 = hashlib.sha256(info.linkname.encode()).hexdigest()
                entries.append(("link", sha256, path))
            elif info.isreg():
                stream = tar.extractfile(info)
                assert stream is not None  # a regular member has content
                hasher = hashlib.sha256()
                while chunk := stream.read(1 << 20):
                    hasher.update(chunk)
                kind: Kind = "exec" if info.mode & 0o111 else "file"
                entries.append((kind, hasher.hexdigest(), path))
            else:
                raise ValueError(f"{info.name!r} is neither a file nor a symbolic link")
    return digest_lines(sorted(entries, key=lambda entry: entry[2].encode()))
