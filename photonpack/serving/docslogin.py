"""A browser's way into a token-protected photon's ``/docs`` and ``/redoc``: a login form.

A browser cannot send ``Authorization: Bearer``, so without one ``GET /docs``
(or ``/redoc``) answers 401 with a small form (no script, no asset) that posts
the token to ``/docs/login``. A right token sets a session cookie — HttpOnly
(no script reads it), SameSite=Strict (no other site's page sends it), Path the
app's root (the docs and the API they call), Secure over HTTPS — and redirects
to the page; Swagger UI's "Try it out" then calls the handlers with it. The
cookie holds an HMAC of the token, not the token: it opens this photon's routes
(every replica's, as it is derived from the token alone) and reveals nothing
usable elsewhere. ``POST /docs/logout`` clears it.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["COOKIE", "LOGIN_PATH", "LOGOUT_PATH", "PAGES", "DocsLogin"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

COOKIE = "photonpack-docs"
LOGIN_PATH = "/docs/login"
LOGOUT_PATH = "/docs/logout"
PAGES = ("/docs", "/redoc")  # where the form is shown, and where a login may return to
_MAX_FORM = 4096  # a token form is a few hundred bytes
_SESSION_CONTEXT = b"photonpack /docs session v1"

_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:28em;margin:4em auto}}
input{{font-size:1em;padding:.3em;width:100%;box-sizing:border-box;margin:.4em 0}}
.error{{color:#b00}}</style></head>
<body><h1>{title}</h1>
<p>This photon needs its bearer token. It is kept in a cookie for this browser only.</p>
{error}<form method="post" action="{action}">
<input type="hidden" name="next" value="{next}">
<label for="token">Token</label>
<input type="password" id="token" name="token" autocomplete="current-password" autofocus>
<input type="submit" value="Open the API docs">
</form></body></html>
"""


class DocsLogin:
    """The form, the login and logout routes, and the session cookie's check."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._session = hmac.new(self._token, _SESSION_CONTEXT, hashlib.sha256).hexdigest()

    def has_session(self, cookie_header: bytes | None) -> bool:
        """Whether the request's ``Cookie`` header carries this photon's session."""
        if not cookie_header:
            return False
        for part in cookie_header.decode("latin-1").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(value.encode(), self._session.encode()):
                return True
        return False

    def handles(self, scope: Scope, *, authorized: bool) -> bool:
        """Whether the request is this module's to answer: the form, unless authorized."""
        method, path = scope["method"], scope["path"]
        if method == "POST" and path in (LOGIN_PATH, LOGOUT_PATH):
            return True
        return not authorized and method in ("GET", "HEAD") and path in PAGES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = str(scope.get("root_path", "")).rstrip("/")
        if scope["path"] == LOGOUT_PATH:
            await self._redirect(send, root, "/docs", self._cookie(scope, root, "", 0))
            return
        if scope["path"] in PAGES:
            await self._form(send, root, scope["path"], error="")
            return
        form = await _read_form(receive) or {}
        target = form.get("next", "/docs")
        target = target if target in PAGES else "/docs"  # never a redirect elsewhere
        if not hmac.compare_digest(form.get("token", "").encode(), self._token):
            await self._form(send, root, target, error="That is not this photon's token.")
            return
        await self._redirect(send, root, target, self._cookie(scope, root, self._session, None))

    def _cookie(self, scope: Scope, root: str, value: str, max_age: int | None) -> bytes:
        parts = [f"{COOKIE}={value}", f"Path={root or '/'}", "HttpOnly", "SameSite=Strict"]
        if scope.get("scheme") == "https":
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        return "; ".join(parts).encode()

    async def _form(self, send: Send, root: str, target: str, *, error: str) -> None:
        page = _FORM.format(
            title="Sign in to the API docs",
            action=html.escape(root + LOGIN_PATH),
            next=html.escape(target),
            error=f'<p class="error">{html.escape(error)}</p>\n' if error else "",
        ).encode()
        await _send(
            send,
            401,
            page,
            [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"www-authenticate", b"Bearer"),
                (b"cache-control", b"no-store"),
                (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; "
                 b"form-action 'self'; frame-ancestors 'none'"),
            ],
        )  # fmt: skip

    async def _redirect(self, send: Send, root: str, target: str, cookie: bytes) -> None:
        headers = [(b"location", (root + target).encode()), (b"set-cookie", cookie)]
        await _send(send, 303, b"", [*headers, (b"cache-control", b"no-store")])


async def _read_form(receive: Receive) -> dict[str, str] | None:
    """The urlencoded body's fields; None when it is too large to be the form."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > _MAX_FORM:
            return None
        if not message.get("more_body"):
            break
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    return {name: values[0] for name, values in fields.items()}


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})
