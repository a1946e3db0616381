"""photonpack: reproducible, verifiable, offline-deployable Python photons.

The public names are resolved lazily so that ``import photonpack.lock`` (and
the commands built on it) never pay for importing FastAPI or uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from photonpack.__about__ import __version__

if TYPE_CHECKING:
    from photonpack.errors import PhotonpackError

__all__ = [
    "PhotonpackError",
    "__version__",
]

# name -> module that defines it; extended as the public API grows.
_LAZY: dict[str, str] = {
    "PhotonpackError": "photonpack.errors",
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
