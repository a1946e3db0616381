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

import contextlib
import dataclasses
import datetime as dt
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from photonpack._digest import (
    CHUNK_SIZE,
    SHA256_HEX,
    Digest,
    copy_hashed,
    is_sha256_hex,
    sha256_file,
)
from photonpack._fs import AtomicFile, fsync_dir, publish_dir, write_atomic
from photonpack.errors import IntegrityError, PhotonpackError, StoreError

if TYPE_CHECKING:
    from photonpack.archive.manifest import Manifest

__all__ = ["COMPLETE", "BlobWriter", "Ref", "Store", "StoreSink", "default_home", "validate_name"]

_INSTALLED = re.compile(SHA256_HEX.pattern + r"-[A-Za-z0-9._+-]+")
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


def _hex(sha256: str) -> str:
    """A blob's or an environment's name: 64 hex digits, no prefix."""
    if not is_sha256_hex(sha256):
        raise StoreError(f"invalid blob name {sha256!r}: expected 64 lowercase hex digits")
    return sha256


def _digest(digest: str) -> Digest:
    """An archive's identity: ``sha256:<64 hex digits>``."""
    try:
        return Digest(digest)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


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

    def check_root(self) -> None:
        """Raise :class:`StoreError` unless the root is a directory (or does not exist yet)."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(
                f"the store {self.root} is not a directory; set PHOTONPACK_HOME to a directory"
            )

    # -- paths -----------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(sha256)

    @property
    def blob_dir(self) -> Path:
        """``blobs/``: also the download cache (``blobs/sha256/<hex>``)."""
        return self.root / "blobs"

    def env_path(self, env_hex: str) -> Path:
        return self.root / "envs" / _hex(env_hex)

    def installed_path(self, key: str) -> Path:
        """``installed/<key>``: which environment holds a wheel (``runtime/cache.py``)."""
        if not _INSTALLED.fullmatch(key):
            raise StoreError(f"invalid installed-wheel key {key!r}: expected <sha256 hex>-<name>")
        return self.root / "installed" / key

    def work_path(self, digest: str) -> Path:
        return self.root / "work" / _digest(digest).hex

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
            publish_dir(temp, final, marker=COMPLETE, sync=sync)

    @staticmethod
    def sync_dir(path: Path) -> None:
        """Make the renames into ``path`` durable."""
        fsync_dir(path)

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
        writer = self.open_blob(sha256, size)
        try:
            yield writer.file
        except BaseException:
            writer.abort()
            raise
        writer.commit()

    def open_blob(self, sha256: str, size: int) -> BlobWriter:
        """A :class:`BlobWriter` for one blob: ``commit()`` checks it, then renames it in."""
        return BlobWriter(self, _hex(sha256), size)

    def import_archive(
        self, path: Path, *, check: Callable[[Manifest], None] | None = None
    ) -> Manifest:
        """Stream ``path`` once, verifying every blob, into the store; return its manifest.

        Nothing from the archive is visible in the store unless it matched its
        digest; an archive with any problem raises before its manifest is kept.
        ``check(manifest)`` runs once its blobs are in, before the manifest is
        kept; an archive file imported (and checked) before is not read again.
        """
        from photonpack.archive import unpack

        # The same bytes, verified before, need not be unpacked again: hashing the
        # compressed file is several times cheaper than decompressing and re-hashing
        # every member, and it is what makes a warm start fast.
        file_hex = self._hash_archive_file(path)
        seen = self.root / "archives" / f"{file_hex}.json"
        known = self._known_archive(seen, checked=check is not None)
        if known is not None:
            return known
        manifest = unpack(path, self.sink())
        if check is not None:
            check(manifest)
        self.put_manifest(manifest.digest, manifest.to_bytes())
        self._dir("archives")
        record = {"digest": manifest.digest, "checked": check is not None}
        self.write_atomic(seen, json.dumps(record).encode() + b"\n")
        return manifest

    def _hash_archive_file(self, path: Path) -> str:
        from photonpack.errors import ArchiveError

        try:
            return sha256_file(path)[0]
        except OSError as exc:
            raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def _known_archive(self, seen: Path, *, checked: bool) -> Manifest | None:
        """The manifest of an archive file imported (and ``checked``) before, if all its
        blobs are still here."""
        try:
            record = json.loads(seen.read_bytes())
            if checked and record.get("checked") is not True:
                return None
            manifest = self.manifest(record["digest"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, PhotonpackError):
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

        Environments are checked by :func:`photonpack.install.audit.audit_environments`.

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
        with _store_errors(self.root, "write a blob"):
            atomic = AtomicFile(self.blob_dir / "sha256" / "new", temp_dir=self._dir("tmp"))
            try:
                sha256, size = copy_hashed(source, atomic.file)
            except BaseException:
                atomic.abort()
                raise
            # Also mends a same-named blob altered in place.
            atomic.commit(target=self.blob_path(sha256), sync_dir=False)
        return sha256, size

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
                shutil.copyfileobj(src, out, CHUNK_SIZE)
        return self.blob_path(sha256)

    def _check_file(self, path: Path, sha256: str, size: int) -> None:
        found, actual = sha256_file(path)
        if actual != size or found != _hex(sha256):
            raise IntegrityError(
                f"blob sha256:{sha256}: expected {size} bytes with that digest, "
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
        if Digest.of_bytes(data) != _digest(digest):
            raise IntegrityError(f"manifest bytes do not match {digest}")
        path = self._dir("manifests") / f"{_digest(digest).hex}.json"
        if not path.exists():
            self.write_atomic(path, data)

    def get_manifest_bytes(self, digest: str) -> bytes:
        path = self.root / "manifests" / f"{_digest(digest).hex}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{digest} is not in the store {self.root}") from None
        if Digest.of_bytes(data) != digest:
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

        ``sync=False`` skips the fsyncs, for files a crash may lose but not tear.
        """
        with _store_errors(self.root, f"write {path.name}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data, sync=sync)


class _AlreadyStored(Exception):
    """The blob being committed is already in the store: nothing to rename."""


class BlobWriter:
    """One blob on its way into the store: a temp file under ``tmp/``.

    ``commit`` re-hashes it and renames it into place; a blob that another
    process put there meanwhile is kept and the copy discarded. The store's
    own failures (a full disk) are :class:`StoreError` naming the store.
    """

    def __init__(self, store: Store, sha256: str, size: int) -> None:
        self._store, self._sha256, self._size = store, sha256, size
        with _store_errors(store.root, f"write blob {sha256}"):
            self._atomic = AtomicFile(store.blob_path(sha256), temp_dir=store._dir("tmp"))

    @property
    def file(self) -> IO[bytes]:
        return self._atomic.file

    def write(self, data: bytes | memoryview) -> object:
        with _store_errors(self._store.root, f"write blob {self._sha256}"):
            return self._atomic.write(data)

    def commit(self) -> None:
        try:
            with _store_errors(self._store.root, f"write blob {self._sha256}"):
                self._atomic.commit(check=self._check, sync_dir=False)
        except _AlreadyStored:
            pass  # the temp file is gone; the blob another run stored stays

    def _check(self, temp: Path) -> None:
        self._store._check_file(temp, self._sha256, self._size)
        if self._store.has_blob(self._sha256, self._size):  # a concurrent run was first
            raise _AlreadyStored

    def abort(self) -> None:
        self._atomic.abort()


class StoreSink:
    """Where ``archive.unpack`` puts the blobs of an archive being imported."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def has(self, sha256: str) -> bool:
        return self._store.has_blob(sha256)

    def open(self, sha256: str, size: int) -> BlobWriter:
        return self._store.open_blob(sha256, size)
