"""The :class:`Store`: blobs, manifests, environments and working directories on disk."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from photonpack._digest import CHUNK_SIZE, Digest, copy_hashed, sha256_file
from photonpack._fs import AtomicFile, fsync_dir, publish_dir, write_atomic
from photonpack.errors import IntegrityError, PhotonpackError, StoreError
from photonpack.store import locks
from photonpack.store.blobs import BlobWriter, StoreSink
from photonpack.store.names import (
    COMPLETE,
    INSTALLED_KEY,
    archive_digest,
    blob_name,
    collect_orphans,
    default_home,
    store_errors,
    temp_prefix,
)
from photonpack.store.refs import Refs

if TYPE_CHECKING:
    from photonpack.archive.manifest import Manifest

__all__ = ["Store"]


class Store:
    """The local store. Cheap to construct; directories are made on first write."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_home()).absolute()
        self.refs = Refs(self)
        self._swept = False
        # Blobs this process put in after hashing every byte, by the file's identity then:
        # verify_blob need not read them again while that identity holds.
        self._hashed_here: dict[str, tuple[int, ...]] = {}

    def check_root(self) -> None:
        """Raise :class:`StoreError` unless the root is a directory (or does not exist yet)."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(
                f"the store {self.root} is not a directory; set PHOTONPACK_HOME to a directory"
            )

    # -- paths -----------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / "sha256" / blob_name(sha256)

    @property
    def blob_dir(self) -> Path:
        """``blobs/``: also the download cache (``blobs/sha256/<hex>``)."""
        return self.root / "blobs"

    def env_path(self, env_hex: str) -> Path:
        return self.root / "envs" / blob_name(env_hex)

    def installed_path(self, key: str) -> Path:
        """``installed/<key>``: which environment holds a wheel (``runtime/cache.py``)."""
        if not INSTALLED_KEY.fullmatch(key):
            raise StoreError(f"invalid installed-wheel key {key!r}: expected <sha256 hex>-<name>")
        return self.root / "installed" / key

    def work_path(self, digest: str) -> Path:
        return self.root / "work" / archive_digest(digest).hex

    def _dir(self, *parts: str) -> Path:
        self.hold(create=True)
        path = self.root.joinpath(*parts)
        with store_errors(self.root, f"create {path}"):
            path.mkdir(parents=True, exist_ok=True)
        return path

    # -- temp files and locks -------------------------------------------

    def hold(self, *, create: bool = False) -> None:
        """Take the store's shared lock for the rest of the command (``locks.py``).

        Every write takes it (``create=True`` makes the store); reads that a
        collection must not cut in two (admitting a photon, starting it) take
        it first, if the store exists. A running ``gc`` is waited for.
        """
        locks.share(self.root, create=create)

    def use_lock_path(self, item: Path) -> Path:
        """``locks/use-<area>-<name>.lock``: held shared by a process serving from ``item``."""
        return self.root / "locks" / f"use-{item.parent.name}-{item.name}.lock"

    def hold_in_use(self, *items: Path) -> None:
        """Mark ``items`` (an environment, a working directory) in use until this process
        (or the server it execs) exits, and note the time of their last use.

        ``gc`` never removes an item in use, and keeps one used recently.
        """
        for item in items:
            locks.hold_for_life(self.use_lock_path(item))
            # The marker's mtime is the item's last use (a read-only store keeps the old one).
            with contextlib.suppress(OSError):
                os.utime(item / COMPLETE)

    @contextlib.contextmanager
    def temp_dir(self, prefix: str) -> Iterator[Path]:
        """A fresh directory under ``tmp/``, removed on exit unless renamed away."""
        parent = self.tmp_dir()
        with store_errors(self.root, "create a temporary directory"):
            path = Path(tempfile.mkdtemp(prefix=temp_prefix(prefix), dir=parent))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def blob_temp(self, final: Path) -> AtomicFile:
        """A temporary file under ``tmp/`` that becomes the blob ``final`` on commit."""
        return AtomicFile(final, temp_dir=self.tmp_dir(), prefix=temp_prefix("blob-"))

    def tmp_dir(self) -> Path:
        """``tmp/``, once per Store cleared of what killed processes left there."""
        parent = self._dir("tmp")
        if not self._swept:
            self._swept = True
            collect_orphans(parent)
        return parent

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """An exclusive OS file lock named ``key``, released even if the process dies."""
        path = self._dir("locks") / f"{key}.lock"
        with store_errors(self.root, f"lock {key}"), path.open("a") as handle:
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
        with store_errors(self.root, f"install {final.name}"):
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
        return BlobWriter(self, blob_name(sha256), size)

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

        self.hold()
        known = self.known_archive(path, check=check)
        if known is not None:
            return known
        # Hashing the compressed file is several times cheaper than decompressing and
        # re-hashing every member: the next import of the same bytes is then fast.
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

    def known_archive(
        self, path: Path, *, check: Callable[[Manifest], None] | None = None
    ) -> Manifest | None:
        """The manifest of ``path`` if the store knows the file unchanged, reading none of it.

        Known: this store wrote it (``build``, see ``written.py``), or hashed it when
        it imported it before. ``check`` runs on the stored blobs of a file it has
        not been run on yet (a fresh build's), and is then remembered.
        """
        from photonpack.store.written import hashed_before, note_checked, written_digest

        if (digest := written_digest(self, path)) is not None:
            manifest = self._complete(digest)
            if (
                manifest is not None
                and check is not None
                and not written_digest(self, path, checked=True)
            ):
                check(manifest)
                with contextlib.suppress(OSError, StoreError):
                    note_checked(self, path)
            if manifest is not None:
                return manifest
        if (file_hex := hashed_before(self, path)) is not None:
            seen = self.root / "archives" / f"{file_hex}.json"
            return self._known_archive(seen, checked=check is not None)
        return None

    def _hash_archive_file(self, path: Path) -> str:
        """``path``'s sha256 hex: remembered when the file is unchanged since it was hashed."""
        from photonpack.errors import ArchiveError
        from photonpack.store.written import file_identity, hashed_before, note_hashed

        if (known := hashed_before(self, path)) is not None:
            return known
        before = file_identity(path)
        try:
            file_hex = sha256_file(path)[0]
        except OSError as exc:
            raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from exc
        with contextlib.suppress(OSError, StoreError):  # a read-only store hashes every time
            note_hashed(self, path, file_hex, before)
        return file_hex

    def _known_archive(self, seen: Path, *, checked: bool) -> Manifest | None:
        """The manifest of an archive file imported (and ``checked``) before, if all its
        blobs are still here."""
        try:
            record = json.loads(seen.read_bytes())
            if checked and record.get("checked") is not True:
                return None
            return self._complete(record["digest"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _complete(self, digest: str) -> Manifest | None:
        """The stored manifest ``digest``, if the store holds it and every blob it lists."""
        try:
            manifest = self.manifest(digest)
        except (ValueError, PhotonpackError):
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
        with store_errors(self.root, "write a blob"):
            atomic = AtomicFile(
                self.blob_dir / "sha256" / "new",
                temp_dir=self.tmp_dir(),
                prefix=temp_prefix("blob-"),
            )
            try:
                sha256, size = copy_hashed(source, atomic.file)
            except BaseException:
                atomic.abort()
                raise
            target = self.blob_path(sha256)
            if self._intact(target, sha256, size):
                atomic.abort()  # the same bytes, re-hashed: a warm build writes nothing
            else:  # also mends a same-named blob altered in place
                atomic.commit(target=target, sync_dir=False)
        return sha256, size

    def _intact(self, path: Path, sha256: str, size: int) -> bool:
        """Whether ``path`` holds exactly ``size`` bytes hashing to ``sha256`` (re-hashed)."""
        try:
            if path.stat().st_size != size:
                return False
            self._check_file(path, sha256, size)
        except (OSError, IntegrityError):
            return False
        return True

    def adopt_blob(self, path: Path, sha256: str, size: int, *, hashed: bool = False) -> Path:
        """Move a file on the store's filesystem (e.g. under ``tmp/``) in as a blob.

        Its bytes are checked first, unless ``hashed``: the caller wrote the file
        under this store's ``tmp/`` and hashed every byte as it wrote it (a
        download). A rename instead of a copy saves writing them twice.
        """
        if not hashed:
            self._check_file(path, sha256, size)
        final = self.blob_path(sha256)
        with store_errors(self.root, f"write blob {sha256}"):
            final.parent.mkdir(parents=True, exist_ok=True)
            path.replace(final)
        self.note_hashed(sha256)
        return final

    def add_blob_file(self, source: Path, sha256: str, size: int) -> Path:
        """Copy ``source`` into the store (verified); return the blob's path."""
        if not self.has_blob(sha256, size):
            with self.blob_writer(sha256, size) as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, CHUNK_SIZE)
        return self.blob_path(sha256)

    def _check_file(self, path: Path, sha256: str, size: int) -> None:
        found, actual = sha256_file(path)
        if actual != size or found != blob_name(sha256):
            raise IntegrityError(
                f"blob sha256:{sha256}: expected {size} bytes with that digest, "
                f"found {actual} bytes with sha256:{found}"
            )

    def note_hashed(self, sha256: str) -> None:
        """This process just put the blob in and hashed every byte of it on the way."""
        with contextlib.suppress(OSError):
            self._hashed_here[blob_name(sha256)] = _identity(self.blob_path(sha256))

    def verify_blob(self, sha256: str, size: int) -> bool:
        """Re-hash one stored blob; a corrupt one is removed so it can be restored.

        A blob this process put in (:meth:`note_hashed`) is not read again while
        its file is the same one, untouched (device, inode, size, mtime, ctime).
        """
        path = self.blob_path(sha256)
        known = self._hashed_here.get(blob_name(sha256))
        with contextlib.suppress(OSError):
            if known is not None and known == _identity(path) and known[2] == size:
                return True
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
        if Digest.of_bytes(data) != archive_digest(digest):
            raise IntegrityError(f"manifest bytes do not match {digest}")
        path = self._dir("manifests") / f"{archive_digest(digest).hex}.json"
        if not path.exists():
            self.write_atomic(path, data)

    def get_manifest_bytes(self, digest: str) -> bytes:
        self.hold()
        path = self.root / "manifests" / f"{archive_digest(digest).hex}.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{digest} is not in the store {self.root}") from None
        if Digest.of_bytes(data) != digest:
            raise IntegrityError(f"the stored manifest {path} does not match {digest}")
        return data

    def write_atomic(self, path: Path, data: bytes, *, sync: bool = True) -> None:
        """Write ``data`` to ``path`` (in the store) through a temp file and a rename.

        ``sync=False`` skips the fsyncs, for files a crash may lose but not tear.
        """
        self.hold(create=True)
        with store_errors(self.root, f"write {path.name}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data, sync=sync)


def _identity(path: Path) -> tuple[int, ...]:
    """What changes when a file is replaced or written to: device, inode, size, mtime, ctime."""
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
