"""An archive requirement (``name @ https://host/x-1.0.tar.gz``, ``.zip``, or a local file).

The file is fetched once and pinned by its sha256 (a ``#sha256=`` written in
the line is checked, never trusted blindly); it is then repacked into the
canonical source archive (:mod:`photonpack.sources.tarball`) so every source
reaches the builder in one shape: the archive's single top-level directory
(``x-1.0/``, as sdists have) is dropped, ``#subdirectory=`` is applied, and
only regular files, executables and links inside the tree are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from photonpack._fs import atomic_write
from photonpack.errors import IntegrityError, SourceError
from photonpack.sources.form import ArchiveSource
from photonpack.sources.tarball import Kind, Member, link_escapes, write_archive

__all__ = ["fetch_archive", "repack_archive"]

_TIMEOUT = 60.0


def _location(source: ArchiveSource, base_dir: Path) -> tuple[str, Path | None]:
    """The URL to fetch, or the local file (a ``file:`` URL or a path from ``base_dir``)."""
    parts = urllib.parse.urlsplit(source.url)
    if parts.scheme in ("http", "https"):
        return source.url, None
    if parts.scheme == "file":
        return source.url, Path(urllib.parse.unquote(parts.path))
    return source.url, base_dir / source.url


def fetch_archive(source: ArchiveSource, base_dir: Path, cache_dir: Path) -> tuple[Path, str]:
    """The archive's local file and its sha256 (checked against ``source.sha256`` when set)."""
    url, local = _location(source, base_dir)
    if local is not None:
        try:
            with local.open("rb") as handle:
                sha256 = _sha256(handle)
        except OSError as exc:
            raise SourceError(f"cannot read the source archive {local}: {exc.strerror}") from exc
        path = local
    else:
        path, sha256 = _download(url, cache_dir)
    if source.sha256 is not None and source.sha256 != sha256:
        raise IntegrityError(
            f"the source archive {url} has sha256 {sha256}, but the requirement (or the lock) "
            f"says {source.sha256}; the file changed or was tampered with: check it, and "
            "correct the requirement's #sha256= if the new file is the right one"
        )
    return path, sha256


def _sha256(handle: IO[bytes]) -> str:
    hasher = hashlib.sha256()
    while chunk := handle.read(1 << 20):
        hasher.update(chunk)
    return hasher.hexdigest()


def _download(url: str, cache_dir: Path) -> tuple[Path, str]:
    import urllib.request  # ssl and http.client: only when a download happens

    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    name = PurePosixPath(urllib.parse.urlsplit(url).path).name or "archive"
    path = cache_dir / "downloads" / key / name
    path.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    try:
        with (
            urllib.request.urlopen(url, timeout=_TIMEOUT) as response,  # noqa: S310 (http(s) only)
            atomic_write(path) as out,
        ):
            while chunk := response.read(1 << 20):
                hasher.update(chunk)
                out.write(chunk)
    except OSError as exc:  # URLError, HTTPError and timeouts are OSErrors
        raise SourceError(
            f"cannot download the source archive {url}: {exc}; photonpack fetches it once, "
            "when locking, and pins its sha256: check the URL, or put the file beside the "
            "photon and name its path"
        ) from exc
    return path, hasher.hexdigest()


def repack_archive(path: Path, source: ArchiveSource, out: BinaryIO) -> str:
    """Write the canonical source archive of the archive at ``path``; return its tree digest."""
    shown = source.url
    with _opened(path, shown) as (names, open_member):
        top = _single_top(names)
        subdirectory = source.subdirectory.strip("/") if source.subdirectory else ""
        prefix = "/".join(p for p in (top, subdirectory) if p)
        members = []
        for name, (kind, size, target) in names.items():
            if prefix and not name.startswith(prefix + "/"):
                continue
            relative = name[len(prefix) + 1 :] if prefix else name
            members.append((Member(path=relative, kind=kind, size=size, target=target), name))
        if not members:
            raise SourceError(
                f"the source archive {shown} has no files under {subdirectory or 'its root'}; "
                "check #subdirectory="
            )
        original = {member.path: name for member, name in members}
        return write_archive(
            [member for member, _ in members], lambda m: open_member(original[m.path]), out
        )


_Names = dict[str, tuple[Kind, int, str]]
_Opener = Callable[[str], IO[bytes]]


@contextlib.contextmanager
def _opened(path: Path, shown: str) -> Iterator[tuple[_Names, _Opener]]:
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as zipped:
                yield _zip_names(zipped, shown), zipped.open
        else:
            with tarfile.open(path, mode="r:*") as tarred:

                def open_member(name: str) -> IO[bytes]:
                    handle = tarred.extractfile(name)
                    assert handle is not None
                    return handle

                yield _tar_names(tarred, shown), open_member
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise SourceError(f"the source archive {shown} cannot be read: {exc}") from exc


def _safe(name: str, shown: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise SourceError(f"the source archive {shown} has a member {name!r} outside its root")
    return path.as_posix()


def _tar_names(archive: tarfile.TarFile, shown: str) -> _Names:
    names: _Names = {}
    for info in archive.getmembers():
        if info.isdir():
            continue
        name = _safe(info.name, shown)
        if info.isreg():
            names[name] = ("exec" if info.mode & 0o111 else "file", info.size, "")
        elif info.issym() and not link_escapes(name, info.linkname):
            names[name] = ("link", 0, info.linkname)
        else:
            raise SourceError(
                f"the source archive {shown} has {name!r}, which is neither a file nor a "
                "symbolic link inside the archive; photonpack builds only from plain files"
            )
    return names


def _zip_names(archive: zipfile.ZipFile, shown: str) -> _Names:
    names: _Names = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        mode = info.external_attr >> 16
        names[_safe(info.filename, shown)] = (
            "exec" if mode & 0o111 else "file",
            info.file_size,
            "",
        )
    return names


def _single_top(names: _Names) -> str:
    """The archive's one top-level directory (``x-1.0``), or "" when it has several entries."""
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) == 1 and all("/" in name for name in names):
        return tops.pop()
    return ""
