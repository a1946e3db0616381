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

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from photonpack._digest import Digest
from photonpack.archive import read_manifest
from photonpack.archive.manifest import Manifest
from photonpack.errors import ArchiveError, IntegrityError, UsageError
from photonpack.oci.client import ProgressFn, RegistryClient
from photonpack.oci.reference import Reference, parse_reference
from photonpack.registry import fetch_photon
from photonpack.store import Store
from photonpack.verify import enforce_policy

__all__ = [
    "ClientFactory",
    "Pulled",
    "admit",
    "admit_archive",
    "admit_name",
    "admit_reference",
    "is_archive_path",
    "parse_expected",
    "pull_reference",
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
) -> Pulled:
    """Download the blobs of ``reference`` that ``store`` lacks, verified, into the store.

    A sibling of a photon already here (same wheels, new code) costs only its
    own few blobs. ``progress`` follows each blob's download.
    """

    def known(hex_: str, size: int) -> Path | None:
        return store.blob_path(hex_) if store.has_blob(hex_, size) else None

    with store.temp_dir("pull-") as scratch:
        fetched = fetch_photon(reference, scratch, client=client, known=known, progress=progress)
        manifest = fetched.manifest
        if expected is not None:
            _expect(manifest.digest, expected, str(reference))
        downloaded = {
            hex_: size for hex_, size in manifest.blobs().items() if hex_ not in fetched.local
        }
        for hex_, size in downloaded.items():
            store.adopt_blob(fetched.blob_path(hex_), hex_, size)
        store.put_manifest(manifest.digest, manifest.to_bytes())
    return Pulled(
        manifest=manifest,
        manifest_digest=fetched.manifest_digest,
        downloaded_blobs=len(downloaded),
        downloaded_bytes=sum(downloaded.values()),
    )


def _expect(found: str, expected: Digest, what: str) -> None:
    if found != expected:
        raise IntegrityError(
            f"{what} is the photon {found}, not the {expected} asked for; refusing it"
        )
