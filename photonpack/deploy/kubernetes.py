"""The Kubernetes API engine (server-side apply): not written yet."""

from __future__ import annotations

from typing import Any

from photonpack.deploy.errors import DeployError

__all__ = ["KubernetesEngine"]


class KubernetesEngine:
    """Deployments on a cluster through its API."""

    @classmethod
    def from_kubeconfig(cls, *, context: str | None = None) -> Any:
        """The engine for the kubeconfig's ``context``."""
        raise DeployError("--engine kubernetes is not available yet; use --engine podman")
