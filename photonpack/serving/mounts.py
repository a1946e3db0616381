"""What a ``mount=True`` handler returns, made into something the app can mount.

A Photon (its own app: routes under the prefix), any ASGI app (FastAPI,
Starlette, ``StaticFiles``), a WSGI app such as Flask (through
:class:`WSGIApp`), or a gradio ``Blocks`` (through gradio's own
``mount_gradio_app``, which needs the parent app).
"""

from __future__ import annotations

import inspect
import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from photonpack.serving.errors import PhotonDefinitionError
from photonpack.serving.guard import ASGIApp, Receive, Scope, Send

__all__ = ["WSGIApp", "check_asgi", "is_gradio", "is_wsgi"]


def is_gradio(target: object) -> bool:
    """Whether ``target`` is a gradio app (``Blocks``, ``Interface``, ``ChatInterface``)."""
    mro = type(target).__mro__
    return any(k.__module__.startswith("gradio.") and k.__name__ == "Blocks" for k in mro)


def is_wsgi(target: object) -> bool:
    """Whether ``target`` is WSGI: a Flask app, or ``app(environ, start_response)``."""
    if callable(getattr(target, "wsgi_app", None)):
        return True
    if not callable(target) or inspect.isclass(target):
        return False
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 2 and not inspect.iscoroutinefunction(target)


def check_asgi(where: str, target: object) -> ASGIApp:
    """``target`` as an ASGI app, or the error that says what a mount handler may return."""
    if not callable(target):
        raise PhotonDefinitionError(
            f"{where} is a mount handler and must return an ASGI app (FastAPI, Starlette, "
            f"StaticFiles), a WSGI app (Flask), a gradio Blocks or a Photon, got {target!r}"
        )
    return target


class WSGIApp:
    """Serve a WSGI app under ASGI: the whole body is read, the app runs in a thread.

    The response is gathered in that thread and sent once the app returns, so a
    streaming WSGI response arrives whole; Lepton's photons mount Flask apps
    that answer pages and JSON, for which that is the same.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to start
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        status, headers, chunks = await anyio.to_thread.run_sync(self._run, scope, bytes(body))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    def _run(self, scope: Scope, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return chunks.append

        chunks: list[bytes] = []
        result = self.app(_environ(scope, body), start_response)
        try:
            chunks += list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return int(status.split(" ", 1)[0]), encoded, chunks


def _environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The PEP 3333 environ of an ASGI HTTP scope, the mount prefix as ``SCRIPT_NAME``."""
    root = scope.get("root_path", "")
    path = scope["path"]
    if path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode().decode("latin-1"),
        "PATH_INFO": path.encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = text
        elif key != "CONTENT_LENGTH":
            header = f"HTTP_{key}"
            environ[header] = f"{environ[header]},{text}" if header in environ else text
    return environ
