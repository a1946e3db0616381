"""Referrers (OCI 1.1): artifacts such as an SBOM attached to a pushed manifest by ``subject``.

An artifact is an OCI image manifest with an ``artifactType``, the empty config
``{}``, its files as layers, and ``subject`` naming the manifest it is about.
Registries with the referrers API (``GET /v2/<repo>/referrers/<digest>``) index
it themselves, and say so with ``OCI-Subject`` when it is pushed. For the others
the distribution spec's fallback applies: an image index tagged
``sha256-<hex>`` lists the referrers of ``sha256:<hex>``, and the pusher keeps
it up to date. Listing reads the API, else that tag. Everything fetched is
re-hashed against its descriptor.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from photonpack.errors import IntegrityError, RegistryError
from photonpack.oci.client import OCI_INDEX, OCI_MANIFEST, RegistryClient

__all__ = [
    "EMPTY_CONFIG",
    "Attached",
    "Referrer",
    "attach",
    "fetch_referrer",
    "list_referrers",
    "referrer_manifest",
]

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
TITLE = "org.opencontainers.image.title"
# An attached artifact (an SBOM, a signature) is a document, not a payload.
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Referrer:
    """One referrer of a manifest, as the referrers index describes it."""

    digest: str
    size: int
    artifact_type: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size": self.size,
            "artifact_type": self.artifact_type,
            "annotations": dict(self.annotations),
        }


@dataclass(frozen=True, kw_only=True)
class Attached:
    """What ``attach`` pushed: the artifact's manifest, and how the registry indexes it."""

    referrer: Referrer
    indexed_by: str  # "referrers API" or the fallback tag "sha256-<hex>"


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same bytes (and digest) every time."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def referrer_manifest(
    *, subject: str, subject_size: int, artifact_type: str, data: bytes, title: str
) -> bytes:
    """The artifact manifest of one file about ``subject``: canonical JSON, no timestamp."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": _sha256(EMPTY_CONFIG),
            "size": len(EMPTY_CONFIG),
            "data": "e30=",
        },
        "layers": [
            {
                "mediaType": artifact_type,
                "digest": _sha256(data),
                "size": len(data),
                "annotations": {TITLE: title},
            }
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size},
        "annotations": {TITLE: title},
    }
    return canonical_json(document)


def attach(
    client: RegistryClient,
    repository: str,
    *,
    subject: str,
    subject_size: int,
    artifact_type: str,
    data: bytes,
    title: str,
) -> Attached:
    """Push ``data`` as a referrer of ``subject`` (already in ``repository``)."""
    for blob in (EMPTY_CONFIG, data):
        digest = _sha256(blob)
        if not client.has_blob(repository, digest):
            client.upload_blob(
                repository, digest=digest, size=len(blob), stream=io.BytesIO(blob), title=title
            )
    body = referrer_manifest(
        subject=subject,
        subject_size=subject_size,
        artifact_type=artifact_type,
        data=data,
        title=title,
    )
    referrer = Referrer(
        digest=_sha256(body),
        size=len(body),
        artifact_type=artifact_type,
        annotations={TITLE: title},
    )
    headers = client.put_manifest(repository, referrer.digest, body, OCI_MANIFEST)
    if headers.get("oci-subject") == subject:
        return Attached(referrer=referrer, indexed_by="referrers API")
    tag = _fallback_tag(subject)
    found = client.find_manifest(repository, tag, accept=OCI_INDEX)
    index = _index(found[1], f"{repository}:{tag}") if found else _empty_index()
    entries = [m for m in index["manifests"] if m.get("digest") != referrer.digest]
    index["manifests"] = [*entries, _descriptor(referrer)]
    client.put_manifest(repository, tag, canonical_json(index), OCI_INDEX)
    return Attached(referrer=referrer, indexed_by=tag)


def list_referrers(
    client: RegistryClient, repository: str, subject: str, *, artifact_type: str | None = None
) -> list[Referrer]:
    """The referrers of ``subject``: from the referrers API, else the fallback tag."""
    body = client.get_referrers(repository, subject)
    where = f"the referrers of {repository}@{subject}"
    if body is None:
        found = client.find_manifest(repository, _fallback_tag(subject), accept=OCI_INDEX)
        if found is None:
            return []
        body, where = found[1], f"{repository}:{_fallback_tag(subject)}"
    referrers = [_referrer(entry, where) for entry in _index(body, where)["manifests"]]
    if artifact_type is not None:
        referrers = [r for r in referrers if r.artifact_type == artifact_type]
    return sorted(referrers, key=lambda r: (r.artifact_type, r.digest))


def fetch_referrer(
    client: RegistryClient, repository: str, referrer: Referrer
) -> list[tuple[str, bytes]]:
    """The files of ``referrer``: (title, bytes) of each layer, every byte re-hashed."""
    _, body = client.get_manifest(repository, referrer.digest)
    if _sha256(body) != referrer.digest:
        raise IntegrityError(
            f"{client.registry}/{repository} served a manifest hashing to {_sha256(body)} for "
            f"the referrer {referrer.digest}; refusing it"
        )
    where = f"the referrer {referrer.digest}"
    try:
        layers = json.loads(body)["layers"]
        files = []
        for i, layer in enumerate(layers):
            digest, size = str(layer["digest"]), int(layer["size"])
            title = str((layer.get("annotations") or {}).get(TITLE) or f"layer-{i}")
            if size > MAX_ARTIFACT_BYTES:
                raise RegistryError(
                    f"{where} lists a {size}-byte file, over the {MAX_ARTIFACT_BYTES}-byte "
                    "limit for attached artifacts; refusing it"
                )
            out = io.BytesIO()
            client.fetch_blob(repository, digest=digest, size=size, out=out, title=title)
            files.append((title, out.getvalue()))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RegistryError(f"{where} is not an OCI image manifest with layers") from exc
    return files


def _fallback_tag(subject: str) -> str:
    algorithm, _, hex_ = subject.partition(":")
    return f"{algorithm}-{hex_}"


def _empty_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def _index(body: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"{where} is not JSON; expected an OCI image index") from exc
    if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
        raise RegistryError(f"{where} is not an OCI image index (no manifests list)")
    return document


def _descriptor(referrer: Referrer) -> dict[str, Any]:
    return {
        "mediaType": OCI_MANIFEST,
        "digest": referrer.digest,
        "size": referrer.size,
        "artifactType": referrer.artifact_type,
        "annotations": dict(referrer.annotations),
    }


def _referrer(entry: object, where: str) -> Referrer:
    if isinstance(entry, dict):
        digest, size = entry.get("digest"), entry.get("size")
        annotations = entry.get("annotations") or {}
        if isinstance(digest, str) and isinstance(size, int) and isinstance(annotations, dict):
            return Referrer(
                digest=digest,
                size=size,
                artifact_type=str(entry.get("artifactType") or ""),
                annotations={str(k): str(v) for k, v in annotations.items()},
            )
    raise RegistryError(f"{where} lists a malformed descriptor")
