"""Registry logins: credentials, and the Bearer token handshake of the distribution spec.

A registry that answers 401 with ``WWW-Authenticate: Bearer realm=...,
service=...,scope=...`` is asked for a token at ``realm``, with the login (if
any) as HTTP Basic; the token then authorises requests for that scope.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from photonpack.errors import RegistryError
from photonpack.oci.transport import Transport, open_connection

__all__ = ["LOCAL_HOSTS", "Credentials", "fetch_token"]

# Hosts reached over plain HTTP without --insecure, and trusted with plain-HTTP logins.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# A token answer is a small JSON document; more than this is not one.
_MAX_ANSWER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """A registry login; the password never appears in ``repr`` or messages."""

    username: str
    password: str = field(repr=False)

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def fetch_token(
    *,
    registry: str,
    registry_scheme: str,
    challenge: Mapping[str, str],
    scope: str,
    credentials: Credentials | None,
    transport: Transport,
    denied: Callable[[int], RegistryError],
) -> str:
    """Ask the token service named in ``challenge`` for a token for ``scope``.

    Credentials are never sent to a plain-HTTP realm unless the registry itself
    is plain HTTP or the realm is on this machine. ``denied(status)`` builds
    the error for a refused login (its wording depends on the caller).
    """
    realm = challenge.get("realm", "")
    parsed = urllib.parse.urlsplit(realm)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise RegistryError(f"{registry} announced an unusable token realm {realm!r}")
    if parsed.scheme == "http" and parsed.hostname not in LOCAL_HOSTS and registry_scheme != "http":
        raise RegistryError(
            f"{registry} sends logins to a plain-HTTP token service ({parsed.netloc}); "
            "refusing to send credentials without TLS"
        )
    query = [("service", challenge.get("service", registry))]
    if scope:
        query.append(("scope", scope))
    if challenge.get("scope") and challenge["scope"] != scope:
        query.append(("scope", challenge["scope"]))
    if credentials is not None:
        query.append(("account", credentials.username))
    url_path = parsed.path or "/"
    target = f"{url_path}?{parsed.query + '&' if parsed.query else ''}"
    target += urllib.parse.urlencode(query)
    conn = open_connection(parsed.scheme, parsed.netloc, transport)
    headers = {"Authorization": credentials.basic()} if credentials else {}
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read(_MAX_ANSWER_BYTES)
    except (OSError, http.client.HTTPException) as exc:
        raise RegistryError(
            f"cannot reach the token service {parsed.scheme}://{parsed.netloc} of {registry}: {exc}"
        ) from exc
    finally:
        conn.close()
    if response.status in (401, 403):
        raise denied(response.status)
    try:
        answer = json.loads(body)
        token = answer.get("token") or answer.get("access_token")
    except (ValueError, AttributeError) as exc:
        token = None
        if response.status == 200:
            raise RegistryError(
                f"the token service of {registry} answered with something other than JSON"
            ) from exc
    if response.status != 200 or not isinstance(token, str) or not token:
        raise RegistryError(
            f"the token service of {registry} gave no token (HTTP {response.status})"
        )
    return token
