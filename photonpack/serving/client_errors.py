"""The errors :class:`~photonpack.serving.client.Client` raises, shaped like Lepton's.

Every one is a :class:`ClientError` (so a :class:`PhotonpackError`), and also
an instance of what Lepton's client raised in the same case, so that code
written for it keeps catching them::

    ClientError
    ├── ClientURLError          ValueError       not an http(s) URL (Lepton: unknown workspace)
    ├── ClientWorkspaceError    RuntimeError     ``current()``: photonpack has no workspaces
    ├── ClientArgumentError     RuntimeError     a positional argument (Lepton raised RuntimeError)
    │                           TypeError        (what Python raises for a bad call)
    ├── ClientConnectionError   ConnectionError  the photon cannot be reached
    │                           httpx.ConnectError, when httpx is imported
    ├── ClientTimeoutError      TimeoutError     no answer within ``timeout``
    │                           httpx.ReadTimeout, when httpx is imported
    └── ClientHTTPError                          the photon answered 4xx/5xx
                                httpx.HTTPStatusError, when httpx is imported

The client itself never imports httpx. When the calling program has imported
it (it must have, to write ``except httpx.HTTPStatusError``), the error raised
is a subclass that also derives from the httpx class, with a real
``httpx.Request`` and ``httpx.Response`` (``e.response.status_code``,
``e.response.json()``) built from what the client sent and received.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from photonpack.serving.errors import ClientError

__all__ = [
    "ClientArgumentError",
    "ClientConnectionError",
    "ClientError",
    "ClientHTTPError",
    "ClientTimeoutError",
    "ClientURLError",
    "ClientWorkspaceError",
    "client_error",
]


class ClientURLError(ClientError, ValueError):
    """The photon's address is not an http(s) URL."""


class ClientWorkspaceError(ClientError, RuntimeError):
    """A Lepton workspace was asked for; photonpack calls photons by URL."""


class ClientArgumentError(ClientError, RuntimeError, TypeError):
    """A handler was called with positional arguments."""


class ClientConnectionError(ClientError, ConnectionError):
    """The photon cannot be reached: refused, reset, or not a photon at all."""


class ClientTimeoutError(ClientError, TimeoutError):
    """The photon did not answer within the client's ``timeout``."""


class ClientHTTPError(ClientError):
    """The photon answered with an HTTP error status (``.status``, ``.detail``)."""


# Our class -> the httpx exception Lepton's client raised in its place.
_HTTPX_EQUIVALENT: dict[type[ClientError], str] = {
    ClientConnectionError: "ConnectError",
    ClientTimeoutError: "ReadTimeout",
    ClientHTTPError: "HTTPStatusError",
}


def client_error(
    cls: type[ClientError],
    message: str,
    *,
    method: str,
    url: str,
    status: int | None = None,
    detail: object = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> ClientError:
    """An instance of ``cls``; of its httpx-derived twin when the program has imported httpx."""
    httpx = sys.modules.get("httpx")
    name = _HTTPX_EQUIVALENT.get(cls)
    if httpx is None or name is None or not isinstance(getattr(httpx, name, None), type):
        return cls(message, status=status, detail=detail)
    request = httpx.Request(method, url)
    extra: dict[str, Any] = {"request": request}
    if status is not None:
        extra["response"] = httpx.Response(
            status, headers=dict(headers or {}), content=body, request=request
        )
    twin = _twin(cls, getattr(httpx, name))
    error = twin.__new__(twin, message)
    getattr(httpx, name).__init__(error, message, **extra)
    error.message, error.status, error.detail = message, status, detail
    return error


_TWINS: dict[tuple[type[ClientError], type[Exception]], type[ClientError]] = {}


def _twin(cls: type[ClientError], foreign: type[Exception]) -> type[ClientError]:
    # A subclass of both, made once per pair. client_error never calls its
    # __init__: the two bases' __init__ take different arguments.
    key = (cls, foreign)
    if key not in _TWINS:
        _TWINS[key] = type(cls.__name__, (cls, foreign), {"__module__": cls.__module__})
    return _TWINS[key]
