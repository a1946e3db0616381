"""Photons as OCI artifacts: push, pull and list through any OCI registry.

The mapping (OCI image-spec 1.1, artifact guidance)::

    OCI image manifest   artifactType  application/vnd.photonpack.serving.photon.v1+json
    ├── config           photon.json, canonical bytes, so config.digest == the photon digest
    │                    mediaType application/vnd.photonpack.archive.manifest.v1+json
    └── layers           one per distinct blob, in the archive's order (sorted by sha256)
                         mediaType application/vnd.photonpack.blob.v1, annotated with
                         org.opencontainers.image.title = wheels/<file>, files/<path>
                         or runtime/<path>, so ORAS pulls produce meaningful files

The OCI manifest is a pure function of the photon manifest (no timestamps), so
pushing the same photon twice yields the same manifest digest, and wheels that
two photons share are stored once. A pull (:func:`fetch_photon`) re-hashes
every byte against the descriptors; ``admit.pull_reference`` keeps the blobs
in the store, from which ``pull`` writes the byte-identical ``.photon``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from photonpack._fs import Writeback
from photonpack._json import load_json_object
from photonpack.archive import ArchiveWriter
from photonpack.archive.manifest import Manifest, canonical_json
from photonpack.errors import IntegrityError, RegistryError
from photonpack.install.wheel import Wheel, inspect_wheel
from photonpack.oci.client import OCI_MANIFEST, ProgressFn, RegistryClient
from photonpack.oci.reference import Reference
from photonpack.oci.referrers import Attached, attach
from photonpack.policy import policy_problems, refuse

__all__ = [
    "ARTIFACT_TYPE",
    "CONFIG_MEDIA_TYPE",
    "LAYER_MEDIA_TYPE",
    "FetchedPhoton",
    "PushPlan",
    "PushResult",
    "RemoteManifest",
    "RemoteTag",
    "attach_sbom",
    "fetch_photon",
    "fetch_remote_manifest",
    "finish_push",
    "list_remote",
    "oci_manifest",
    "plan_push",
    "push_photon",
]

ARTIFACT_TYPE = "application/vnd.photonpack.serving.photon.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.photonpack.archive.manifest.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.photonpack.blob.v1"
TITLE = "org.opencontainers.image.title"
# photon.json holds the served OpenAPI document; generous, yet bounded.
MAX_CONFIG_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class PushResult:
    """What ``push`` did: the manifest digest to pin, and what actually moved."""

    reference: Reference
    manifest_digest: str
    photon_digest: str
    uploaded: tuple[str, ...]
    uploaded_bytes: int
    total_blobs: int
    total_bytes: int
    mounted: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FetchedPhoton:
    """A photon downloaded and verified: every blob at ``blob_path(hex)``."""

    manifest: Manifest
    manifest_digest: str
    blob_path: Callable[[str], Path]
    local: set[str] = field(default_factory=set)  # blobs taken from ``known``, not downloaded


@dataclass(frozen=True, kw_only=True)
class RemoteTag:
    tag: str
    manifest_digest: str
    photon_digest: str | None


def _titles(manifest: Manifest) -> dict[str, str]:
    """sha256 hex -> the one title its layer carries (wheels, files, runtime, sources, build)."""
    titles: dict[str, str] = {}
    for wheel in manifest.wheels:
        titles.setdefault(wheel.sha256, f"wheels/{wheel.filename}")
    for entry in manifest.files:
        titles.setdefault(entry.sha256, f"files/{entry.path}")
    for entry in manifest.runtime:
        titles.setdefault(entry.sha256, f"runtime/{entry.path}")
    for wheel in manifest.wheels:  # the sdist a wheel was built from
        if wheel.source is not None:
            titles.setdefault(wheel.source.sha256, f"sources/{wheel.source.filename}")
    for wheel in manifest.wheels:  # the wheels it was built with
        for build in wheel.source.build_wheels if wheel.source is not None else ():
            titles.setdefault(build.sha256, f"build/{build.filename}")
    return titles


def oci_manifest(manifest: Manifest) -> bytes:
    """The OCI image manifest for ``manifest``: canonical JSON, the same bytes every time."""
    titles = _titles(manifest)
    config = manifest.to_bytes()
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": manifest.digest,
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": f"sha256:{hex_}",
                "size": size,
                "annotations": {TITLE: titles[hex_]},
            }
            for hex_, size in manifest.blobs().items()
        ],
        "annotations": {TITLE: manifest.name},
    }
    return canonical_json(document)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(kw_only=True)
class PushPlan:
    """What a push must move: found by HEAD (and mount) requests before any blob is read."""

    manifest: Manifest
    reference: Reference
    body: bytes  # the OCI manifest
    digest: str  # its digest: what the tag will point at
    missing: dict[str, int]  # sha256 hex -> size: the blobs to upload
    config_missing: bool
    mounted: list[str] = field(default_factory=list)

    @property
    def titles(self) -> dict[str, str]:
        return _titles(self.manifest)


def plan_push(
    manifest: Manifest, ref: Reference, *, client: RegistryClient, mount_from: Sequence[str] = ()
) -> PushPlan:
    """Which blobs of ``manifest`` the registry lacks at ``ref``, once the others are mounted.

    A missing blob is first mounted from the repositories of ``mount_from`` on the
    same registry, in order; only a blob none of them holds is left to upload.
    """
    body = oci_manifest(manifest)
    digest = _sha256(body)
    if ref.digest and ref.digest != digest:
        raise RegistryError(
            f"{ref} names digest {ref.digest}, but this photon's OCI manifest is "
            f"{digest}; push by tag instead"
        )
    repo = ref.repository
    mounted: list[str] = []
    sources = [source for source in dict.fromkeys(mount_from) if source != repo]

    def present(digest: str) -> bool:
        if client.has_blob(repo, digest):
            return True
        for source in sources:
            if client.mount_blob(repo, digest, source):
                mounted.append(digest)
                return True
        return False

    config_missing = not present(manifest.digest)
    missing = {
        hex_: size for hex_, size in manifest.blobs().items() if not present(f"sha256:{hex_}")
    }
    return PushPlan(
        manifest=manifest, reference=ref, body=body, digest=digest, missing=missing,
        config_missing=config_missing, mounted=mounted,
    )  # fmt: skip


def finish_push(
    plan: PushPlan, *, client: RegistryClient, progress: ProgressFn | None = None
) -> PushResult:
    """photon.json, then the OCI manifest (the tag): called once every blob is up and verified."""
    manifest, ref = plan.manifest, plan.reference
    config = manifest.to_bytes()
    if plan.config_missing:
        client.upload_blob(
            ref.repository, digest=manifest.digest, size=len(config), stream=io.BytesIO(config),
            title="photon.json", progress=progress,
        )  # fmt: skip
    client.put_manifest(ref.repository, ref.tag or plan.digest, plan.body, OCI_MANIFEST)
    uploaded = [f"sha256:{hex_}" for hex_ in plan.missing]
    return PushResult(
        reference=ref,
        manifest_digest=plan.digest,
        photon_digest=manifest.digest,
        uploaded=(manifest.digest, *uploaded) if plan.config_missing else tuple(uploaded),
        mounted=tuple(plan.mounted),
        uploaded_bytes=sum(plan.missing.values()) + (len(config) if plan.config_missing else 0),
        total_blobs=len(manifest.blobs()) + 1,
        total_bytes=manifest.total_size + len(config),
    )


def push_photon(
    manifest: Manifest,
    blob_path: Callable[[str], Path],
    ref: Reference,
    *,
    client: RegistryClient,
    progress: ProgressFn | None = None,
    mount_from: Sequence[str] = (),
) -> PushResult:
    """Upload the blobs the registry lacks, then the manifest: a tag never points at less.

    Blobs are read from ``blob_path(hex)``; see :func:`plan_push` for mounts.
    """
    plan = plan_push(manifest, ref, client=client, mount_from=mount_from)
    titles = plan.titles
    for hex_, size in plan.missing.items():
        with _open_blob(blob_path, hex_) as stream:
            client.upload_blob(
                ref.repository, digest=f"sha256:{hex_}", size=size, stream=stream,
                title=titles[hex_], progress=progress,
            )  # fmt: skip
    return finish_push(plan, client=client, progress=progress)


@contextlib.contextmanager
def _open_blob(blob_path: Callable[[str], Path], hex_: str) -> Iterator[io.BufferedReader]:
    path = blob_path(hex_)
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise RegistryError(
            f"cannot read blob sha256:{hex_} at {path} to push it: {exc.strerror}"
        ) from exc
    with stream:
        yield stream


def _descriptor(value: object, where: str, ref: Reference) -> tuple[str, str, int]:
    """(mediaType, digest, size) of a descriptor, or a RegistryError naming ``where``."""
    if isinstance(value, dict):
        media, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
        if (
            isinstance(media, str)
            and isinstance(digest, str)
            and isinstance(size, int)
            and not isinstance(size, bool)
            and size >= 0
        ):
            return media, digest, size
    raise RegistryError(f"{ref}: the OCI manifest has a malformed descriptor at {where}")


def _parse_oci(body: bytes, ref: Reference) -> tuple[dict[str, Any], list[Any]]:
    try:
        document = load_json_object(body)
    except ValueError as exc:
        raise RegistryError(f"{ref}: the registry served a manifest that is {exc}") from exc
    config = document.get("config")
    layers = document.get("layers")
    media = config.get("mediaType") if isinstance(config, dict) else None
    if media != CONFIG_MEDIA_TYPE or not isinstance(layers, list):
        kind = document.get("artifactType") or media or document.get("mediaType") or "unknown"
        raise RegistryError(
            f"{ref} is not a photon (its artifact type is {kind}); "
            f"photonpack pulls artifacts of type {ARTIFACT_TYPE}"
        )
    return document, layers


def fetch_photon(
    ref: Reference,
    directory: Path,
    *,
    client: RegistryClient,
    progress: ProgressFn | None = None,
    known: Callable[[str, int], Path | None] | None = None,
    archive: Callable[[Manifest], BinaryIO] | None = None,
) -> FetchedPhoton:
    """Download the photon at ``ref`` into ``directory``; every byte checked before return.

    ``known(sha256_hex, size)`` may name a verified local copy of a blob (the
    store's), which is then not downloaded. The photon must pass the admission
    policy (:func:`photonpack.verify.enforce_policy`), as ``verify`` applies it.
    ``archive(manifest)`` opens a temp file that gets the photon's archive,
    written while the blobs download; only a verified photon's may be kept.
    """
    remote = fetch_remote_manifest(ref, client=client)
    manifest, manifest_digest = remote.manifest, remote.manifest_digest
    listed: dict[str, int] = {}
    for i, layer in enumerate(remote.layers):
        media, digest, size = _descriptor(layer, f"layers[{i}]", ref)
        if media != LAYER_MEDIA_TYPE or not digest.startswith("sha256:"):
            raise RegistryError(f"{ref}: layers[{i}] is not a photonpack blob ({media})")
        listed[digest.removeprefix("sha256:")] = size
    if listed != manifest.blobs():
        raise IntegrityError(
            f"{ref}: the OCI layers ({len(listed)} blobs) do not match the "
            f"{len(manifest.blobs())} blobs photon.json lists; refusing it, nothing was kept"
        )
    titles = _titles(manifest)
    local: dict[str, Path] = {}

    def blob_path(hex_: str) -> Path:
        return local.get(hex_) or directory / hex_

    target = None if archive is None else archive(manifest)
    writer = None if target is None else ArchiveWriter(target, manifest)
    with Writeback() as writeback, _Inspections(manifest, blob_path) as inspections:
        for hex_, size in manifest.blobs().items():  # the archive's order
            if known is not None and (have := known(hex_, size)) is not None:
                local[hex_] = have
                if writer is not None:
                    writer.add_file(hex_, have)
            else:
                with (directory / hex_).open("wb") as out:
                    client.fetch_blob(
                        ref.repository,
                        digest=f"sha256:{hex_}",
                        size=size,
                        out=out if writer is None else _Both(out, writer.add_stream(hex_)),
                        title=titles[hex_],
                        progress=progress,
                    )
                    # The caller flushes the downloads to disk at the end: the disk starts now.
                    out.flush()
                    writeback.start(out.fileno())
            if target is not None:
                target.flush()
                writeback.start(target.fileno())
            inspections.verified(hex_)
        if writer is not None:
            writer.close()
        inspections.enforce(str(ref))
    return FetchedPhoton(
        manifest=manifest, manifest_digest=manifest_digest, blob_path=blob_path, local=set(local)
    )


class _Inspections:
    """The admission policy of a photon whose blobs arrive one by one: each wheel is
    inspected (its zip directory and METADATA read) in a second thread as soon as it
    is verified, while the next downloads; ``enforce`` then applies the policy."""

    def __init__(self, manifest: Manifest, blob_path: Callable[[str], Path]) -> None:
        self._manifest, self._blob_path = manifest, blob_path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="photonpack-inspect")
        self._done: dict[tuple[str, str], Future[Wheel]] = {}

    def verified(self, hex_: str) -> None:
        """Blob ``hex_`` is whole and verified: inspect it if it is a wheel."""
        for wheel in self._manifest.wheels:
            if wheel.sha256 == hex_:
                key = (hex_, wheel.filename)
                self._done[key] = self._pool.submit(self._inspect, *key)

    def _inspect(self, hex_: str, filename: str) -> Wheel:
        wheel = inspect_wheel(self._blob_path(hex_), filename=filename)
        return dataclasses.replace(wheel, files=(), scripts=())  # a file list can be long

    def enforce(self, what: str) -> None:
        """Raise IntegrityError with every policy problem (see policy.enforce_policy)."""

        def inspect(hex_: str, filename: str) -> Wheel:
            done = self._done.get((hex_, filename))
            return done.result() if done is not None else self._inspect(hex_, filename)

        def read(hex_: str) -> bytes:
            return self._blob_path(hex_).read_bytes()

        refuse(what, policy_problems(self._manifest, read, inspect))

    def __enter__(self) -> _Inspections:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Both:
    """A download written to its scratch file and into the archive being written."""

    def __init__(self, first: BinaryIO, second: BinaryIO) -> None:
        self._first, self._second = first, second

    def write(self, data: bytes) -> None:
        self._first.write(data)
        self._second.write(data)


@dataclass(frozen=True, kw_only=True)
class RemoteManifest:
    """A photon's OCI manifest and its photon.json, fetched and checked, without its blobs."""

    manifest: Manifest
    manifest_digest: str
    manifest_size: int
    layers: list[Any]


def fetch_remote_manifest(ref: Reference, *, client: RegistryClient) -> RemoteManifest:
    """The OCI manifest at ``ref`` and the photon.json it names, both re-hashed (fast)."""
    media_type, body = client.get_manifest(ref.repository, ref.reference)
    manifest_digest = _sha256(body)
    if ref.digest and manifest_digest != ref.digest:
        raise IntegrityError(
            f"{ref}: the registry served a manifest hashing to {manifest_digest}, "
            f"not the {ref.digest} asked for; refusing it, nothing was kept"
        )
    if media_type and media_type != OCI_MANIFEST:
        raise RegistryError(
            f"{ref} is not a photon: the registry serves it as {media_type}, "
            f"expected an OCI image manifest ({OCI_MANIFEST})"
        )
    document, layers = _parse_oci(body, ref)
    _, config_digest, config_size = _descriptor(document["config"], "config", ref)
    if config_size > MAX_CONFIG_BYTES:
        raise RegistryError(
            f"{ref}: photon.json is listed as {config_size} bytes, over the "
            f"{MAX_CONFIG_BYTES}-byte limit; this is not a photon photonpack built"
        )
    config = io.BytesIO()
    client.fetch_blob(
        ref.repository, digest=config_digest, size=config_size, out=config, title="photon.json"
    )
    manifest = Manifest.from_bytes(config.getvalue())
    if manifest.digest != config_digest:
        raise IntegrityError(
            f"{ref}: photon.json is not in canonical form (it hashes to {config_digest}, "
            f"its canonical form to {manifest.digest}); refusing it"
        )
    return RemoteManifest(
        manifest=manifest,
        manifest_digest=manifest_digest,
        manifest_size=len(body),
        layers=layers,
    )


def attach_sbom(
    manifest: Manifest,
    blob_path: Callable[[str], Path],
    pushed: PushResult,
    *,
    client: RegistryClient,
    fmt: str = "cyclonedx",
) -> Attached:
    """Attach the photon's SBOM (``cyclonedx`` or ``spdx``) to its manifest, as a referrer."""
    from photonpack.sbom.document import MEDIA_TYPES, SUFFIXES, photon_sbom

    return attach(
        client,
        pushed.reference.repository,
        subject=pushed.manifest_digest,
        subject_size=len(oci_manifest(manifest)),
        artifact_type=MEDIA_TYPES[fmt],
        data=photon_sbom(manifest, blob_path, fmt),
        title=f"{manifest.name}{SUFFIXES[fmt]}",
    )


def list_remote(repository: str, *, client: RegistryClient) -> list[RemoteTag]:
    """Every tag of ``repository`` with the digest of its manifest (hashed here)."""
    result: list[RemoteTag] = []
    for tag in client.list_tags(repository):
        _, body = client.get_manifest(repository, tag)
        photon: str | None = None
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            config = json.loads(body).get("config") or {}
            if config.get("mediaType") == CONFIG_MEDIA_TYPE:
                photon = str(config.get("digest"))
        result.append(RemoteTag(tag=tag, manifest_digest=_sha256(body), photon_digest=photon))
    return result
