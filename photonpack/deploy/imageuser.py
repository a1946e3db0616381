"""The user an image runs as, for ``runAsUser``/``runAsGroup`` of a deployment given ``--image``.

photonpack's own images say ``User: "1000:1000"`` (``lepton``). An image made
elsewhere says what it says: the deployment runs it as that uid, since
``runAsNonRoot`` needs a number and a forced uid may own none of its files.
The podman engine reads the config from podman's storage; the Kubernetes
engine reads it from the image's registry (manifest by digest, then the config
blob, verified), as the cluster will pull it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

from photonpack.deploy.errors import DeployError
from photonpack.oci.client import RegistryClient

__all__ = ["registry_image_config", "run_as"]

_INDEXES = ("application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json")  # fmt: skip
_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        *_INDEXES,
    )
)
MAX_CONFIG_BYTES = 4 << 20  # an image config is a few KiB; refuse to read a runaway one


def run_as(config: Mapping[str, Any], image: str) -> tuple[int, int | None]:
    """(uid, gid or None when the image names none) from an image config's ``User``."""
    user = str((config.get("config") or {}).get("User") or "").strip()
    fix = "give the image a non-root numeric USER (for example USER 1000:1000) and push it again"
    if not user:
        raise DeployError(
            f"{image} runs as root (its config names no User) and deployments run non-root; {fix}"
        )
    uid_text, _, gid_text = user.partition(":")
    if not uid_text.isdigit() or (gid_text and not gid_text.isdigit()):
        raise DeployError(
            f"{image} runs as user {user!r}, a name: runAsNonRoot needs a numeric uid, and "
            f"the name is only known inside the image's /etc/passwd; {fix}"
        )
    if int(uid_text) == 0:
        raise DeployError(
            f"{image} runs as root (User {user!r}) and deployments run non-root; {fix}"
        )
    return int(uid_text), int(gid_text) if gid_text else None


def registry_image_config(
    client: RegistryClient, repository: str, digest: str, architecture: str
) -> dict[str, Any]:
    """The config of ``repository@digest`` (the linux/``architecture`` one of an index)."""
    media_type, body = client.get_manifest(repository, digest, accept=_ACCEPT)
    manifest = _json(body, f"{client.registry}/{repository}@{digest}")
    if media_type in _INDEXES or "manifests" in manifest:
        from photonpack.image.base import choose_platform

        chosen = choose_platform(manifest, architecture, f"{repository}@{digest}")
        _type, body = client.get_manifest(repository, str(chosen.get("digest")), accept=_ACCEPT)
        manifest = _json(body, f"{client.registry}/{repository}@{chosen.get('digest')}")
    config = manifest.get("config") or {}
    size = config.get("size")
    if not isinstance(size, int) or not 0 < size <= MAX_CONFIG_BYTES:
        raise DeployError(
            f"{client.registry}/{repository}@{digest} lists a config of size {size!r}, "
            "not an image config; check the image reference"
        )
    out = io.BytesIO()
    client.fetch_blob(repository, digest=str(config.get("digest")), size=size, out=out)
    return _json(out.getvalue(), f"the config of {repository}@{digest}")


def _json(body: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise DeployError(f"{where} is not an OCI image manifest or config (not a JSON object)")
    return value
