"""photonpack: reproducible, verifiable, offline-deployable Python photons.

The public names are resolved lazily so that ``import photonpack.lock.lockfile`` (and
the commands built on it) never pay for importing FastAPI or uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from photonpack.__about__ import __version__

if TYPE_CHECKING:
    from photonpack.serving.client import Client, local
    from photonpack.serving.client_errors import (
        ClientConnectionError,
        ClientHTTPError,
        ClientTimeoutError,
    )
    from photonpack.serving.errors import ClientError, PhotonpackError
    from photonpack.serving.photon import (
        File,
        HTTPException,
        JPEGResponse,
        Photon,
        PNGResponse,
        StreamingResponse,
        WAVResponse,
        handler,
    )

__all__ = [
    "Client",
    "ClientConnectionError",
    "ClientError",
    "ClientHTTPError",
    "ClientTimeoutError",
    "File",
    "HTTPException",
    "JPEGResponse",
    "PNGResponse",
    "Photon",
    "PhotonpackError",
    "StreamingResponse",
    "WAVResponse",
    "__version__",
    "handler",
    "local",
]

# name -> module that defines it; extended as the public API grows.
_LAZY: dict[str, str] = {
    "PhotonpackError": "photonpack.serving.errors",
    "ClientError": "photonpack.serving.errors",
    "ClientConnectionError": "photonpack.serving.client_errors",
    "ClientHTTPError": "photonpack.serving.client_errors",
    "ClientTimeoutError": "photonpack.serving.client_errors",
    "Client": "photonpack.serving.client",
    "local": "photonpack.serving.client",
    "File": "photonpack.serving.photon",
    "HTTPException": "photonpack.serving.photon",
    "JPEGResponse": "photonpack.serving.photon",
    "PNGResponse": "photonpack.serving.photon",
    "Photon": "photonpack.serving.photon",
    "StreamingResponse": "photonpack.serving.photon",
    "WAVResponse": "photonpack.serving.photon",
    "handler": "photonpack.serving.photon",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'photonpack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
