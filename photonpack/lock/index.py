"""Package index access: what files a project has (downloads: :mod:`photonpack.lock.download`).

Reads PEP 691 JSON pages (``hashes`` and the PEP 700 ``size``), PEP 503 HTML
pages (``#sha256=`` fragments) and ``--find-links`` directories or pages, so
a lock takes each wheel's digest from the index instead of downloading every
file to hash it. Every byte that is downloaded is checked against that digest.

While resolving, digests and sizes come from the pages pip already parsed
(:mod:`photonpack.lock.resolve`); :func:`list_files` serves the error messages
(which versions and wheel tags exist) and tests. Standard library only
(urllib): ``photonpack build`` fetches wheels without importing pip. The
transport is a small callable, so a test or a caller may substitute one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from photonpack._digest import CHUNK_SIZE, sha256_file
from photonpack.errors import PackageIndexError
from photonpack.lock.relative import (
    is_file_url,
    local_path,
    recorded,
    resolved_path,
    resolved_url,
)

if TYPE_CHECKING:
    import urllib.request

# urllib.request (ssl, http.client, email) and packaging are imported where they are
# used: photonpack lock on an up-to-date lock reads IndexSettings only, and must start fast.

__all__ = [
    "PYPI",
    "TIMEOUT",
    "DistFile",
    "IndexSettings",
    "Transport",
    "file_path",
    "is_local",
    "list_files",
    "measure",
    "redact_url",
    "request",
    "stream",
    "urllib_transport",
]

PYPI = "https://pypi.org/simple"
_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
TIMEOUT = 60.0
_WORKERS = 8


def redact_url(url: str) -> str:
    """``url`` without ``user:password@``: what may be written into a lock or a message."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexSettings:
    """Where packages come from: one index, extra indexes, find-links locations."""

    index_url: str = PYPI
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    pre: bool = False  # pre-releases too (``--pre`` in requirement_dependency)

    def redacted(self) -> IndexSettings:
        """The same settings without credentials."""
        return IndexSettings(
            index_url=redact_url(self.index_url),
            extra_index_urls=tuple(redact_url(u) for u in self.extra_index_urls),
            find_links=tuple(redact_url(u) for u in self.find_links),
            pre=self.pre,
        )

    def to_dict(self) -> dict[str, Any]:
        """The credential-free form stored in a lock's ``[tool.photonpack]``."""
        safe = self.redacted()
        table: dict[str, Any] = {
            "index-url": safe.index_url,
            "extra-index-urls": list(safe.extra_index_urls),
            "find-links": list(safe.find_links),
        }
        if self.pre:  # only when set: locks made before --pre keep their inputs digest
            table["pre"] = True
        return table

    def recorded(self, base: Path) -> IndexSettings:
        """The settings as a lock in ``base`` records them: local locations relative to it.

        A ``file://`` index URL becomes a relative URL reference (``mirror/simple``), a
        find-links directory or ``file://`` URL a relative path (pip reads both alike).
        """

        def index(url: str) -> str:
            path = local_path(url) if is_file_url(url) else None
            return url if path is None else recorded(path, base)

        def link(location: str) -> str:
            path = local_path(location)
            return location if path is None else recorded(path, base)

        return IndexSettings(
            index_url=index(self.index_url),
            extra_index_urls=tuple(index(u) for u in self.extra_index_urls),
            find_links=tuple(link(u) for u in self.find_links),
            pre=self.pre,
        )

    def resolved(self, base: Path) -> IndexSettings:
        """The inverse of :meth:`recorded`: relative locations made absolute against ``base``."""
        return IndexSettings(
            index_url=resolved_url(self.index_url, base),
            extra_index_urls=tuple(resolved_url(u, base) for u in self.extra_index_urls),
            find_links=tuple(u if "://" in u else resolved_path(u, base) for u in self.find_links),
            pre=self.pre,
        )

    def locations(self) -> list[str]:
        """Every configured location, for error messages (credentials removed)."""
        safe = self.redacted()
        return [safe.index_url, *safe.extra_index_urls, *safe.find_links]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DistFile:
    """One file an index offers for a project."""

    filename: str
    url: str
    sha256: str | None
    size: int | None
    yanked: bool = False
    requires_python: str | None = None

    @property
    def is_wheel(self) -> bool:
        """Whether the file is a wheel (not an sdist)."""
        return self.filename.endswith(".whl")

    def version(self) -> str | None:
        """The version in the filename, or None when the name is not a distribution."""
        from packaging.utils import (
            InvalidSdistFilename,
            InvalidWheelFilename,
            parse_sdist_filename,
            parse_wheel_filename,
        )

        try:
            if self.is_wheel:
                return str(parse_wheel_filename(self.filename)[1])
            return str(parse_sdist_filename(self.filename)[1])
        except (InvalidWheelFilename, InvalidSdistFilename):
            return None


class Transport(Protocol):
    """GET ``url`` with ``headers``; return (body, content type, final URL)."""

    def __call__(self, url: str, headers: Mapping[str, str]) -> tuple[bytes, str, str]: ...


def request(url: str, headers: Mapping[str, str], method: str = "GET") -> urllib.request.Request:
    import base64
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    request = urllib.request.Request(redact_url(url), headers=dict(headers), method=method)  # noqa: S310
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def urllib_transport(url: str, headers: Mapping[str, str]) -> tuple[bytes, str, str]:
    """The default transport: urllib, credentials from the URL as basic auth."""
    import urllib.request

    with urllib.request.urlopen(request(url, headers), timeout=TIMEOUT) as response:  # noqa: S310
        return response.read(), response.headers.get("Content-Type", ""), response.geturl()


def list_files(
    names: Sequence[str], settings: IndexSettings, *, transport: Transport = urllib_transport
) -> dict[str, list[DistFile]]:
    """Every file each project offers, over all configured locations, fetched in parallel."""
    import concurrent.futures

    from packaging.utils import canonicalize_name

    wanted = sorted({canonicalize_name(n) for n in names})
    local = _local_find_links(settings.find_links, set(wanted))
    remote_links = [u for u in settings.find_links if not is_local(u)]
    pages: list[tuple[str, str]] = [
        (name, base.rstrip("/") + f"/{name}/")
        for name in wanted
        for base in (settings.index_url, *settings.extra_index_urls)
    ]
    pages += [(name, url) for name in wanted for url in remote_links]
    found: dict[str, list[DistFile]] = {name: list(local.get(name, [])) for name in wanted}
    with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
        results = pool.map(lambda item: _page_files(item[1], transport), pages)
        for (name, _), files in zip(pages, results, strict=True):
            found[name] += [f for f in files if _project_of(f.filename) == name]
    return found


def _page_files(url: str, transport: Transport) -> list[DistFile]:
    import urllib.error

    if url.startswith("file:"):
        return _file_url_page(url)
    try:
        body, content_type, final_url = transport(url, {"Accept": _ACCEPT})
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        if exc.code in (401, 403):
            raise PackageIndexError(
                f"package index {redact_url(url)} refused access (HTTP {exc.code}); "
                "give credentials in the URL: --index-url https://USER:PASSWORD@host/simple"
            ) from exc
        raise _unreachable(url, f"HTTP {exc.code} {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise _unreachable(url, str(exc)) from exc
    return parse_page(body, content_type, final_url)


def _file_url_page(url: str) -> list[DistFile]:
    path = file_path(url)
    if path.is_dir() and (path / "index.html").is_file():
        return parse_page((path / "index.html").read_bytes(), "text/html", path.as_uri() + "/")
    if path.is_dir():
        return [_local_file(p) for p in sorted(path.iterdir()) if p.is_file()]
    return []


def _unreachable(url: str, reason: str) -> PackageIndexError:
    return PackageIndexError(
        f"package index {redact_url(url)} is unreachable: {reason}; "
        "for an internal mirror pass --index-url URL, or --find-links DIR for a directory of wheels"
    )


def parse_page(body: bytes, content_type: str, page_url: str) -> list[DistFile]:
    """Files listed on a PEP 691 JSON or PEP 503 HTML project page."""
    import json

    if content_type.split(";", maxsplit=1)[0].strip() == _JSON:
        data = json.loads(body)
        return [_json_file(entry, page_url) for entry in data.get("files", [])]
    return [_html_file(href, attrs, page_url) for href, attrs in _links(body)]


def _json_file(entry: Mapping[str, Any], page_url: str) -> DistFile:
    size = entry.get("size")
    return DistFile(
        filename=str(entry["filename"]),
        url=urllib.parse.urljoin(page_url, str(entry["url"])).partition("#")[0],
        sha256=(entry.get("hashes") or {}).get("sha256"),
        size=size if isinstance(size, int) else None,
        yanked=bool(entry.get("yanked")),
        requires_python=entry.get("requires-python") or None,
    )


def _html_file(href: str, attrs: Mapping[str, str | None], page_url: str) -> DistFile:
    url, _, fragment = urllib.parse.urljoin(page_url, href).partition("#")
    algorithm, _, digest = fragment.partition("=")
    filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rpartition("/")[2])
    return DistFile(
        filename=filename,
        url=url,
        sha256=digest if algorithm == "sha256" and digest else None,
        size=None,
        yanked="data-yanked" in attrs,
        requires_python=attrs.get("data-requires-python") or None,
    )


def _links(body: bytes) -> list[tuple[str, dict[str, str | None]]]:
    import html.parser

    links: list[tuple[str, dict[str, str | None]]] = []

    class LinkParser(html.parser.HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if tag == "a" and found.get("href"):
                links.append((str(found["href"]), found))

    LinkParser().feed(body.decode("utf-8", errors="replace"))
    return links


def _project_of(filename: str) -> str | None:
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        canonicalize_name,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            return canonicalize_name(parse_wheel_filename(filename)[0])
        return canonicalize_name(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def is_local(location: str) -> bool:
    return "://" not in location


def _local_find_links(locations: Sequence[str], wanted: set[str]) -> dict[str, list[DistFile]]:
    found: dict[str, list[DistFile]] = {}
    for location in locations:
        if not is_local(location):
            continue
        directory = Path(location)
        if not directory.is_dir():
            raise PackageIndexError(
                f"find-links directory {location} does not exist; "
                "pass --find-links with a directory of wheels or an index URL"
            )
        for path in sorted(directory.iterdir()):
            name = _project_of(path.name) if path.is_file() else None
            if name in wanted:
                found.setdefault(name, []).append(_local_file(path))
    return found


def _local_file(path: Path) -> DistFile:
    # A plain directory publishes no digests: hash the files here, they are local.
    digest, size = sha256_file(path)
    return DistFile(filename=path.name, url=path.resolve().as_uri(), sha256=digest, size=size)


def head_size(url: str) -> int:
    """The size of a remote file, for PEP 503 pages that do not publish it."""
    import urllib.request

    if url.startswith("file:"):
        return file_path(url).stat().st_size
    try:
        with urllib.request.urlopen(request(url, {}, "HEAD"), timeout=TIMEOUT) as response:  # noqa: S310
            length = response.headers.get("Content-Length")
    except (OSError, ValueError) as exc:
        raise _unreachable(url, str(exc)) from exc
    if length is None or not length.isdigit():
        raise PackageIndexError(
            f"{redact_url(url)} has no Content-Length and its index publishes no size; "
            "use an index that serves PEP 691 JSON, or --find-links with a local directory"
        )
    return int(length)


def measure(file: DistFile) -> DistFile:
    """``file`` with its sha256 and size, fetched only when the index did not publish them."""
    if file.sha256 is not None and file.size is not None:
        return file
    if file.sha256 is not None:
        return dataclasses.replace(file, size=head_size(file.url))
    sha = hashlib.sha256()
    size = 0
    for chunk in stream(file.url):
        sha.update(chunk)
        size += len(chunk)
    return dataclasses.replace(file, sha256=sha.hexdigest(), size=size)


def file_path(url: str) -> Path:
    import urllib.request

    return Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))


def stream(url: str) -> Iterator[bytes]:
    import urllib.error
    import urllib.request

    if is_local(url) or url.startswith("file:"):
        path = file_path(url) if url.startswith("file:") else Path(url)
        try:
            with path.open("rb") as stream:
                while chunk := stream.read(CHUNK_SIZE):
                    yield chunk
        except OSError as exc:
            raise PackageIndexError(f"cannot read wheel {path}: {exc.strerror or exc}") from exc
        return
    try:
        with urllib.request.urlopen(request(url, {}), timeout=TIMEOUT) as response:  # noqa: S310
            while chunk := response.read(CHUNK_SIZE):
                yield chunk
    except urllib.error.HTTPError as exc:
        raise PackageIndexError(
            f"downloading {redact_url(url)} failed: HTTP {exc.code} {exc.reason}; "
            "check that the index still serves the locked file"
        ) from exc
    except (OSError, ValueError) as exc:
        raise _unreachable(url, str(exc)) from exc
