"""photonpack: reproducible, verifiable, offline-deployable Python photons.

The public names are resolved lazily so that ``import photonpack.lock`` (and
the commands built on it) never pay for importing FastAPI or uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from photonpack.__about__ import __version__

if TYPE_CHECKING:
    from photonpack.client import Client, local
    from photonpack.errors import PhotonpackError
    from photonpack.photon import (
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
    "PhotonpackError": "photonpack.errors",
    "Client": "photonpack.client",
    "local": "photonpack.client",
    "File": "photonpack.photon",
    "HTTPException": "photonpack.photon",
    "JPEGResponse": "photonpack.photon",
    "PNGResponse": "photonpack.photon",
    "Photon": "photonpack.photon",
    "StreamingResponse": "photonpack.photon",
    "WAVResponse": "photonpack.photon",
    "handler": "photonpack.photon",
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
