"""A small HTTPS client for the Kubernetes API (standard library only).

Requests are bounded in time; a cluster that does not answer is one line
naming its URL. An error status becomes :class:`KubeApiError` with the API's
own message (its ``Status`` object).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from photonpack.deploy.errors import DeployError
from photonpack.deploy.kubeconfig import Cluster

__all__ = ["KubeApi", "KubeApiError"]

TIMEOUT = 10.0


class KubeApiError(DeployError):
    """The API server answered with an error status (``.status``, ``.reason``)."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _context(cluster: Cluster) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cadata=cluster.ca_data.decode() if cluster.ca_data else None
    )
    if cluster.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cluster.client_cert and cluster.client_key:
        # load_cert_chain reads files only: private ones, removed at once.
        with tempfile.TemporaryDirectory(prefix="photonpack-kube-") as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            for path, data in ((cert, cluster.client_cert), (key, cluster.client_key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            context.load_cert_chain(cert, key)
    return context


class KubeApi:
    """Calls to one cluster as one user."""

    def __init__(self, cluster: Cluster, *, timeout: float = TIMEOUT) -> None:
        self.cluster = cluster
        self.timeout = timeout
        parts = urllib.parse.urlsplit(cluster.server)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise DeployError(f"the cluster's server {cluster.server!r} is not an http(s) URL")
        self._parts = parts
        self._ssl = _context(cluster) if parts.scheme == "https" else None

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        host, port = self._parts.hostname or "", self._parts.port
        if self._ssl is not None:
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._ssl)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "photonpack"}
        if self.cluster.token:
            headers["Authorization"] = f"Bearer {self.cluster.token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _open(
        self, method: str, path: str, body: bytes | None, content_type: str | None, stream: bool
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        connection = self._connection(self.timeout)
        prefix = self._parts.path.rstrip("/")
        try:
            connection.request(
                method, prefix + path, body=body, headers=self._headers(content_type)
            )
            response = connection.getresponse()
            if stream and connection.sock is not None:
                connection.sock.settimeout(None)  # a followed log may be quiet for long
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise DeployError(
                f"the cluster at {self.cluster.server} does not answer within "
                f"{self.timeout:.0f} s ({type(exc).__name__}: {exc}); check the URL, the "
                f"network and the context ({self.cluster.context})"
            ) from exc
        if response.status >= 400:
            data = response.read()
            connection.close()
            raise _error(method, path, response.status, data)
        return connection, response

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
    ) -> Any:
        """One call; the decoded JSON answer (None when empty)."""
        data = json.dumps(body).encode() if body is not None else None
        connection, response = self._open(method, path, data, content_type if data else None, False)
        try:
            raw = response.read()
        finally:
            connection.close()
        if not raw:
            return None
        if "json" not in (response.getheader("Content-Type") or ""):
            return raw.decode(errors="replace")
        return json.loads(raw)

    def get(self, path: str) -> Any | None:
        """GET ``path``; None for 404."""
        try:
            return self.request("GET", path)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def lines(self, path: str) -> Iterator[str]:
        """A streamed text answer (``pods/NAME/log?follow=true``), line by line."""
        connection, response = self._open("GET", path, None, None, True)
        try:
            for raw in response:
                yield raw.decode(errors="replace").rstrip("\n")
        finally:
            connection.close()


def _error(method: str, path: str, status: int, data: bytes) -> KubeApiError:
    reason, message = "", data.decode(errors="replace").strip()[:300]
    try:
        parsed = json.loads(data)
        reason, message = parsed.get("reason", ""), parsed.get("message", message)
    except (ValueError, AttributeError):
        pass
    return KubeApiError(
        f"the cluster refused {method} {path.partition('?')[0]}: {status} {reason}: {message}",
        status=status,
        reason=reason,
    )
