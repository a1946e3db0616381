"""The serving stack that is locked, hashed and shipped with every photon.

Standard library only: ``photonpack lock`` reads this without importing FastAPI.
"""

from __future__ import annotations

__all__ = ["SERVING_REQUIREMENTS"]

# uvloop and httptools are uvicorn's fast event loop and HTTP parser; without
# them a photon serves at about half the requests/s of a tuned FastAPI app.
SERVING_REQUIREMENTS: tuple[str, ...] = (
    "fastapi>=0.110",
    "uvicorn>=0.29",
    "pydantic>=2.6",
    "python-multipart>=0.0.9",
    "uvloop>=0.19; sys_platform != 'win32' and platform_python_implementation == 'CPython'",
    "httptools>=0.6",
)
