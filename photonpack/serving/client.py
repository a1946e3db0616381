"""The Python client: call a served photon's handlers as keyword-only methods.

``Client(local()).add(x=3)`` posts ``{"x": 3}`` to ``/add``. Handlers are
discovered from ``/openapi.json``; nested paths become attributes
(``c.a.b()``) and ``-`` becomes ``_``. Standard library only, with one
keep-alive connection per client.
"""

from __future__ import annotations

import base64
import http.client
import inspect
import io
import json
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from photonpack.serving.errors import ClientError

__all__ = ["Client", "local"]

_CHUNK = 64 * 1024


def local(port: int = 8080) -> str:
    """The URL of a photon served on this machine."""
    return f"http://localhost:{port}"


class _Connection:
    """One keep-alive HTTP connection, reopened when the server closed it."""

    def __init__(self, url: str, timeout: float | None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(
                f"invalid photon URL {url!r}: expected http://host:port, e.g. {local()}"
            )
        self.url = url.rstrip("/")
        self.base_path = parts.path.rstrip("/")
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _new(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self._timeout)

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], *, stream: bool
    ) -> tuple[http.client.HTTPResponse, bytes | None]:
        """Send one request; the body is read unless ``stream`` (then it is ``None``)."""
        target = self.base_path + path
        if stream:  # a streamed response owns its connection until it is read
            return self._send(self._new(), method, target, body, headers), None
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = self._new()
                try:
                    response = self._send(self._conn, method, target, body, headers)
                    return response, response.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # the server closed an idle keep-alive connection: retry once on a new one
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    @staticmethod
    def _send(
        conn: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
    ) -> http.client.HTTPResponse:
        conn.request(method, target, body=body, headers=headers)
        return conn.getresponse()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


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


class _Stream:
    """The chunks of a streamed response; iterate it, or use it as a context manager."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._response.read1(_CHUNK):
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler:
    """One handler of the photon, callable with keyword arguments only."""

    def __init__(
        self,
        client: Client,
        method: str,
        path: str,
        operation: dict[str, Any],
        params: list[tuple[str, bool, str]],
    ) -> None:
        self._client = client
        self._method = method
        self._path = path
        self._params = params
        segments = [p for p in path.strip("/").split("/") if p and not p.startswith("{")]
        self.__name__ = ".".join(segments).replace("-", "_") or "root"
        signature = ", ".join(f"{n}: {t}" + ("" if req else " = ...") for n, req, t in params)
        summary = operation.get("description") or operation.get("summary") or ""
        self.__doc__ = f"{method} {path}({'*, ' if params else ''}{signature})"
        if summary:
            self.__doc__ += "\n\n" + summary
        self.__signature__ = inspect.Signature(
            [
                inspect.Parameter(
                    n,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=inspect.Parameter.empty if req else None,
                )
                for n, req, _ in params
            ]
        )

    def __call__(self, *args: Any, stream: bool = False, **kwargs: Any) -> Any:
        if args:
            names = [n for n, _, _ in self._params]
            example = ", ".join(f"{n}=..." for n in names[: len(args)]) or "..."
            raise ClientError(
                f"{self.__name__}() takes keyword arguments only, got {len(args)} positional; "
                f"call it as {self.__name__}({example})"
            )
        return self._client._call(self._method, self._path, kwargs, stream=stream)

    def __repr__(self) -> str:
        return f"<photon handler {self._method} {self._path}>"


class _Namespace:
    """An attribute level of nested handler paths: ``c.a`` in ``c.a.b()``."""

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"the photon has no handler under {self._path}/{name}")

    def __repr__(self) -> str:
        return f"<photon path {self._path}>"


class Client:
    """A served photon: ``Client(local())``, ``Client("http://host:8080", token=...)``.

    Each handler is a keyword-only method; JSON responses are decoded, others
    are returned as bytes; ``stream=True`` returns an iterable of chunks.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float | None = 60.0) -> None:
        self._conn = _Connection(url, timeout)
        self._token = token
        self._paths: list[str] = []
        self._discover()

    @property
    def url(self) -> str:
        """The photon's base URL."""
        return self._conn.url

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json, */*"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers | (extra or {})

    def _request(
        self, method: str, path: str, body: bytes | None = None, *, stream: bool = False
    ) -> tuple[http.client.HTTPResponse, bytes]:
        extra = {"Content-Type": "application/json"} if body is not None else None
        try:
            response, data = self._conn.request(
                method, path, body, self._headers(extra), stream=stream
            )
        except (OSError, http.client.HTTPException) as exc:
            raise ClientError(
                f"cannot reach the photon at {self.url} ({type(exc).__name__}: {exc}); "
                "is it running? (photonpack run -m file.py)"
            ) from exc
        if data is None:
            if response.status < 400:
                return response, b""
            data = response.read()
            response.close()
        if response.status >= 400:
            detail = _detail(response, data)
            raise ClientError(
                f"{method} {path} answered {response.status}: {detail}",
                status=response.status,
                detail=detail,
            )
        return response, data

    def _discover(self) -> None:
        _, data = self._request("GET", "/openapi.json")
        try:
            spec = json.loads(data)
            paths: dict[str, Any] = spec["paths"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ClientError(
                f"{self.url}/openapi.json is not an OpenAPI document; is this a photon?"
            ) from exc
        schemas = spec.get("components", {}).get("schemas", {})
        for path in sorted(paths):
            for method, operation in paths[path].items():
                if method.upper() not in ("GET", "POST"):
                    continue
                params = _operation_params(operation, schemas)
                self._attach(path, _Handler(self, method.upper(), path, operation, params))
                self._paths.append(path)

    def _attach(self, path: str, handler: _Handler) -> None:
        # "{name}" segments are keyword arguments, not attributes: /items/{id} -> c.items(id=...)
        segments = [p for p in path.strip("/").split("/") if p and not p.startswith("{")]
        parts = [p.replace("-", "_") for p in segments] or ["root"]
        target: Any = self
        for i, part in enumerate(parts[:-1]):
            child = target.__dict__.get(part)
            if not isinstance(child, _Namespace):
                child = _Namespace("/" + "/".join(parts[: i + 1]))
                setattr(target, part, child)
            target = child
        # the first method of a path wins; Client's own names are not shadowed
        if parts[-1] not in target.__dict__ and not hasattr(type(target), parts[-1]):
            setattr(target, parts[-1], handler)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not handlers (those are instance attributes).
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(
            f"the photon at {self.url} has no handler {name!r}; its handlers: "
            f"{', '.join(self.paths()) or 'none'}"
        )

    def paths(self) -> list[str]:
        """The handler paths the photon serves, sorted."""
        return sorted(set(self._paths))

    def healthz(self) -> Any:
        """``GET /healthz``: the photon's health answer."""
        return self._call("GET", "/healthz", {}, stream=False)

    def _call(self, method: str, path: str, kwargs: dict[str, Any], *, stream: bool) -> Any:
        body: bytes | None = None
        for name in [n for n in kwargs if "{" + n + "}" in path]:
            path = path.replace(
                "{" + name + "}", urllib.parse.quote(str(kwargs.pop(name)), safe="")
            )
        if method == "GET":
            if kwargs:
                path += "?" + urllib.parse.urlencode(_encode(kwargs), doseq=True)
        else:
            body = json.dumps(_encode(kwargs)).encode()
        response, data = self._request(method, path, body, stream=stream)
        if stream:
            return _Stream(response)
        if response.status == 204 or not data:
            return None
        if (response.getheader("content-type") or "").startswith("application/json"):
            return json.loads(data)
        return data

    def close(self) -> None:
        """Close the keep-alive connection."""
        self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"


def _detail(response: http.client.HTTPResponse, data: bytes) -> Any:
    if (response.getheader("content-type") or "").startswith("application/json"):
        try:
            body = json.loads(data)
        except ValueError:
            return data.decode(errors="replace")
        if isinstance(body, dict):
            return body.get("error", body.get("detail", body))
        return body
    return data.decode(errors="replace") or response.reason


def _operation_params(
    operation: dict[str, Any], schemas: dict[str, Any]
) -> list[tuple[str, bool, str]]:
    """(name, required, type) of an operation's inputs: query/path parameters and body fields."""
    params = [
        (p["name"], bool(p.get("required")), _type_name(p.get("schema", {})))
        for p in operation.get("parameters", [])
    ]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content:
        schema = _resolve(content.get("schema", {}), schemas)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            params.append((name, name in required, _type_name(_resolve(prop, schemas))))
    return params


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in schema:  # an optional body: Model | None
        for option in schema["anyOf"]:
            if "$ref" in option:
                return _resolve(option, schemas)
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = schemas.get(ref.rsplit("/", 1)[1], {})
        return resolved
    return schema


def _type_name(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return str(schema["type"])
    if "anyOf" in schema:
        return " | ".join(_type_name(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    return "any"
