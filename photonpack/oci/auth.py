"""How a registry client authenticates: anonymously, with HTTP Basic, or with Bearer tokens.

The distribution spec's handshake: a request goes out with what is known so
far; a 401 names the scheme in ``WWW-Authenticate``. Basic is answered once
with the login; a Bearer challenge is parsed and a token for the request's
scope is fetched (``credentials.fetch_token``) and kept for later requests.
A second refusal of the same login is a RegistryError, never a loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from photonpack.errors import RegistryError
from photonpack.oci.credentials import Credentials, fetch_token
from photonpack.oci.transport import Transport

__all__ = ["Auth"]

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


class Auth:
    """The login state of one registry: Basic once asked for, a Bearer token per scope."""

    def __init__(
        self,
        *,
        registry: str,
        scheme: str,
        credentials: Credentials | None,
        transport: Transport,
        lookup: Callable[[], Credentials | None] | None = None,
    ) -> None:
        self.registry = registry
        self.scheme = scheme
        self._credentials = credentials
        self._lookup = lookup
        self._from_files = False
        self._transport = transport
        self._tokens: dict[str, str] = {}
        self._basic = False

    @property
    def credentials(self) -> Credentials | None:
        """The login: the one given, else (asked once, at the first challenge) the auth files'."""
        if self._credentials is None and self._lookup is not None:
            lookup, self._lookup = self._lookup, None
            self._credentials = lookup()
            self._from_files = self._credentials is not None
        return self._credentials

    def header(self, scope: str) -> str | None:
        """The ``Authorization`` header for a request in ``scope``, if any is known."""
        if scope in self._tokens:
            return "Bearer " + self._tokens[scope]
        if self._basic and self.credentials is not None:
            return self.credentials.basic()
        return None

    def login(self, challenge: str, scope: str) -> None:
        """Answer a 401's ``WWW-Authenticate`` challenge, so the request can be sent again."""
        kind = challenge.split(" ", 1)[0].lower()
        if kind == "basic":
            if self.credentials is None or self._basic:
                raise self.denied(401)
            self._basic = True
            return
        if kind != "bearer":
            raise RegistryError(
                f"{self.registry} asks for an authentication scheme photonpack does not know "
                f"({challenge.split(' ', 1)[0] or 'none'}); expected Basic or Bearer"
            )
        if scope in self._tokens:
            raise self.denied(401)
        params = dict(_CHALLENGE_RE.findall(challenge))
        self._tokens[scope] = self._fetch_token(params, scope)

    def _fetch_token(self, params: Mapping[str, str], scope: str) -> str:
        return fetch_token(
            registry=self.registry,
            registry_scheme=self.scheme,
            challenge=params,
            scope=scope,
            credentials=self.credentials,
            transport=self._transport,
            denied=self.denied,
        )

    def denied(self, status: int) -> RegistryError:
        """The error for a refused (or missing) login."""
        if self.credentials is None:
            return RegistryError(
                f"{self.registry} requires a login (HTTP {status}): run "
                f"`photonpack login {self.registry}`, pass --username and --password-stdin, "
                "or set PHOTONPACK_REGISTRY_USERNAME and PHOTONPACK_REGISTRY_PASSWORD"
            )
        if self._from_files:
            return RegistryError(
                f"{self.registry} refused the login of {self.credentials.username!r} kept in "
                f"the auth files (HTTP {status}): run `photonpack login {self.registry}` again"
            )
        return RegistryError(
            f"{self.registry} refused the login of {self.credentials.username!r} "
            f"(HTTP {status}): check the username and password"
        )
