"""The user an image runs as, for ``runAsUser``/``runAsGroup`` of a deployment given ``--image``.

photonpack's own images say ``User: "1000:1000"`` (``lepton``). An image made
elsewhere says what it says: the deployment runs it as that uid, since
``runAsNonRoot`` needs a number and a forced uid may own none of its files.
The podman engine reads the config from podman's storage; the Kubernetes
engine does not read it yet (it runs such an image as uid 1000, as before).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from photonpack.deploy.errors import DeployError

__all__ = ["run_as"]


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
