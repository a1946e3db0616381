"""The base's root filesystem, read from its layers without unpacking them.

Each layer is streamed once: its compressed bytes are hashed against its
digest and its tar against the config's ``diff_id`` (both must match, else an
``IntegrityError``), and the tar's members are applied in order, whiteouts
included. What is kept is the tree's shape (kinds, link targets, modes) and the
contents of the few files the image needs: ``/etc/passwd``, ``/etc/group``,
the package databases, the dynamic loader's configuration and the C library.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from photonpack.errors import ImageError, IntegrityError
from photonpack.image.base import BaseImage, Blob

__all__ = ["Node", "RootFS", "open_uncompressed", "read_rootfs"]

try:  # zlib-ng inflates a base's layers twice as fast; inflating is exact: the same bytes
    from zlib_ng import zlib_ng

    def _gunzipper() -> Any:
        return zlib_ng.decompressobj(zlib.MAX_WBITS | 16)

    # its stub types zlib_ng.error as an instance
    _GZIP_ERRORS: tuple[type[Exception], ...] = (zlib.error, zlib_ng.error)  # type: ignore[assignment]
except ImportError:  # an interpreter zlib-ng has no wheel for

    def _gunzipper() -> Any:
        return zlib.decompressobj(zlib.MAX_WBITS | 16)

    _GZIP_ERRORS = (zlib.error,)
_READ_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, *_GZIP_ERRORS)

_CHUNK = 1 << 20
# Files whose content the checks read; matched on the normalised member path.
_WANTED = frozenset(
    {"etc/passwd", "etc/group", "var/lib/dpkg/status", "lib/apk/db/installed", "etc/ld.so.conf"}
)
_WANTED_PREFIXES = ("var/lib/dpkg/status.d/", "etc/ld.so.conf.d/")
_LIBC_NAMES = frozenset({"libc.so.6"})
_MAX_WANTED = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Node:
    """One path of the tree: ``kind`` is "file", "dir", "symlink" or "other"."""

    kind: str
    mode: int = 0o644
    target: str = ""  # a symlink's target, or a hard link's path


@dataclass(kw_only=True)
class RootFS:
    """The merged tree of the base's layers, and the contents kept."""

    nodes: dict[str, Node] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    uncompressed_sizes: list[int] = field(default_factory=list)

    def resolve(self, path: str) -> str | None:
        """``path`` with every symlink followed (inside the tree), or None if it is missing."""
        parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            current = "/".join([*done, part])
            node = self.nodes.get(current)
            if node is None:
                if not parts:
                    return None
                node = Node(kind="dir")  # a tar may leave out the directories it fills
            if node.kind == "symlink":
                hops += 1
                if hops > 40:
                    return None
                base = [] if node.target.startswith("/") else done
                parts = [*base, *node.target.strip("/").split("/"), *parts]
                done = []
                continue
            done.append(part)
        return "/".join(done)

    def kind(self, path: str) -> str | None:
        """The kind of what ``path`` names once links are followed, or None."""
        resolved = self.resolve(path)
        if resolved is None:
            return None
        if resolved == "":
            return "dir"
        node = self.nodes[resolved]
        return node.kind

    def read(self, path: str) -> bytes | None:
        """The kept content of ``path`` (links followed), or None."""
        resolved = self.resolve(path)
        return None if resolved is None else self.contents.get(resolved)

    def mode(self, path: str) -> int:
        resolved = self.resolve(path)
        node = self.nodes.get(resolved or "")
        return node.mode if node else 0o644


class _Hashing(io.RawIOBase):
    """Read a blob, hashing it; at the end the count and digest must match."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], None] | None = None) -> None:
        self._raw = raw
        self._on_read = on_read
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self.hash.update(memoryview(buffer)[:count])
        self.count += count
        if self._on_read is not None:
            self._on_read(count)
        return int(count)


class _Inflating(io.RawIOBase):
    """Decompress a gzip or zstd stream (or pass a plain tar through), hashing the output.

    At most ``_CHUNK`` bytes come out of each step, however well the input
    compressed: a layer holding a big file (a torch wheel's libraries, a run of
    zeros that gzip shrinks a thousandfold) streams through bounded memory.
    """

    def __init__(self, raw: io.RawIOBase | BinaryIO, compression: str) -> None:
        self._raw = raw
        self._pending = memoryview(b"")
        self._eof = False
        self.hash = hashlib.sha256()
        self.count = 0
        self._inflate: Any = None
        self._zstd: Any = None
        if compression == "gzip":
            self._inflate = _gunzipper()
        elif compression == "zstd":
            import zstandard

            self._zstd = zstandard.ZstdDecompressor().stream_reader(
                cast("BinaryIO", raw), read_across_frames=True, closefd=False
            )

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()

    def _gunzip(self, inflate: Any) -> bytes:
        while True:
            if inflate.eof and inflate.unused_data:
                # Concatenated gzip members are valid gzip; continue with the next one.
                rest = inflate.unused_data
                inflate = self._inflate = _gunzipper()
                out = inflate.decompress(rest, _CHUNK)
            elif inflate.unconsumed_tail:
                out = inflate.decompress(inflate.unconsumed_tail, _CHUNK)
            else:
                data = self._raw.read(_CHUNK)
                if not data:
                    self._eof = True
                    return cast("bytes", inflate.flush())
                out = inflate.decompress(data, _CHUNK)
            if out:
                return cast("bytes", out)

    def _more(self) -> bytes:
        if self._inflate is not None:
            return self._gunzip(self._inflate)
        if self._zstd is None:
            data = self._raw.read(_CHUNK)
        else:
            import zstandard

            try:
                data = self._zstd.read(_CHUNK)
            except zstandard.ZstdError as exc:  # read_layer's readers say "damaged" for it
                raise EOFError(f"zstd: {exc}") from exc
        self._eof = not data
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            self._pending = memoryview(self._more())
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self.hash.update(self._pending[:count])
        self.count += count
        self._pending = self._pending[count:]
        return count


def _compression(media_type: str) -> str:
    if media_type.endswith("+gzip"):
        return "gzip"
    if media_type.endswith("+zstd"):
        return "zstd"
    return "none"


def open_uncompressed(blob: Blob) -> BinaryIO:
    """A reader of the tar inside a layer blob (gzip, zstd or plain); close it when done."""
    inflating = _Inflating(blob.open(), _compression(blob.media_type))
    return io.BufferedReader(inflating, _CHUNK)


def _members(tar: tarfile.TarFile) -> Iterator[tuple[str, tarfile.TarInfo]]:
    for member in tar:
        name = posixpath.normpath(member.name.lstrip("/"))
        if name in (".", "") or name.startswith("../"):
            continue
        yield name, member


def _apply(fs: RootFS, tar: tarfile.TarFile, lower: set[str]) -> None:
    """Apply one layer's members to ``fs``; ``lower`` are the paths of the layers below."""
    for name, member in _members(tar):
        folder, base = posixpath.split(name)
        if base == ".wh..wh..opq":  # opaque directory: hide what lower layers put inside
            prefix = f"{folder}/"
            for path in [p for p in lower if p.startswith(prefix)]:
                fs.nodes.pop(path, None)
                fs.contents.pop(path, None)
            continue
        if base.startswith(".wh."):
            gone = posixpath.join(folder, base[4:])
            for path in [p for p in fs.nodes if p == gone or p.startswith(f"{gone}/")]:
                fs.nodes.pop(path, None)
                fs.contents.pop(path, None)
            continue
        if member.isdir():
            fs.nodes[name] = Node(kind="dir", mode=member.mode & 0o7777)
        elif member.issym():
            fs.nodes[name] = Node(kind="symlink", target=member.linkname)
        elif member.islnk():
            target = posixpath.normpath(member.linkname.lstrip("/"))
            fs.nodes[name] = fs.nodes.get(target, Node(kind="file"))
            if target in fs.contents:
                fs.contents[name] = fs.contents[target]
        elif member.isfile():
            fs.nodes[name] = Node(kind="file", mode=member.mode & 0o7777)
            fs.contents.pop(name, None)
            if _wanted(name) and member.size <= _MAX_WANTED:
                handle = tar.extractfile(member)
                assert handle is not None
                fs.contents[name] = handle.read()
        else:
            fs.nodes[name] = Node(kind="other")


def _wanted(name: str) -> bool:
    return (
        name in _WANTED
        or name.startswith(_WANTED_PREFIXES)
        or posixpath.basename(name) in _LIBC_NAMES
    )


def _check_blob(hashing: _Hashing, blob: Blob, where: str) -> None:
    found = "sha256:" + hashing.hash.hexdigest()
    if hashing.count != blob.size or found != blob.digest:
        raise IntegrityError(
            f"layer of {where}: expected {blob.size} bytes with {blob.digest}, found "
            f"{hashing.count} bytes with {found}; the base image was altered, copy it again"
        )


def _read_layer(
    fs: RootFS, blob: Blob, diff_id: str, where: str, on_read: Callable[[int], None] | None
) -> None:
    lower = set(fs.nodes)
    with blob.open() as raw:
        hashing = _Hashing(raw, on_read)
        inflating = _Inflating(hashing, _compression(blob.media_type))
        stream = io.BufferedReader(inflating, _CHUNK)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                _apply(fs, tar, lower)
            while stream.read(_CHUNK):  # the tar's trailing blocks are part of its digest
                pass
        except OSError as exc:
            raise ImageError(
                f"cannot read layer {blob.digest} of {where} ({exc.strerror or exc}); "
                "copy the base image again"
            ) from exc
        except _READ_ERRORS as exc:
            while hashing.read(_CHUNK):  # altered bytes are the likelier cause: say so
                pass
            _check_blob(hashing, blob, where)
            raise IntegrityError(
                f"layer {blob.digest} of {where} is not a readable tar ({exc}); "
                "the base image is damaged, copy it again"
            ) from exc
    _check_blob(hashing, blob, where)
    tar_digest = "sha256:" + inflating.hash.hexdigest()
    if tar_digest != diff_id:
        raise IntegrityError(
            f"layer {blob.digest} of {where} unpacks to {tar_digest}, but its config lists "
            f"{diff_id}; the base image was altered, copy it again"
        )
    fs.uncompressed_sizes.append(inflating.count)


def read_rootfs(base: BaseImage, on_read: Callable[[int], None] | None = None) -> RootFS:
    """Read (and verify) every layer of ``base`` into one tree.

    ``on_read(n)``: ``n`` more compressed bytes were read (for a progress line).
    """
    fs = RootFS()
    for blob, diff_id in zip(base.layers, base.diff_ids, strict=True):
        _read_layer(fs, blob, diff_id, base.name, on_read)
    return fs
