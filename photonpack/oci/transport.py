"""How a connection to a registry host is opened: TLS trust, and proxies from the environment.

Every connection photonpack opens to a registry, its token service or its blob
storage comes from :func:`open_connection`, so the site's settings apply to all
of them alike:

- TLS is verified against the system's trust store (which honours
  ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``), or against a CA bundle the caller
  names (``--ca-file``, ``$PHOTONPACK_CA_FILE``) for a registry signed by the
  site's own authority.
- ``HTTPS_PROXY`` (for https) and ``HTTP_PROXY`` (for http) are used through a
  ``CONNECT`` tunnel, so TLS stays end to end; ``NO_PROXY`` lists the hosts
  reached directly, with the same rules as curl and Python's urllib.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from photonpack.errors import RegistryError

__all__ = ["Transport", "open_connection"]


@dataclass(frozen=True, kw_only=True)
class Transport:
    """The settings for opening connections: a CA bundle (or the system's), and a timeout."""

    ca_file: Path | None = None
    timeout: float = 60.0

    def context(self) -> ssl.SSLContext:
        """The TLS context: the system trust store, or only ``ca_file`` when one is named."""
        if self.ca_file is None:
            return ssl.create_default_context()
        try:
            return ssl.create_default_context(cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
            raise RegistryError(
                f"cannot use the CA bundle {self.ca_file}: {reason}; "
                "pass a PEM file of CA certificates to --ca-file"
            ) from exc


def proxy_for(scheme: str, netloc: str) -> str | None:
    """The ``host:port`` of the proxy for ``scheme://netloc``, or None to connect directly."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme)
    host = urllib.parse.urlsplit("//" + netloc).hostname or netloc
    # urllib's own NO_PROXY rules (suffixes, ports, "*"); typeshed does not declare it.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(host, proxies):
        return None
    parsed = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if parsed.scheme != "http" or not parsed.hostname:
        raise RegistryError(
            f"the proxy {proxy!r} for {scheme} is not usable: photonpack speaks to proxies "
            "with plain HTTP CONNECT; set it as http://host:port"
        )
    return f"{parsed.hostname}:{parsed.port or 80}"


def open_connection(
    scheme: str, netloc: str, transport: Transport | None = None
) -> http.client.HTTPConnection:
    """A connection (not yet connected) to ``scheme://netloc``, tunnelled through a proxy if set."""
    settings = transport or Transport()
    proxy = proxy_for(scheme, netloc)
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(
            proxy or netloc, timeout=settings.timeout, context=settings.context()
        )
    else:
        conn = http.client.HTTPConnection(proxy or netloc, timeout=settings.timeout)
    if proxy is not None:
        conn.set_tunnel(netloc)
    return conn
