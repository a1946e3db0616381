"""A small image pushed to a real registry whose config names a ``User``, for deployments."""

from __future__ import annotations

import hashlib
import io
import json

from photonpack.oci.client import RegistryClient

CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
INDEX = "application/vnd.oci.image.index.v1+json"


def _put(client: RegistryClient, repository: str, data: bytes) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    client.upload_blob(repository, digest=digest, size=len(data), stream=io.BytesIO(data))
    return {"digest": digest, "size": len(data)}


def push_user_image(
    host: str, repository: str, user: str | None, *, architecture: str = "amd64"
) -> str:
    """Push a one-layer linux image running as ``user``; its ``HOST/REPO@sha256:...``."""
    layer = bytes(1024)  # an empty tar: two zero blocks
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"User": user} if user is not None else {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    with RegistryClient(host) as client:
        config_desc = _put(client, repository, json.dumps(config).encode())
        layer_desc = _put(client, repository, layer)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, **config_desc},
                "layers": [{"mediaType": LAYER, **layer_desc}],
            }
        ).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        client.put_manifest(repository, digest, manifest, MANIFEST)
    return f"{host}/{repository}@{digest}"


def push_user_index(host: str, repository: str, users: dict[str, str]) -> str:
    """An image index of one image per architecture (``{"amd64": "1000:1000"}``); its ref."""
    entries = []
    with RegistryClient(host) as client:
        for architecture, user in users.items():
            ref = push_user_image(host, repository, user, architecture=architecture)
            digest = ref.partition("@")[2]
            _type, body = client.get_manifest(repository, digest)
            entries.append(
                {"mediaType": MANIFEST, "digest": digest, "size": len(body),
                 "platform": {"os": "linux", "architecture": architecture}}
            )  # fmt: skip
        index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
        digest = "sha256:" + hashlib.sha256(index).hexdigest()
        client.put_manifest(repository, digest, index, INDEX)
    return f"{host}/{repository}@{digest}"
