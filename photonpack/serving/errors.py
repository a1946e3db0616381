"""The root of photonpack's exception tree, and the errors the serving side raises.

It lives in the serving package because that package travels alone into a
photon's environment; :mod:`photonpack.errors` extends this tree and is where
the whole of it is drawn and documented.
"""

from __future__ import annotations

import traceback
from pathlib import Path

__all__ = [
    "ClientError",
    "FileContentError",
    "PhotonDefinitionError",
    "PhotonSourceError",
    "PhotonpackError",
    "ServeError",
    "failure_location",
]


class PhotonpackError(Exception):
    """Root of every error photonpack reports to a user."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PhotonDefinitionError(PhotonpackError, TypeError):
    """A Photon subclass declares an attribute or handler wrongly."""


class PhotonSourceError(PhotonpackError):
    """A photon's source cannot be found, parsed or imported."""


class ServeError(PhotonpackError):
    """A photon cannot be served."""


class FileContentError(PhotonpackError, ValueError):
    """File content that cannot be read: bad base64, an unreachable URL (a ``ValueError``)."""


class ClientError(PhotonpackError):
    """A call made by :class:`photonpack.Client` failed."""

    def __init__(self, message: str, *, status: int | None = None, detail: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def failure_location(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc`` outside photonpack: the user's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = str(Path(__file__).parent)  # the serving package
    user = [f for f in frames if "<frozen" not in f.filename and not f.filename.startswith(ours)]
    frame = (user or frames)[-1] if frames else None
    return f"{frame.filename}:{frame.lineno}" if frame else "unknown location"
