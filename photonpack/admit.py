"""Admission: an archive, a store name or a registry reference becomes a verified photon.

The photon ends in the store. This is the one door into it for something to run, push, turn into an
image or deploy. Whatever the source, the photon passes the same checks
``photonpack verify`` makes (:func:`photonpack.verify.enforce_policy`) before
its manifest is kept, and a digest the caller pins (``--digest``,
``REF@sha256:…``) must be the photon's. The fast path: an archive file whose
bytes were admitted before is recognised by its hash and not unpacked again;
a registry pull downloads only the blobs the store lacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from photonpack._digest import Digest
from photonpack._fs import atomic_write, sync_filesystem
from photonpack.archive import read_manifest, unpack
from photonpack.archive.manifest import Manifest
from photonpack.archive.sinks import BlobWriter, DirectorySink
from photonpack.errors import ArchiveError, IntegrityError, StoreError, UsageError
from photonpack.oci.client import ProgressFn, RegistryClient
from photonpack.oci.reference import Reference, parse_reference
from photonpack.oci.referrers import Attached
from photonpack.oci.upload import UploadQueue
from photonpack.policy import refuse
from photonpack.registry import (
    PushPlan,
    PushResult,
    attach_sbom,
    fetch_photon,
    finish_push,
    plan_push,
    push_photon,
)
from photonpack.store import Store
from photonpack.store.names import store_errors
from photonpack.store.written import file_identity, note_verified, verified_digest
from photonpack.verify import PolicySink, enforce_policy

__all__ = [
    "ClientFactory",
    "Pulled",
    "Pushed",
    "admit",
    "admit_archive",
    "admit_name",
    "admit_reference",
    "is_archive_path",
    "parse_expected",
    "pull_reference",
    "push_archive",
]

# Opens a client for a registry host (with the user's credentials): the CLI's to decide.
ClientFactory = Callable[[str], AbstractContextManager[RegistryClient]]


def parse_expected(text: str | None) -> Digest | None:
    """A ``--digest`` value, or a :class:`UsageError` saying what one looks like."""
    if text is None:
        return None
    try:
        return Digest(text)
    except ValueError:
        raise UsageError(
            f"--digest {text!r} is not a digest: expected sha256:<64 hex digits>, "
            "as 'photonpack build' and 'photonpack verify' print it"
        ) from None


def is_archive_path(text: str) -> bool:
    """Whether a positional argument names an archive file rather than a registry reference."""
    return Path(text).exists() or text.endswith(".photon") or "/" not in text


def admit(
    source: str,
    store: Store,
    *,
    expected: Digest | None = None,
    clients: ClientFactory | None = None,
) -> Manifest:
    """``ARCHIVE`` or ``REF`` (as ``run``, ``push`` and ``image`` take them), admitted."""
    if is_archive_path(source):
        return admit_archive(Path(source), store, expected=expected)
    reference = parse_reference(source)
    opener: ClientFactory = clients or RegistryClient
    with opener(reference.registry) as client:
        return admit_reference(reference, store, client=client, expected=expected)


def admit_archive(path: Path, store: Store, *, expected: Digest | None = None) -> Manifest:
    """A ``.photon`` file, streamed once into ``store`` with every blob re-hashed."""
    if not path.is_file():
        raise ArchiveError(f"{path} does not exist or is not a file; pass a .photon file")
    if expected is not None:
        _expect(read_manifest(path).digest, expected, str(path))

    def check(manifest: Manifest) -> None:
        enforce_policy(manifest, store.blob_path, str(path))

    manifest = store.import_archive(path, check=check)
    if expected is not None:
        _expect(manifest.digest, expected, str(path))
    return manifest


def admit_name(name: str, store: Store, *, expected: Digest | None = None) -> Manifest:
    """A photon the store already holds under ``name`` (admitted when it was created)."""
    manifest = store.manifest(store.refs.get(name).digest)
    if expected is not None:
        _expect(manifest.digest, expected, f"the photon named {name}")
    return manifest


def push_archive(
    path: Path,
    reference: Reference,
    store: Store,
    *,
    client: RegistryClient,
    expected: Digest | None = None,
    mount_from: tuple[str, ...] | list[str] = (),
    progress: ProgressFn | None = None,
    sbom: str | None = None,
) -> Pushed:
    """``push X.photon REF``: the file verified and its missing blobs uploaded in one read.

    A file the store knows (``build`` wrote it, or it was admitted before) is
    pushed from the store's blobs and not read at all. Otherwise the registry
    is asked first which blobs it lacks (the manifest is the archive's first
    member), then the archive streams once through the reader: each blob is
    hashed while it goes up; an upload is finished (its final PUT names the
    digest, so the registry checks it too) only once the blob's hash matched.
    The admission policy reads every wheel's zip directory: each wheel the
    store lacks is also written to a scratch file, inspected once its hash
    matched and deleted at once (so the wheels never pile up on disk, nor reach
    it); with ``sbom``, every blob the store lacks is kept in scratch until the
    SBOM is read. The store is left as it was: a push moves a photon, ``run`` admits
    it. The tag is written last, after every check passed; then the SBOM
    (format ``sbom``, read from the same blobs) is attached, if asked. The
    file is remembered as verified (``store/written.py``): pushed again,
    unchanged, to a registry that holds its blobs, it is not read again.
    """
    if not path.is_file():
        raise ArchiveError(f"{path} does not exist or is not a file; pass a .photon file")
    store.hold()

    def check(manifest: Manifest) -> None:
        enforce_policy(manifest, store.blob_path, str(path))

    known = store.known_archive(path, check=check)
    manifest = known or read_manifest(path)
    if expected is not None:
        _expect(manifest.digest, expected, str(path))
    if known is not None:
        pushed = push_photon(
            manifest, store.blob_path, reference, client=client, progress=progress,
            mount_from=mount_from,
        )  # fmt: skip
        return Pushed.attach(manifest, store.blob_path, pushed, client=client, sbom=sbom)
    plan = plan_push(manifest, reference, client=client, mount_from=mount_from)
    if not plan.missing and sbom is None and verified_digest(store, path) == manifest.digest:
        # The registry holds every blob, and this very file was verified as this photon.
        return Pushed(manifest=manifest, result=finish_push(plan, client=client), attached=None)
    before = file_identity(path)
    with (
        store.temp_dir("push-") as scratch,
        UploadQueue(client, reference.repository, progress) as uploads,
    ):
        # An SBOM is read from every blob: they are kept for it. Else the policy's sink
        # takes what the policy reads (each wheel inspected, then dropped) on the way.
        keep = PolicySink(manifest, scratch) if sbom is None else DirectorySink(scratch, sync=False)
        sink = _PushSink(store, keep, uploads, plan)
        unpacked = unpack(path, sink)
        if unpacked.digest != manifest.digest:  # pragma: no cover - the same first member
            raise IntegrityError(f"{path} changed while it was pushed; push it again")
        uploads.close()  # every upload finished: the registry checked each digest too
        if isinstance(keep, PolicySink):
            refuse(str(path), keep.problems(unpacked, stored=sink.stored))
        else:
            enforce_policy(unpacked, sink.blob_path, str(path))
        pushed = finish_push(plan, client=client, progress=progress)
        with contextlib.suppress(OSError, StoreError):  # a read-only store verifies every time
            note_verified(store, path, unpacked.digest, before)
        return Pushed.attach(unpacked, sink.blob_path, pushed, client=client, sbom=sbom)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pushed:
    """A photon pushed: its manifest, what moved, and the SBOM attached (if any)."""

    manifest: Manifest
    result: PushResult
    attached: Attached | None

    @classmethod
    def attach(
        cls,
        manifest: Manifest,
        blob_path: Callable[[str], Path],
        result: PushResult,
        *,
        client: RegistryClient,
        sbom: str | None,
    ) -> Pushed:
        """``result``, with the photon's SBOM (format ``sbom``) attached when one is asked."""
        attached = None
        if sbom is not None:
            attached = attach_sbom(manifest, blob_path, result, client=client, fmt=sbom)
        return cls(manifest=manifest, result=result, attached=attached)


class _PushSink:
    """Each blob of the archive to the registry if it lacks it, and to ``keep`` if the
    store lacks it and ``keep`` wants it: the policy's sink, or a scratch directory (no
    fsync) that an SBOM reads, removed after."""

    def __init__(
        self,
        store: Store,
        keep: PolicySink | DirectorySink,
        uploads: UploadQueue,
        plan: PushPlan,
    ) -> None:
        self._store, self._keep, self._uploads = store, keep, uploads
        self._missing, self._titles = plan.missing, plan.titles

    def _kept(self, sha256: str, size: int | None = None) -> bool:
        return self._store.has_blob(sha256, size) or self._keep.has(sha256)

    def has(self, sha256: str) -> bool:
        return sha256 not in self._missing and self._kept(sha256)

    def open(self, sha256: str, size: int) -> BlobWriter:
        writers: list[BlobWriter] = []
        if not self._kept(sha256, size):
            writers.append(self._keep.open(sha256, size))
        if sha256 in self._missing:
            writers.append(self._uploads.open(f"sha256:{sha256}", size, self._titles[sha256]))
        return _Tee(writers)

    def stored(self, sha256: str) -> Path | None:
        """The store's verified copy of a blob, if it holds one."""
        return self._store.blob_path(sha256) if self._store.has_blob(sha256) else None

    def blob_path(self, sha256: str) -> Path:
        """Where an SBOM reads a verified blob: the store's copy, else the scratch one."""
        assert isinstance(self._keep, DirectorySink)
        return self.stored(sha256) or self._keep.root / sha256


class _Tee:
    """One blob's bytes to several writers; the verdict to each of them."""

    def __init__(self, writers: list[BlobWriter]) -> None:
        self._writers = writers

    def write(self, data: bytes | memoryview) -> None:
        for writer in self._writers:
            writer.write(data)

    def commit(self) -> None:
        for writer in self._writers:
            writer.commit()

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pulled:
    """A photon from a registry, now in the store, and what had to be downloaded for it."""

    manifest: Manifest
    manifest_digest: str  # the OCI manifest's, to pin the reference by
    downloaded_blobs: int
    downloaded_bytes: int

    def to_dict(self) -> dict[str, int]:
        """What moved, counting photon.json (always fetched) as ``push`` counts it."""
        blobs, config = self.manifest.blobs(), len(self.manifest.to_bytes())
        return {
            "downloaded_blobs": self.downloaded_blobs + 1,
            "downloaded_bytes": self.downloaded_bytes + config,
            "total_blobs": len(blobs) + 1,
            "total_bytes": sum(blobs.values()) + config,
        }


def admit_reference(
    reference: Reference,
    store: Store,
    *,
    client: RegistryClient,
    expected: Digest | None = None,
) -> Manifest:
    """A photon from a registry; only the blobs ``store`` lacks are downloaded."""
    return pull_reference(reference, store, client=client, expected=expected).manifest


def pull_reference(
    reference: Reference,
    store: Store,
    *,
    client: RegistryClient,
    expected: Digest | None = None,
    progress: ProgressFn | None = None,
    output: Callable[[Manifest], Path] | None = None,
) -> Pulled:
    """Download the blobs of ``reference`` that ``store`` lacks, verified, into the store.

    A sibling of a photon already here (same wheels, new code) costs only its
    own few blobs. ``progress`` follows each blob's download. ``output(manifest)``
    names a ``.photon`` file to write too, while the blobs download (no second
    pass): it is a temp file until every byte was verified, then renamed; on
    any failure nothing is left at that path.
    """

    def known(hex_: str, size: int) -> Path | None:
        return store.blob_path(hex_) if store.has_blob(hex_, size) else None

    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(store.temp_dir("pull-"))
        archive = None
        if output is not None:

            def archive(manifest: Manifest) -> BinaryIO:
                path = output(manifest)
                return stack.enter_context(_archive_file(path))

        fetched = fetch_photon(
            reference, scratch, client=client, known=known, progress=progress, archive=archive
        )
        manifest = fetched.manifest
        if expected is not None:
            _expect(manifest.digest, expected, str(reference))
        downloaded = {
            hex_: size for hex_, size in manifest.blobs().items() if hex_ not in fetched.local
        }
        for hex_, size in downloaded.items():
            # fetch_photon hashed each blob as it wrote it into our scratch directory.
            store.adopt_blob(fetched.blob_path(hex_), hex_, size, hashed=True)
        if downloaded:
            # On disk before the manifest names them: a power cut must not leave a known
            # photon whose blobs are empty files (an import fsyncs each blob it writes; a
            # pull's downloads are flushed together, with one syncfs).
            with store_errors(store.root, "flush the downloaded blobs to disk"):
                sync_filesystem(store.root)
        store.put_manifest(manifest.digest, manifest.to_bytes())
    return Pulled(
        manifest=manifest,
        manifest_digest=fetched.manifest_digest,
        downloaded_blobs=len(downloaded),
        downloaded_bytes=sum(downloaded.values()),
    )


@contextlib.contextmanager
def _archive_file(path: Path) -> Iterator[BinaryIO]:
    """A temp file beside ``path``, renamed to it on success (a failure leaves no file)."""
    try:
        with atomic_write(path) as out:
            yield out
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _expect(found: str, expected: Digest, what: str) -> None:
    if found != expected:
        raise IntegrityError(
            f"{what} is the photon {found}, not the {expected} asked for; refusing it"
        )
