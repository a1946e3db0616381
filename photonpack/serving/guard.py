"""The ASGI guard in front of a photon's app: the bearer token and the request body limit.

Plain ASGI, no per-request task. A body over the limit is refused with 413 and
the connection is closed, so the client stops sending: by ``Content-Length``
before anything is read, and for a chunked body as soon as the running count
passes the limit.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

from photonpack.serving.docslogin import DocsLogin

__all__ = ["OPEN_PATHS", "ASGIApp", "Guard", "reply"]

# Probes carry no token: health (photonpack's) and liveness (Lepton's).
OPEN_PATHS = frozenset({"/healthz", "/livez"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BodyTooLarge(StarletteHTTPException):
    """Raised into the app when a chunked body passes the limit.

    An HTTPException on purpose: FastAPI re-raises those as they are, while any
    other exception met while reading a body becomes a new 400 held in a local
    of a frame in its own traceback. That cycle kept the partial body (up to
    the limit, 64 MiB) alive until the next full garbage collection.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"request body is larger than the limit of {limit} bytes"


class Guard:
    """Bearer-token auth (``/healthz`` and ``/livez`` stay open) and the request body limit.

    A browser signs in at ``/docs`` instead (:mod:`photonpack.serving.docslogin`):
    its session cookie is taken as the token.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int | None) -> None:
        self.app = app
        self.token = f"Bearer {token}".encode() if token is not None else None
        self.login = DocsLogin(token) if token is not None else None
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        auth = length = cookie = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"cookie":
                cookie = value
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if self.login is not None and self.token is not None and scope["path"] not in OPEN_PATHS:
            authorized = hmac.compare_digest(auth or b"", self.token) or self.login.has_session(
                cookie
            )
            if self.login.handles(scope, authorized=authorized):
                await self.login(scope, receive, send)
                return
        else:
            authorized = True
        if not authorized:
            await reply(
                send,
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        limit = self.max_body
        if limit is not None and length is not None and length.isdigit() and int(length) > limit:
            await reply(send, 413, _too_large(limit), [(b"connection", b"close")])
            return
        if limit is None or not chunked:
            # Without Transfer-Encoding the server reads at most Content-Length
            # bytes (none without it), so only a chunked body needs counting.
            await self.app(scope, receive, send)
            return
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        rejected = started = False

        async def counting_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    raise _BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return  # whatever the app makes of a cut body, the answer is our 413
            started = True
            await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if rejected and not started:
            await reply(send, 413, _too_large(limit), [(b"connection", b"close")])


async def reply(
    send: Send, status: int, error: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a whole ``{"error": ...}`` JSON response."""
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
