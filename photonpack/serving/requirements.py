"""The serving stack that is locked, hashed and shipped with every photon.

Standard library only: ``photonpack lock`` reads this without importing FastAPI.
"""

from __future__ import annotations

__all__ = ["LEPTON_REQUIREMENTS", "SERVING_REQUIREMENTS"]

# uvloop and httptools are uvicorn's fast event loop and HTTP parser; without
# them a photon serves at about half the requests/s of a tuned FastAPI app.
SERVING_REQUIREMENTS: tuple[str, ...] = (
    "fastapi>=0.110",
    "uvicorn>=0.29",
    "pydantic>=2.6",
    "python-multipart>=0.0.9",
    "uvloop>=0.19; sys_platform != 'win32' and platform_python_implementation == 'CPython'",
    "httptools>=0.6",
    # Swagger UI's and ReDoc's bundles, so /docs and /redoc render with no network
    # (photonpack/serving/docs.py). MIT; its only dependency is fastapi.
    "fastapi-offline>=1.7.7",
)

# What Lepton's runtime image gave every photon besides the serving stack: the
# dependencies of the leptonai 0.27.3 package that a photon can import (its
# cluster and UI extras, ray and ledoc-ui, left out). Photons written for
# Lepton used them without declaring them, so they are locked for a photon whose
# source imports leptonai, unless it sets ``lepton_dependencies = False``.
LEPTON_REQUIREMENTS: tuple[str, ...] = (
    "click",
    "cloudpickle",
    "httpx",
    "huggingface_hub",
    "loguru",
    "pillow",
    "pyyaml",
    "requests",
    "rich",
)
