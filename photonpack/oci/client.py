"""A small client for the OCI distribution API: blobs, manifests, tags.

Standard library only (``http.client``): the registry protocol is a handful of
plain HTTP calls, and every byte that comes back is re-hashed by the caller's
side of this module, never taken on the registry's word (``Docker-Content-Digest``
is ignored). Authentication follows the distribution spec: anonymous, HTTP
Basic, or the Bearer token handshake announced by ``WWW-Authenticate``
(``auth.py``), with the login given or else the one in the auth files other
tools share (``authfile.py``); connections honour proxies and CA bundles
(``transport.py``); blob downloads stream through ``blobstream.py``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import stat
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Protocol

from photonpack.errors import IntegrityError, RegistryError
from photonpack.oci.auth import Auth
from photonpack.oci.authfile import AuthFiles
from photonpack.oci.blobstream import BlobStream
from photonpack.oci.credentials import LOCAL_HOSTS, Credentials
from photonpack.oci.progress import ProgressFn, Transfer
from photonpack.oci.response import Response, error_detail, next_link, response_with
from photonpack.oci.transport import Transport, open_connection
from photonpack.oci.upload import BlobUpload

__all__ = [
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Credentials",
    "ProgressFn",
    "RegistryClient",
    "Transfer",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
# The most bytes one PATCH of an upload carries. Each PATCH streams (upload.py), so this
# bounds no memory, only the size of one request. Pushing the torch wheel (555 MB) by
# sendfile to docker-registry, three rounds alternated: 8 MiB PATCHes 4.95-6.03 s,
# 64 MiB 3.63-3.80 s, one PATCH of it all 3.12-5.26 s (the registry's CPU 2.3-3.0 s
# in every case: it hashes and writes every byte).
CHUNK_SIZE = 64 << 20
# The distribution spec lets registries refuse manifests over 4 MiB; we refuse
# to read more than that, so a hostile registry cannot exhaust memory.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


# An upload read from a stream that is not a regular file goes in reads of this size.
_READ_SIZE = 1024 * 1024


def _regular_file(stream: BinaryIO) -> bool:
    """Whether ``stream`` is an open regular file (the kernel can send it: ``sendfile``)."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, AttributeError, ValueError):
        return False


class Writable(Protocol):
    """Where a download goes: a file, or several (``write`` takes every chunk)."""

    def write(self, data: bytes, /) -> object: ...


class RegistryClient:
    """One registry host. Reuses one connection; authenticates on demand."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        timeout: float = 60.0,
        ca_file: Path | None = None,
        auth_files: AuthFiles | None = None,
    ) -> None:
        """``credentials`` win; without them the login comes from ``auth_files``
        (default: the files of this environment), asked only when the registry wants one.
        ``ca_file`` is a PEM bundle trusted instead of the system's store.
        """
        plain = urllib.parse.urlsplit("//" + registry).hostname in LOCAL_HOSTS or insecure
        self.registry = registry
        self.scheme = "http" if plain else "https"
        self._transport = Transport(ca_file=ca_file, timeout=timeout)
        self._conn: http.client.HTTPConnection | None = None
        files = auth_files or AuthFiles()
        self._auth = Auth(
            registry=registry,
            scheme=self.scheme,
            credentials=credentials,
            transport=self._transport,
            lookup=lambda: files.lookup(registry),
        )

    # -- public API -----------------------------------------------------

    def check_login(self) -> None:
        """GET ``/v2/`` with the login, as ``docker login`` does; a refusal is a RegistryError."""
        response = self._request("GET", "/v2/", "")
        if response.status != 200:
            raise self._error(response, "checking the login")

    def has_blob(self, repository: str, digest: str) -> bool:
        """True if the registry holds ``digest`` in ``repository`` (HEAD)."""
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", repository)
        if response.status == 200:
            return True
        if response.status == 404:
            return False
        raise self._error(response, f"checking blob {digest} in {repository}")

    def mount_blob(self, repository: str, digest: str, source: str) -> bool:
        """Ask the registry to link ``digest`` from ``source`` repo; True if it did."""
        query = urllib.parse.urlencode({"mount": digest, "from": source})
        response = self._request(
            "POST", f"/v2/{repository}/blobs/uploads/?{query}", repository, push=True
        )
        if response.status == 201:
            return True
        if response.status == 202:
            self._cancel(response, repository)
            return False
        raise self._error(response, f"mounting blob {digest} from {source}")

    def upload_blob(
        self,
        repository: str,
        *,
        digest: str,
        size: int,
        stream: BinaryIO,
        title: str = "",
        progress: ProgressFn | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        """Upload ``size`` bytes read from ``stream`` as ``digest``: one PUT, or PATCHes.

        From a regular file the kernel sends the bytes (``sendfile``); from any
        other stream they are read in chunks of at most 1 MiB.
        """
        upload = self.start_upload(
            repository, digest=digest, size=size, title=title, progress=progress,
            chunk_size=chunk_size,
        )  # fmt: skip
        try:
            if _regular_file(stream):
                upload.write_from(stream)
            else:
                # One byte more than the blob is asked for, so a stream that grew is noticed.
                while upload.received <= size and (
                    chunk := stream.read(min(chunk_size, _READ_SIZE, size + 1 - upload.received))
                ):
                    upload.write(chunk)
        except BaseException:
            upload.cancel()
            raise
        upload.finish()

    def start_upload(
        self,
        repository: str,
        *,
        digest: str,
        size: int,
        title: str = "",
        progress: ProgressFn | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> BlobUpload:
        """Open an upload of ``digest``, fed by ``write`` calls (see ``upload.py``)."""
        return BlobUpload(
            self, repository, digest=digest, size=size, title=title, progress=progress,
            chunk_size=chunk_size,
        )  # fmt: skip

    def put_manifest(
        self, repository: str, reference: str, body: bytes, media_type: str
    ) -> Mapping[str, str]:
        """PUT a manifest under a tag or digest; the answer's headers (lower-case names)."""
        response = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            repository,
            push=True,
            body=body,
            headers={"Content-Type": media_type},
        )
        if response.status != 201:
            raise self._error(response, f"pushing the manifest {repository}:{reference}")
        return response.headers

    def find_manifest(
        self, repository: str, reference: str, *, accept: str = OCI_MANIFEST
    ) -> tuple[str, bytes] | None:
        """Like :meth:`get_manifest`, but None when the registry has no such manifest."""
        response = self._request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            repository,
            headers={"Accept": accept},
            limit=MAX_MANIFEST_BYTES,
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._error(response, f"fetching the manifest {repository}:{reference}")
        return response.headers.get("content-type", "").split(";")[0].strip(), response.body

    def get_referrers(self, repository: str, digest: str) -> bytes | None:
        """The referrers API's image index for ``digest``; None if the registry lacks the API."""
        response = self._request(
            "GET",
            f"/v2/{repository}/referrers/{digest}",
            repository,
            headers={"Accept": OCI_INDEX},
            limit=MAX_MANIFEST_BYTES,
        )
        if response.status == 200 and response.headers.get("content-type", "").startswith(
            OCI_INDEX
        ):
            return response.body
        if response.status in (200, 400, 404, 405):
            return None
        raise self._error(response, f"listing the referrers of {digest}")

    def get_manifest(
        self, repository: str, reference: str, *, accept: str = OCI_MANIFEST
    ) -> tuple[str, bytes]:
        """GET a manifest by tag or digest: (media type, raw bytes); digests checked by caller.

        ``accept`` lists the media types wanted (comma-separated), e.g. image indexes too.
        """
        found = self.find_manifest(repository, reference, accept=accept)
        if found is None:
            raise RegistryError(
                f"{self.registry}/{repository} has no manifest {reference!r}: "
                f"check the tag with `photonpack list --remote {self.registry}/{repository}`"
            )
        return found

    def list_tags(self, repository: str, *, page_size: int = 1000) -> list[str]:
        """Every tag of ``repository``, following ``Link: <...>; rel="next"`` pages."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        while path:
            response = self._request("GET", path, repository, limit=MAX_MANIFEST_BYTES)
            if response.status == 404:
                raise RegistryError(
                    f"{self.registry}/{repository} does not exist: check the repository name"
                )
            if response.status != 200:
                raise self._error(response, f"listing the tags of {repository}")
            try:
                page = json.loads(response.body)
                tags += [str(t) for t in page.get("tags") or []]
            except (ValueError, AttributeError, TypeError) as exc:
                raise RegistryError(
                    f"{self.registry} answered the tag list of {repository} with something "
                    "that is not the JSON the distribution spec describes"
                ) from exc
            path = next_link(response.headers.get("link", ""))
        return sorted(set(tags))

    def fetch_blob(
        self,
        repository: str,
        *,
        digest: str,
        size: int,
        out: Writable,
        title: str = "",
        progress: ProgressFn | None = None,
    ) -> None:
        """Stream blob ``digest`` into ``out``, refusing more than ``size`` bytes or other bytes."""
        report = progress or (lambda _t: None)
        hasher = hashlib.sha256()
        done = 0
        with self._stream(f"/v2/{repository}/blobs/{digest}", repository, digest) as chunks:
            report(Transfer(digest=digest, title=title, done=0, total=size))
            for chunk in chunks(size + 1):
                done += len(chunk)
                if done > size:
                    raise IntegrityError(
                        f"{self.registry}/{repository} served more than the {size} bytes that "
                        f"the manifest lists for {title or digest}; refusing it, nothing was kept"
                    )
                hasher.update(chunk)
                out.write(chunk)
                report(Transfer(digest=digest, title=title, done=done, total=size))
        found = "sha256:" + hasher.hexdigest()
        if done != size or found != digest:
            raise IntegrityError(
                f"{self.registry}/{repository} served {done} bytes hashing to {found} for "
                f"{title or 'a blob'}, expected {size} bytes with {digest}; refusing it, "
                "nothing was kept"
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- HTTP -------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = open_connection(self.scheme, self.registry, self._transport)
        return self._conn

    def _send(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> http.client.HTTPResponse:
        """One request on the kept connection; retried once on a fresh one if it went stale."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt == 2:
                    raise self._unreachable(exc) from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self._unreachable(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _begin_body(
        self, method: str, path: str, repository: str, length: int, headers: Mapping[str, str]
    ) -> None:
        """Send the head of a push request whose ``length``-byte body follows (``_send_body``).

        A streamed body cannot be sent twice: the login is the one the upload's
        POST settled, so a 401 here is an error, not a new handshake.
        """
        sent = {**headers, "Content-Length": str(length)}
        auth = self._auth.header(f"repository:{repository}:pull,push")
        if auth:
            sent["Authorization"] = auth
        try:
            self._connection().request(method, path, headers=sent)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise self._unreachable(exc) from exc

    def _send_body(self, data: bytes | memoryview) -> None:
        """The next bytes of the body ``_begin_body`` announced."""
        try:
            self._connection().send(data)
        except OSError as exc:
            self.close()
            raise self._unreachable(exc) from exc

    def _send_file(self, fh: BinaryIO, offset: int, count: int) -> int:
        """``count`` bytes of the body from ``fh`` at ``offset`` (``sendfile``); how many went."""
        sock = self._connection().sock
        try:
            if sock is None:
                raise ConnectionResetError("the connection closed")
            return int(sock.sendfile(fh, offset, count))
        except OSError as exc:
            self.close()
            raise self._unreachable(exc) from exc

    def _end_body(self, limit: int = 64 * 1024) -> Response:
        """The answer to the request whose body was just sent, read up to ``limit`` bytes."""
        try:
            raw = self._connection().getresponse()
            data = raw.read(limit + 1)
            raw.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise self._unreachable(exc) from exc
        if len(data) > limit:
            raise RegistryError(f"{self.registry} answered an upload with more than {limit} bytes")
        return response_with(raw, data)

    def _unreachable(self, exc: BaseException) -> RegistryError:
        reason = exc.reason if isinstance(exc, ssl.SSLError) else (str(exc) or type(exc).__name__)
        hint = ""
        if isinstance(exc, ssl.SSLError) and self.scheme == "https":
            hint = "; if it serves plain HTTP, pass --insecure"
        if isinstance(exc, socket.timeout):
            reason = "timed out"
        return RegistryError(
            f"cannot reach registry {self.scheme}://{self.registry}: {reason}{hint}"
        )

    def _path(self, target: str) -> str:
        """A path on this registry from a Location header (relative or absolute URL)."""
        if target.startswith("/"):
            return target
        parsed = urllib.parse.urlsplit(target)
        if parsed.netloc and parsed.netloc != self.registry:
            raise RegistryError(
                f"{self.registry} redirected an upload to another host ({parsed.netloc}); "
                "photonpack only uploads to the registry it was given"
            )
        return urllib.parse.urlunsplit(("", "", parsed.path, parsed.query, ""))

    def _location(self, response: Response) -> str:
        location = response.headers.get("location")
        if not location:
            raise RegistryError(
                f"{self.registry} accepted an upload without a Location header, "
                "which the OCI distribution spec requires"
            )
        return self._path(location)

    def _request(
        self,
        method: str,
        path: str,
        repository: str,
        *,
        push: bool = False,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        limit: int = 64 * 1024,
    ) -> Response:
        """A request with auth; the body is read fully, up to ``limit`` bytes."""
        raw = self._authed(method, path, repository, push=push, body=body, headers=headers or {})
        data = raw.read(limit + 1) if method != "HEAD" else b""
        raw.read()
        if len(data) > limit:
            raise RegistryError(
                f"{self.registry} answered {method} {path.partition('?')[0]} with more than "
                f"{limit} bytes; refusing it"
            )
        return response_with(raw, data)

    def _authed(
        self,
        method: str,
        path: str,
        repository: str,
        *,
        push: bool,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> http.client.HTTPResponse:
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}" if repository else ""
        sent = dict(headers)
        if body is not None:
            sent["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            auth = self._auth.header(scope)
            if auth:
                sent["Authorization"] = auth
            raw = self._send(method, path, body, sent)
            if raw.status != 401 or attempt == 2:
                return raw
            challenge = raw.getheader("WWW-Authenticate", "")
            raw.read()
            self._auth.login(challenge, scope)
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, response: Response, doing: str) -> RegistryError:
        if response.status == 401:
            return self._auth.denied(401)
        if response.status == 403:
            credentials = self._auth.credentials
            who = f" {credentials.username!r}" if credentials else " anonymous users"
            return RegistryError(
                f"{self.registry} denied{who} access while {doing} (HTTP 403): "
                "ask for push/pull rights on the repository"
            )
        detail = error_detail(response.body)
        return RegistryError(
            f"{self.registry} failed while {doing}: HTTP {response.status}{detail}"
        )

    def _cancel(self, response: Response, repository: str) -> None:
        location = response.headers.get("location")
        if location:
            self._request("DELETE", self._path(location), repository, push=True)

    def _stream(self, path: str, repository: str, digest: str) -> BlobStream:
        return BlobStream(
            self.registry,
            repository,
            digest,
            secure=self.scheme == "https",
            transport=self._transport,
            start=lambda: self._authed("GET", path, repository, push=False, body=None, headers={}),
            send=lambda location: self._send("GET", location, None, {}),
            refuse=lambda response, body: self._error(
                response_with(response, body), f"fetching blob {digest}"
            ),
            close=self.close,
        )
