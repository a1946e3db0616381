"""Real photon archives for tests, made with ``write_archive`` from real wheels and files.

No build pipeline is involved: the helper writes the files, real wheels
(tests.support.wheels) and a real pylock file into a blob directory, makes the
manifest and writes the archive. Tamper helpers edit the decompressed tar and
compress it again, so tests can damage exactly one member.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import zstandard

from photonpack.archive import write_archive
from photonpack.archive.manifest import FileEntry, Manifest, WheelEntry
from photonpack.lock.index import IndexSettings
from photonpack.lock.pylock import Lock, LockedPackage, LockedWheel, LockInputs
from photonpack.lock.target import Target
from tests.support.wheels import build_wheel

__all__ = [
    "COUNTER_SOURCE",
    "DEFAULT_HANDLERS",
    "TARGET",
    "Archive",
    "compress",
    "decompress",
    "make_archive",
    "member_data_offset",
    "with_lock",
    "with_manifest",
]

TARGET = "cp311-manylinux_2_28_x86_64"

COUNTER_SOURCE = """from photonpack import Photon


class Counter(Photon):
    def init(self):
        self.counter = 0

    @Photon.handler
    def add(self, x: int) -> int:
        self.counter += x
        return self.counter
"""


def _handler(name: str, params: Sequence[tuple[str, bool, str]], returns: str) -> dict[str, Any]:
    return {
        "name": name,
        "path": f"/{name}",
        "method": "POST",
        "mount": False,
        "description": None,
        "parameters": [
            {"name": p, "required": req, "schema": {"type": kind}} for p, req, kind in params
        ],
        "returns": {"type": returns},
    }


DEFAULT_HANDLERS = (
    _handler("add", [("x", True, "integer")], "integer"),
    _handler("sub", [("x", True, "integer")], "integer"),
)

handler = _handler


@dataclasses.dataclass(frozen=True, kw_only=True)
class Archive:
    """An archive on disk, its manifest, and the directory holding its blobs by hex."""

    path: Path
    manifest: Manifest
    blobs: Path

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256

    @property
    def lock_text(self) -> str:
        entry = self.manifest.file(self.manifest.lock)
        assert entry is not None
        return self.blob_path(entry.sha256).read_text()


def _put(blobs: Path, data: bytes) -> tuple[str, int]:
    sha256 = hashlib.sha256(data).hexdigest()
    (blobs / sha256).write_bytes(data)
    return sha256, len(data)


def make_lock(wheels: Sequence[Path], targets: Sequence[str], path: Path) -> Lock:
    """A real photonpack pylock listing ``wheels``; one package per (name, version)."""
    by_package: dict[tuple[str, str], list[LockedWheel]] = {}
    for wheel in wheels:
        name, version = wheel.name.split("-")[:2]
        data = wheel.read_bytes()
        locked = LockedWheel(
            name=name.replace("_", "-"),
            version=version,
            filename=wheel.name,
            url=f"https://files.example.org/{wheel.name}",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        by_package.setdefault((locked.name, version), []).append(locked)
    packages = [
        LockedPackage(
            name=name,
            version=version,
            marker=None,
            dependencies=(),
            wheels=tuple(sorted(found, key=lambda w: w.filename)),
        )
        for (name, version), found in by_package.items()
    ]
    parsed = tuple(Target.parse(t) for t in targets)
    inputs = LockInputs(
        requirements=tuple(p.name for p in packages),
        serving_requirements=(),
        targets=parsed,
        index=IndexSettings(index_url="https://pypi.org/simple"),
        directory=path.parent,
    )
    return Lock(
        path=path,
        targets=parsed,
        packages=tuple(sorted(packages, key=lambda p: p.name)),
        inputs=inputs,
        inputs_digest=inputs.digest(),
    )


def make_archive(
    directory: Path,
    *,
    name: str = "counter",
    source: str = COUNTER_SOURCE,
    extra_files: Mapping[str, bytes] | None = None,
    packages: Sequence[tuple[str, str]] = (("tinydep", "1.0"),),
    wheel_files: Mapping[str, Mapping[str, str | bytes]] | None = None,
    handlers: Sequence[Mapping[str, Any]] = DEFAULT_HANDLERS,
    targets: Sequence[str] = (TARGET,),
    image: str | None = None,
    system_dependency: Sequence[str] = (),
    runtime: Mapping[str, bytes] | None = None,
    output: Path | None = None,
    requires: Mapping[str, Sequence[str]] | None = None,
    wheel_transform: Callable[[Path], None] | None = None,
) -> Archive:
    """Write ``<directory>/<name>.photon`` with real wheels, files and lock; return it.

    ``requires`` gives packages Requires-Dist lines; ``wheel_transform(path)``
    edits each wheel file before anything is hashed (to craft a lying wheel).
    """
    blobs = directory / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    wheels_dir = directory / "wheels"
    wheel_paths = [
        build_wheel(
            wheels_dir,
            pkg,
            version,
            files=(wheel_files or {}).get(pkg),
            requires=(requires or {}).get(pkg, ()),
        )
        for pkg, version in packages
    ]
    if wheel_transform is not None:
        for wheel_path in wheel_paths:
            wheel_transform(wheel_path)
    lock_name = f"pylock.{name}.toml"
    lock = make_lock(wheel_paths, targets, directory / lock_name)
    lock.path.write_text(lock.to_text())
    contents = {f"{name}.py": source.encode(), lock_name: lock.to_text().encode()}
    contents.update(extra_files or {})
    files = []
    for path, data in sorted(contents.items()):
        sha256, size = _put(blobs, data)
        files.append(FileEntry(path=path, sha256=sha256, size=size, executable=False))
    runtime_entries = []
    for path, data in sorted((runtime or {"photonpack/__init__.py": b"# runtime\n"}).items()):
        sha256, size = _put(blobs, data)
        runtime_entries.append(FileEntry(path=path, sha256=sha256, size=size, executable=False))
    wheels = []
    for wheel in sorted(wheel_paths, key=lambda p: p.name):
        sha256, size = _put(blobs, wheel.read_bytes())
        pkg, version = wheel.name.split("-")[:2]
        wheels.append(
            WheelEntry(
                filename=wheel.name,
                name=pkg.replace("_", "-"),
                version=version,
                sha256=sha256,
                size=size,
                targets=tuple(sorted(targets)),
            )
        )
    manifest = Manifest.from_dict(
        {
            "schema_version": 1,
            "name": name,
            "entry": f"{name}.py:Counter",
            "photon": {
                "requirement_dependency": [pkg for pkg, _ in packages],
                "system_dependency": list(system_dependency),
                "image": image,
                "handler_max_concurrency": 1,
                "handler_timeout": None,
                "description": None,
            },
            "handlers": [dict(h) for h in handlers],
            "openapi": {"openapi": "3.1.0", "paths": {h["path"]: {} for h in handlers}},
            "targets": sorted(targets),
            "lock": lock_name,
            "files": [f.to_dict() for f in files],
            "runtime": [f.to_dict() for f in runtime_entries],
            "wheels": [w.to_dict() for w in wheels],
            "tools": {"photonpack": "0.1.0"},
        }
    )
    out = output or directory / f"{name}.photon"
    with out.open("wb") as fh:
        write_archive(fh, manifest, lambda sha256: blobs / sha256)
    return Archive(path=out, manifest=manifest, blobs=blobs)


def with_lock(archive: Archive, text: str, out: Path) -> Path:
    """``archive`` written again to ``out`` with ``text`` as its lock file (a new photon)."""
    m = archive.manifest
    data = text.encode()
    sha256, size = _put(archive.blobs, data)
    files = [
        dataclasses.replace(f, sha256=sha256, size=size) if f.path == m.lock else f for f in m.files
    ]
    manifest = Manifest.from_dict({**m.to_dict(), "files": [f.to_dict() for f in files]})
    with out.open("wb") as fh:
        write_archive(fh, manifest, archive.blob_path)
    return out


def with_manifest(archive: Archive, manifest: Manifest, out: Path) -> Path:
    """``archive``'s blobs under another manifest, written to ``out``."""
    with out.open("wb") as fh:
        write_archive(fh, manifest, archive.blob_path)
    return out


def decompress(path: Path) -> bytes:
    """The tar stream inside an archive."""
    reader = zstandard.ZstdDecompressor().stream_reader(path.read_bytes(), read_across_frames=True)
    return reader.read()


def frames_of(data: bytes) -> list[bytes]:
    """The frames of an archive's bytes, zstd and skippable, each whole, in order."""
    frames = []
    while data:
        if 0x50 <= data[0] <= 0x5F and data[1:4] == b"\x2a\x4d\x18":  # skippable
            end = 8 + int.from_bytes(data[4:8], "little")
        else:
            obj = zstandard.ZstdDecompressor().decompressobj()
            obj.decompress(data)
            end = len(data) - len(obj.unused_data)
        frames.append(data[:end])
        data = data[end:]
    return frames


def compress(tar: bytes) -> bytes:
    """A zstd frame with a checksum, as photonpack writes."""
    return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(tar)


def member_data_offset(tar: bytes, name: str) -> int:
    """Where the data of member ``name`` starts in the tar stream."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        for info in tf:
            if info.name == name:
                return info.offset_data
    raise KeyError(name)


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """The counter photon with one dependency and one extra file (do not modify it)."""
    return make_archive(
        tmp_path_factory.mktemp("counter"), extra_files={"data/model.bin": b"weights" * 100}
    )


def tar_member(name: str, data: bytes = b"", *, kind: bytes = tarfile.REGTYPE) -> bytes:
    """One tar member (header, data, padding) as photonpack writes them."""
    info = tarfile.TarInfo(name)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = 315532800
    info.mode = 0o644
    info.type = kind
    if kind == tarfile.SYMTYPE:
        info.linkname = "elsewhere"
    body = data if kind == tarfile.REGTYPE else b""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict") + body + b"\0" * (-len(body) % 512)


def tar_stream(members: Sequence[tuple[str, bytes]], *, end: bool = True) -> bytes:
    """Members in the given order, then (unless ``end`` is False) the end-of-archive blocks."""
    return b"".join(tar_member(n, d) for n, d in members) + (b"\0" * 1024 if end else b"")


def members_of(archive: Archive) -> list[tuple[str, bytes]]:
    """(name, data) of every member of an archive, in order."""
    with tarfile.open(fileobj=io.BytesIO(decompress(archive.path)), mode="r:") as tf:
        out = []
        for info in tf:
            fh = tf.extractfile(info)
            assert fh is not None
            out.append((info.name, fh.read()))
        return out
