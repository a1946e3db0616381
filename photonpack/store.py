"""The local content-addressed store under ``$PHOTONPACK_HOME``.

Layout (every name below the root is derived from content or a digest)::

    blobs/sha256/<hex>      immutable, verified content (also the download cache)
    manifests/<hex>.json    canonical manifest bytes, by archive digest
    refs/<name>.json        {"name", "digest", "size", "created"}
    envs/<env-hex>/         installed environments; valid only with .complete inside
    installed/<wheel-hex>-<interpreter>-v<layout>
                            which complete environment holds the wheel installed,
                            to hard-link its files from (``runtime/cache.py``)
    work/<archive-hex>/     a photon's working directory; valid only with .complete
    describe/<key>.json     handler contracts captured by build (key: env, entry, files)
    archives/<hex>.json     archive files (by sha256 of their bytes) verified and imported
    tmp/                    temp files and dirs, renamed into place when complete
    locks/                  OS file locks that serialise installs of one digest

Crash safety: everything is written under ``tmp/`` and renamed into place
only when complete (files are fsynced first); directories carry a
``.complete`` marker written last. A process killed at any point leaves at
worst an orphan in ``tmp/`` that nothing ever reads.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import dataclasses
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from photonpack._digest import sha256_file
from photonpack.errors import IntegrityError, PhotonpackError, StoreError

if TYPE_CHECKING:
    from photonpack.archive.manifest import Manifest

__all__ = ["Ref", "Store", "StoreSink", "default_home", "validate_name"]

_CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-f]{64}")
_INSTALLED = re.compile(r"[0-9a-f]{64}-[A-Za-z0-9._+-]+")
# Lepton's rule for photon names, kept so that names move between the tools.
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
COMPLETE = ".complete"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid photon name, else raise with the rule."""
    if not _NAME.fullmatch(name):
        raise PhotonpackError(
            f"invalid photon name {name!r}: use lowercase letters, digits and hyphens, "
            "starting with a letter, at most 32 characters (e.g. 'counter-v2')"
        )
    return name


def default_home() -> Path:
    """``$PHOTONPACK_HOME``, else ``$XDG_DATA_HOME/photonpack``, else ~/.local/share/photonpack."""
    if home := os.environ.get("PHOTONPACK_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "photonpack"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ref:
    """A name in the store pointing at an archive digest."""

    name: str
    digest: str
    size: int
    created: str

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def _hex_of(digest: str) -> str:
    hex_ = digest.removeprefix("sha256:")
    if not _HEX.fullmatch(hex_):
        raise StoreError(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return hex_


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _store_errors(root: Path, what: str) -> Iterator[None]:
    """Translate OSError from the store's filesystem into one clear StoreError."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = "the store is not writable; set PHOTONPACK_HOME to a writable directory"
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "the disk is full; free space or point PHOTONPACK_HOME elsewhere"
        else:
            hint = "check the directory or point PHOTONPACK_HOME elsewhere"
        reason = exc.strerror or str(exc)
        raise StoreError(f"cannot {what} in the store {root}: {reason}; {hint}") from exc


class Store:
    """The local store. Cheap to construct; directories are made on first write."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_home()).absolute()

    # -- paths -----------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex_of(sha256)

    @property
    def blob_dir(self) -> Path:
        """``blobs/``: also the download cache (``blobs/sha256/<hex>``)."""
        return self.root / "blobs"

    def env_path(self, env_hex: str) -> Path:
        return self.root / "envs" / _hex_of(env_hex)

    def installed_path(self, key: str) -> Path:
        """``installed/<key>``: which environment holds a wheel (``runtime/cache.py``)."""
        if not _INSTALLED.fullmatch(key):
            raise StoreError(f"invalid installed-wheel key {key!r}: expected <sha256 hex>-<name>")
        return self.root / "installed" / key

    def work_path(self, digest: str) -> Path:
        return self.root / "work" / _hex_of(digest)

    def _dir(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        with _store_errors(self.root, f"create {path}"):
            path.mkdir(parents=True, exist_ok=True)
        return path

    # -- temp files and locks -------------------------------------------

    @contextlib.contextmanager
    def temp_dir(self, prefix: str) -> Iterator[Path]:
        """A fresh directory under ``tmp/``, removed on exit unless renamed away."""
        parent = self._dir("tmp")
        with _store_errors(self.root, "create a temporary directory"):
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """An exclusive OS file lock named ``key``, released even if the process dies."""
        path = self._dir("locks") / f"{key}.lock"
        with _store_errors(self.root, f"lock {key}"), path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def publish_dir(self, temp: Path, final: Path, *, sync: bool = True) -> None:
        """Mark ``temp`` complete and rename it to ``final`` (callers hold the lock).

        ``sync=False`` leaves the fsync of ``final``'s parent to the caller, who
        publishes many directories into one parent and syncs it once.
        """
        with _store_errors(self.root, f"install {final.name}"):
            (temp / COMPLETE).write_bytes(b"")
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # an incomplete leftover of a killed run
                shutil.rmtree(final)
            temp.rename(final)
            if sync:
                _fsync_dir(final.parent)

    @staticmethod
    def sync_dir(path: Path) -> None:
        """Make the renames into ``path`` durable."""
        _fsync_dir(path)

    @staticmethod
    def is_complete(path: Path) -> bool:
        return (path / COMPLETE).is_file()

    # -- blobs -----------------------------------------------------------

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        path = self.blob_path(sha256)
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    @contextlib.contextmanager
    def blob_writer(self, sha256: str, size: int) -> Iterator[IO[bytes]]:
        """Write a blob through a temp file; it enters the store only if its bytes match.

        The hash is checked here, whatever the caller verified, so that nothing
        unverified can ever be found under ``blobs/``.
        """
        final = self.blob_path(sha256)
        parent = self._dir("tmp")
        with _store_errors(self.root, f"write blob {sha256}"):
            fd, name = tempfile.mkstemp(prefix="blob-", dir=parent)
        temp = Path(name)
        try:
            with _store_errors(self.root, f"write blob {sha256}"), os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            self._check_file(temp, sha256, size)
            with _store_errors(self.root, f"write blob {sha256}"):
                final.parent.mkdir(parents=True, exist_ok=True)
                temp.replace(final)
        finally:
            temp.unlink(missing_ok=True)

    def import_archive(self, path: Path) -> Manifest:
        """Stream ``path`` once, verifying every blob, into the store; return its manifest.

        Nothing from the archive is visible in the store unless it matched its
        digest; an archive with any problem raises before its manifest is kept.
        """
        from photonpack.archive import unpack

        # The same bytes, verified before, need not be unpacked again: hashing the
        # compressed file is several times cheaper than decompressing and re-hashing
        # every member, and it is what makes a warm start fast.
        file_hex = self._hash_archive_file(path)
        seen = self.root / "archives" / f"{file_hex}.json"
        known = self._known_archive(seen)
        if known is not None:
            return known
        manifest = unpack(path, self.sink())
        self.put_manifest(manifest.digest, manifest.to_bytes())
        self._dir("archives")
        self.write_atomic(seen, json.dumps({"digest": manifest.digest}).encode() + b"\n")
        return manifest

    def _hash_archive_file(self, path: Path) -> str:
        from photonpack.errors import ArchiveError

        try:
            return sha256_file(path)[0]
        except OSError as exc:
            raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def _known_archive(self, seen: Path) -> Manifest | None:
        """The manifest of an archive file imported before, if all its blobs are still here."""
        try:
            digest = json.loads(seen.read_bytes())["digest"]
            manifest = self.manifest(digest)
        except (OSError, ValueError, KeyError, TypeError, PhotonpackError):
            return None
        if all(self.has_blob(sha, size) for sha, size in manifest.blobs().items()):
            return manifest
        return None

    def manifest(self, digest: str) -> Manifest:
        """The stored manifest of ``digest``, re-checked against it."""
        from photonpack.archive.manifest import Manifest

        return Manifest.from_bytes(self.get_manifest_bytes(digest))

    def manifests(self) -> list[Manifest]:
        """Every manifest the store holds, by digest order."""
        return [
            self.manifest("sha256:" + path.stem)
            for path in sorted((self.root / "manifests").glob("*.json"))
        ]

    def verify(self) -> list[str]:
        """Re-hash every blob and laid-out file the store's manifests list.

        A corrupt blob is removed (the next import of its archive restores it);
        a working directory whose files differ loses its ``.complete`` marker
        (the next run lays it out again). Returns one line per problem found.
        """
        problems = []
        checked: set[str] = set()
        for manifest in self.manifests():
            for sha, size in manifest.blobs().items():
                if sha in checked:
                    continue
                checked.add(sha)
                if not self.has_blob(sha):
                    problems.append(f"blob {sha} ({manifest.name}) is missing from the store")
                elif not self.verify_blob(sha, size):
                    problems.append(
                        f"blob {sha} ({manifest.name}) was corrupted; removed it, "
                        "run the archive again to restore it"
                    )
            problems += self._verify_workdir(manifest)
        problems += self._verify_installed("environment", self.root / "envs")
        return problems

    def _verify_installed(self, kind: str, parent: Path) -> list[str]:
        """Re-hash every complete tree under ``parent`` against its RECORD files.

        One that differs loses its ``.complete`` marker: the next run builds it
        again from the verified blobs.
        """
        problems = []
        for tree in sorted(parent.glob("*")) if parent.is_dir() else []:
            if not self.is_complete(tree):
                continue
            problem = _check_records(tree)
            if problem is not None:
                (tree / COMPLETE).unlink(missing_ok=True)
                problems.append(
                    f"{kind} {tree.name}: {problem}; it was taken out of use and will be "
                    "built again on the next run"
                )
        return problems

    def _verify_workdir(self, manifest: Manifest) -> list[str]:
        work = self.work_path(manifest.digest)
        if not self.is_complete(work):
            return []
        for entry in manifest.files:
            path = work / entry.path
            try:
                self._check_file(path, entry.sha256, entry.size)
            except (OSError, IntegrityError):
                (work / COMPLETE).unlink(missing_ok=True)
                return [
                    f"{manifest.name}: {entry.path} in {work} was altered; "
                    "it will be laid out again on the next run"
                ]
        return []

    def sink(self) -> StoreSink:
        """A :class:`photonpack.archive.BlobSink` that puts verified blobs into this store."""
        return StoreSink(self)

    def add_blob_stream(self, source: IO[bytes]) -> tuple[str, int]:
        """Copy ``source`` into the store in one pass; return its (sha256 hex, size).

        The digest is taken from the bytes as they are written, so the blob is
        exactly what it is named after, whatever happens to the source meanwhile.
        """
        parent = self._dir("tmp")
        with _store_errors(self.root, "write a blob"):
            fd, name = tempfile.mkstemp(prefix="blob-", dir=parent)
        temp = Path(name)
        digest = hashlib.sha256()
        size = 0
        try:
            with _store_errors(self.root, "write a blob"), os.fdopen(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            final = self.blob_path(digest.hexdigest())
            with _store_errors(self.root, f"write blob {digest.hexdigest()}"):
                final.parent.mkdir(parents=True, exist_ok=True)
                temp.replace(final)  # also mends a same-named blob altered in place
        finally:
            temp.unlink(missing_ok=True)
        return digest.hexdigest(), size

    def adopt_blob(self, path: Path, sha256: str, size: int) -> Path:
        """Move a file on the store's filesystem (e.g. under ``tmp/``) in as a blob.

        Its bytes are checked first; a rename instead of a copy saves writing
        them twice.
        """
        self._check_file(path, sha256, size)
        final = self.blob_path(sha256)
        with _store_errors(self.root, f"write blob {sha256}"):
            final.parent.mkdir(parents=True, exist_ok=True)
            path.replace(final)
        return final

    def add_blob_file(self, source: Path, sha256: str, size: int) -> Path:
        """Copy ``source`` into the store (verified); return the blob's path."""
        if not self.has_blob(sha256, size):
            with self.blob_writer(sha256, size) as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
        return self.blob_path(sha256)

    def _check_file(self, path: Path, sha256: str, size: int) -> None:
        found, actual = sha256_file(path)
        if actual != size or found != _hex_of(sha256):
            raise IntegrityError(
                f"blob sha256:{_hex_of(sha256)}: expected {size} bytes with that digest, "
                f"found {actual} bytes with sha256:{found}"
            )

    def verify_blob(self, sha256: str, size: int) -> bool:
        """Re-hash one stored blob; a corrupt one is removed so it can be restored."""
        path = self.blob_path(sha256)
        try:
            self._check_file(path, sha256, size)
        except FileNotFoundError:
            return False
        except IntegrityError:
            path.unlink(missing_ok=True)
            return False
        return True

    # -- manifests and refs ---------------------------------------------

    def put_manifest(self, digest: str, data: bytes) -> None:
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(f"manifest bytes do not match {digest}")
        path = self._dir("manifests") / f"{_hex_of(digest)}.json"
        if not path.exists():
            self.write_atomic(path, data)

    def get_manifest_bytes(self, digest: str) -> bytes:
        path = self.root / "manifests" / f"{_hex_of(digest)}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{digest} is not in the store {self.root}") from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise IntegrityError(f"the stored manifest {path} does not match {digest}")
        return data

    def set_ref(self, name: str, digest: str, size: int) -> Ref:
        validate_name(name)
        created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        ref = Ref(name=name, digest=digest, size=size, created=created)
        data = json.dumps(ref.to_dict(), indent=2, sort_keys=True).encode() + b"\n"
        self.write_atomic(self._dir("refs") / f"{name}.json", data)
        return ref

    def get_ref(self, name: str) -> Ref:
        validate_name(name)
        path = self.root / "refs" / f"{name}.json"
        try:
            raw = json.loads(path.read_bytes())
            return Ref(**{k: raw[k] for k in ("name", "digest", "size", "created")})
        except FileNotFoundError:
            known = ", ".join(ref.name for ref in self.list_refs()) or "none"
            raise StoreError(
                f"no photon named {name!r} in the store {self.root} (known: {known}); "
                "create one with 'photonpack create -n NAME -m file.py'"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"the ref file {path} is corrupt ({exc}); remove it") from exc

    def list_refs(self) -> list[Ref]:
        """Named photons, newest first."""
        refs = []
        for path in sorted((self.root / "refs").glob("*.json")):
            with contextlib.suppress(PhotonpackError):
                refs.append(self.get_ref(path.stem))
        return sorted(refs, key=lambda ref: (ref.created, ref.name), reverse=True)

    def remove_ref(self, name: str) -> Ref:
        ref = self.get_ref(name)
        with _store_errors(self.root, f"remove {name}"):
            (self.root / "refs" / f"{name}.json").unlink()
        return ref

    def write_atomic(self, path: Path, data: bytes, *, sync: bool = True) -> None:
        """Write ``data`` to ``path`` (in the store) through a temp file and a rename.

        ``sync=False`` skips the fsync, for files a crash may lose but not tear.
        """
        with _store_errors(self.root, f"write {path.name}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    if sync:
                        out.flush()
                        os.fsync(out.fileno())
                Path(name).replace(path)
            finally:
                Path(name).unlink(missing_ok=True)


def _check_records(tree: Path) -> str | None:
    """The first file under ``tree`` that differs from its RECORD row, described; or None."""
    records = sorted(tree.glob("lib/python*/site-packages/*.dist-info/RECORD"))
    for record in records:
        site = record.parent.parent
        try:
            rows = list(csv.reader(record.read_text(encoding="utf-8").splitlines()))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            return f"{record.relative_to(tree)} cannot be read ({exc})"
        for row in filter(None, rows):
            if len(row) != 3:
                return f"{record.relative_to(tree)} has a malformed row {row}"
            if not row[1]:
                continue  # the RECORD's own row
            path = Path(os.path.normpath(site / row[0]))
            if not path.is_relative_to(tree):
                return f"{record.relative_to(tree)} lists {row[0]}, outside {tree}"
            algorithm, _, expected = row[1].partition("=")
            try:
                digest = hashlib.new(algorithm)
                size = 0
                with path.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
            except (OSError, ValueError) as exc:
                return f"{path.relative_to(tree)} cannot be read ({exc})"
            found = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            if found != expected or str(size) != row[2]:
                return (
                    f"{path.relative_to(tree)} was altered (expected {algorithm} {expected}, "
                    f"{row[2]} bytes; found {found}, {size} bytes)"
                )
    return None


class _StoreBlobWriter:
    """Receives one blob from ``bundle.unpack``; renamed into place on ``commit``."""

    def __init__(self, store: Store, sha256: str, size: int) -> None:
        self._context = store.blob_writer(sha256, size)
        self._out = self._context.__enter__()

    def write(self, data: bytes | memoryview) -> object:
        return self._out.write(data)

    def commit(self) -> None:
        self._context.__exit__(None, None, None)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._context.__exit__(IntegrityError, IntegrityError("aborted"), None)


class StoreSink:
    """Where ``bundle.unpack`` puts the blobs of an archive being imported."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def has(self, sha256: str) -> bool:
        return self._store.has_blob(sha256)

    def open(self, sha256: str, size: int) -> _StoreBlobWriter:
        return _StoreBlobWriter(self._store, sha256, size)
