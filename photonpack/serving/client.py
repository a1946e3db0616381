"""The Python client: call a served photon's handlers as keyword-only methods.

``Client(local()).add(x=3)`` posts ``{"x": 3}`` to ``/add``. Handlers are
discovered from ``/openapi.json`` and named as Lepton's client named them
(:mod:`photonpack.serving.client_paths`). Code written for Lepton's
``leptonai.client`` runs unchanged: the same constructor, ``local()``,
``Client.local()``, ``stream=``, ``openapi``, no timeout by default, and
errors that are also what Lepton raised (:mod:`photonpack.serving.client_errors`).
Standard library only; one client may be used from many threads at once.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

from photonpack.serving.client_errors import (
    ClientArgumentError,
    ClientConnectionError,
    ClientError,
    ClientHTTPError,
    ClientTimeoutError,
    ClientURLError,
    ClientWorkspaceError,
    client_error,
)
from photonpack.serving.client_paths import Call, Node, attribute_path
from photonpack.serving.client_transport import Pool, Stream

__all__ = [
    "Client",
    "ClientArgumentError",
    "ClientConnectionError",
    "ClientError",
    "ClientHTTPError",
    "ClientTimeoutError",
    "ClientURLError",
    "ClientWorkspaceError",
    "current",
    "local",
]

DEFAULT_PORT = 8080


def local(port: int = DEFAULT_PORT) -> str:
    """The URL of a photon served on this machine."""
    return f"http://localhost:{port}"


def current() -> str:
    """Lepton's current workspace: photonpack has none, so this always raises."""
    raise ClientWorkspaceError(
        "photonpack has no Lepton workspaces, so there is no current one; pass the photon's "
        f"URL instead: Client(local()) for this machine ({local()}), or Client('http://host:8080')"
    )


class Client:
    """A served photon: ``Client(local())``, ``Client("http://host:8080", token=...)``.

    Each handler is a keyword-only method. JSON answers are decoded, others are
    bytes. ``stream=True`` (for the client, or per call) returns an iterable of
    chunks for a chunked answer, as Lepton's client did; JSON is still decoded.
    ``timeout`` (seconds) bounds each call; ``None``, the default, waits as long
    as the photon takes. ``Client(workspace, deployment, token)``, Lepton's
    form, and :meth:`deployment` find a deployment made by ``photonpack deploy``
    by name (the workspace is ignored: photonpack has none). ``no_check`` and
    ``http2`` are accepted for Lepton's callers and change nothing.
    """

    def __init__(  # noqa: PLR0917 - Lepton's signature, positional arguments included
        self,
        url: str,
        deployment: str | None = None,
        token: str | None = None,
        stream: bool | None = None,
        chunk_size: int | None = None,
        timeout: float | None = None,
        no_check: bool = False,  # Lepton's: it silenced a warning this client never logs
        http2: bool = True,  # Lepton's: the standard library speaks HTTP/1.1 only
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") and deployment is not None:
            from photonpack.serving.deployments import deployment_url

            url = deployment_url(deployment)
            parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            workspace = f" (a Lepton workspace{' and deployment' if deployment else ''}?)"
            raise ClientURLError(
                f"invalid photon URL {url!r}{workspace if '/' not in url else ''}: "
                f"expected http://host:port, e.g. {local()}"
            )
        self._url = url.rstrip("/")
        self._token = token
        self._pool = Pool(url, timeout)
        self._tree = Node("")
        self._paths: set[str] = set()
        self.stream = stream
        self.chunk_size = chunk_size
        self.openapi: dict[str, Any] = {}
        self._discover()

    local = staticmethod(local)
    current = staticmethod(current)

    @classmethod
    def deployment(cls, name: str, *, token: str | None = None, **options: Any) -> Client:
        """The deployment ``name`` made by ``photonpack deploy`` on this machine."""
        from photonpack.serving.deployments import deployment_url

        return cls(deployment_url(name), token=token, **options)

    @property
    def url(self) -> str:
        """The photon's base URL."""
        return self._url

    def _discover(self) -> None:
        _, data, _ = self._request("GET", "/openapi.json")
        try:
            spec = json.loads(data or b"")
            paths: dict[str, Any] = spec["paths"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ClientConnectionError(
                f"{self.url}/openapi.json is not an OpenAPI document; is this a photon?"
            ) from exc
        self.openapi = spec
        schemas = spec.get("components", {}).get("schemas", {})
        for path in sorted(paths):
            node = self._tree
            for name in attribute_path(path):
                node = node._child(name)
            for method, operation in paths[path].items():
                if method.upper() in ("GET", "POST"):
                    call = Call(self._send, method.upper(), path, operation, schemas)
                    node._add(call, method.upper())
                    self._paths.add(path)

    def __getattr__(self, name: str) -> Any:
        # Reached only for names that are not the Client's own: those always win.
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return getattr(self._tree, name)
        except AttributeError:
            if name == "root" and "/" in self._paths:
                return self._tree
        raise AttributeError(
            f"the photon at {self.url} has no handler {name!r}; its handlers: "
            f"{', '.join(self.paths()) or 'none'}"
        )

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *dir(self._tree)})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the handler at ``/`` (also ``c.root()``)."""
        return self._tree(*args, **kwargs)

    def paths(self) -> list[str]:
        """The handler paths the photon serves, sorted."""
        return sorted(self._paths)

    def healthz(self) -> bool:
        """Whether ``GET /healthz`` answers with success; never raises, as in Lepton."""
        try:
            response, _, _ = self._request("GET", "/healthz")
        except ClientError:
            return False
        return response.status < 300

    def _send(self, method: str, path: str, kwargs: dict[str, Any], stream: bool | None) -> Any:
        for name in [n for n in kwargs if "{" + n + "}" in path]:
            value = urllib.parse.quote(str(kwargs.pop(name)), safe="")
            path = path.replace("{" + name + "}", value)
        body: bytes | None = None
        if method == "GET":
            if kwargs:
                path += "?" + urllib.parse.urlencode(_encode(kwargs), doseq=True)
        else:
            body = json.dumps(_encode(kwargs)).encode()
        streaming = self.stream if stream is None else stream
        response, data, conn = self._request(method, path, body, stream=bool(streaming))
        if data is None:  # streamed: a chunked answer is handed over as it comes
            if "chunked" in (response.getheader("transfer-encoding") or "") and not _is_json(
                response
            ):
                return Stream(
                    response, conn, self._pool, chunk_size=self.chunk_size, fail=self._failure
                )
            data = self._read(method, path, response, conn)
        if response.status == 204 or not data:
            return None
        return json.loads(data) if _is_json(response) else data

    def _headers(self, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json, */*"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    def _request(
        self, method: str, path: str, body: bytes | None = None, *, stream: bool = False
    ) -> tuple[http.client.HTTPResponse, bytes | None, http.client.HTTPConnection]:
        try:
            response, data, conn = self._pool.request(
                method, path, body, self._headers(body), stream=stream
            )
        except (OSError, http.client.HTTPException) as exc:
            raise self._failure(exc, method, path) from exc
        if response.status >= 400:
            if data is None:
                data = self._read(method, path, response, conn)
            detail = _detail(response, data)
            raise client_error(
                ClientHTTPError,
                f"{method} {path} answered {response.status}: {detail}",
                method=method,
                url=self.url + path,
                status=response.status,
                detail=detail,
                headers=dict(response.getheaders()),
                body=data,
            )
        return response, data, conn

    def _read(
        self,
        method: str,
        path: str,
        response: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
    ) -> bytes:
        try:
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._failure(exc, method, path) from exc
        self._pool.finish(conn, response)
        return data

    def _failure(self, exc: Exception, method: str = "GET", path: str = "") -> ClientError:
        """The client's error for a socket or protocol failure ``exc``."""
        if isinstance(exc, TimeoutError):
            return client_error(
                ClientTimeoutError,
                f"{method} {path or '/'} got no answer from {self.url} within "
                f"{self._pool.timeout} s; pass a larger timeout to Client(), or timeout=None "
                "to wait as long as the photon takes",
                method=method,
                url=self.url + path,
            )
        return client_error(
            ClientConnectionError,
            f"cannot reach the photon at {self.url} ({type(exc).__name__}: {exc}); "
            "is it running? (photonpack run -m file.py)",
            method=method,
            url=self.url + path,
        )

    def close(self) -> None:
        """Close the idle keep-alive connections."""
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


def _is_json(response: http.client.HTTPResponse) -> bool:
    return (response.getheader("content-type") or "").startswith("application/json")


def _encode(value: Any) -> Any:
    """Make an argument JSON-ready: bytes and file objects travel as ``data:`` URIs."""
    if hasattr(value, "get_content"):  # photonpack.File
        value = value.get_content()
    elif isinstance(value, io.IOBase) or hasattr(value, "read"):
        value = value.read()
    if isinstance(value, bytes | bytearray | memoryview):
        return "data:application/octet-stream;base64," + base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


def _detail(response: http.client.HTTPResponse, data: bytes) -> Any:
    if _is_json(response):
        try:
            body = json.loads(data)
        except ValueError:
            return data.decode(errors="replace")
        if isinstance(body, dict):
            return body.get("error", body.get("detail", body))
        return body
    return data.decode(errors="replace") or response.reason
