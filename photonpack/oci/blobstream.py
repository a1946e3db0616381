"""A blob download: one GET whose body is read in bounded chunks, redirects followed.

Registries often answer a blob GET with a redirect to blob storage on another
host: it is followed on a connection of its own (never from HTTPS down to
plain HTTP), at most five times. The body is refused as soon as it is
announced or found to be longer than the manifest says. The registry client
hands in how to send its requests, so this module does not depend on it.
"""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Callable, Iterator

from photonpack.errors import IntegrityError, RegistryError
from photonpack.oci.transport import Transport, open_connection

__all__ = ["BlobStream"]

_READ_SIZE = 1024 * 1024


class BlobStream:
    """A GET whose body is read in bounded chunks; follows redirects to blob storage.

    ``start`` sends the authenticated GET of the blob; ``send(path)`` sends a
    GET on the registry's own connection; ``refuse(response, body)`` builds
    the error for an unexpected status; ``close`` drops the registry's
    connection when a body is left unread.
    """

    def __init__(
        self,
        registry: str,
        repository: str,
        digest: str,
        *,
        secure: bool,
        start: Callable[[], http.client.HTTPResponse],
        send: Callable[[str], http.client.HTTPResponse],
        refuse: Callable[[http.client.HTTPResponse, bytes], RegistryError],
        close: Callable[[], None],
        transport: Transport | None = None,
    ) -> None:
        self._registry = registry
        self._repository = repository
        self._digest = digest
        self._secure = secure
        self._start = start
        self._send = send
        self._refuse = refuse
        self._close = close
        self._transport = transport
        self._response: http.client.HTTPResponse | None = None
        self._other: http.client.HTTPConnection | None = None

    def __enter__(self) -> Callable[[int], Iterator[bytes]]:
        response = self._start()
        for _ in range(5):
            if response.status not in (301, 302, 303, 307, 308):
                break
            location = response.getheader("Location", "")
            response.read()
            response = self._follow(location)
        self._response = response
        if response.status == 404:
            response.read()
            raise RegistryError(
                f"{self._registry}/{self._repository} has no blob {self._digest}: "
                "the manifest refers to content the registry lost; push the photon again"
            )
        if response.status != 200:
            body = response.read(64 * 1024)
            raise self._refuse(response, body)
        return self._chunks

    def _follow(self, location: str) -> http.client.HTTPResponse:
        parsed = urllib.parse.urlsplit(location)
        if not parsed.netloc:
            return self._send(location)
        if parsed.scheme == "http" and self._secure:
            raise RegistryError(
                f"{self._registry} redirected a download to plain HTTP ({parsed.netloc}); "
                "refusing it"
            )
        self._other = open_connection(parsed.scheme, parsed.netloc, self._transport)
        target = urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))
        try:
            self._other.request("GET", target)
            return self._other.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryError(f"cannot reach blob storage {parsed.netloc}: {exc}") from exc

    def _chunks(self, limit: int) -> Iterator[bytes]:
        assert self._response is not None
        length = self._response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) >= limit:
            raise IntegrityError(
                f"{self._registry}/{self._repository} announced {length} bytes for blob "
                f"{self._digest}, more than the manifest lists; refusing it, nothing was kept"
            )
        read = 0
        while read < limit:
            try:
                chunk = self._response.read(min(_READ_SIZE, limit - read))
            except (OSError, http.client.HTTPException) as exc:
                raise RegistryError(
                    f"the download of {self._digest} from {self._registry} broke off: {exc}"
                ) from exc
            if not chunk:
                return
            read += len(chunk)
            yield chunk

    def __exit__(self, *exc: object) -> None:
        if self._other is not None:
            self._other.close()
        # A body we did not read to the end leaves the connection unusable.
        if self._response is not None and not self._response.isclosed():
            self._close()
