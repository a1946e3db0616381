"""The errors of deployments: one class, exit 1, a complete one-line message."""

from __future__ import annotations

from photonpack.errors import PhotonpackError

__all__ = ["DeployError"]


class DeployError(PhotonpackError):
    """A deployment cannot be rendered, applied, found, inspected or removed."""
