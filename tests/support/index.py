"""A real package index on 127.0.0.1 for tests: PEP 503 HTML and PEP 691 JSON.

``PackageIndex`` serves wheels built with :mod:`tests.support.wheels` (or any
file added to it) at ``index.url`` (the simple API root) and their bytes at
``/files/<filename>``. JSON pages carry ``hashes`` and the PEP 700 ``size``
(api-version 1.1); HTML pages carry ``#sha256=`` fragments. ``tamper()`` makes
the server send other bytes for a file while its pages keep the original
digest, as a compromised mirror would; ``write_pages()`` writes the HTML pages to
disk, for a ``file://`` index. Other areas use the ``package_index``
fixture and ``add_serving_stack()`` for an index that can lock any photon;
``auth=(user, password)`` makes it a private index that answers 401 without them.
``ranges`` says how it answers an HTTP ``Range`` for a file: "ignore" (a 200 with the
whole body, as many servers do), "honour" (a 206, like PyPI's CDN) or "short" (a 206 with
half the bytes asked for); ``served`` counts the bytes of each file sent, and
``lie_in_ranges()`` answers ranges from other bytes than the whole file's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import http.server
import json
import shutil
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from photonpack.serving.requirements import SERVING_REQUIREMENTS
from tests.support.wheels import build_wheel

__all__ = ["PackageIndex", "add_serving_stack", "package_index", "serving_index"]

_JSON = "application/vnd.pypi.simple.v1+json"


class PackageIndex:
    """Files in a directory, served as a simple index by a thread on 127.0.0.1."""

    def __init__(
        self, root: Path, *, html_only: bool = False, auth: tuple[str, str] | None = None
    ) -> None:
        self.files_dir = root / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.html_only = html_only
        self.auth = auth
        self.requests: list[str] = []
        # Serve ``<wheel>.metadata`` without advertising it on the pages (as some mirrors do),
        # with the bytes of ``_metadata`` instead of the wheel's own METADATA where given.
        self.unadvertised_metadata = False
        self._metadata: dict[str, bytes] = {}
        self.ranges = "ignore"
        self.served: dict[str, int] = {}
        self._tampered: dict[str, bytes] = {}
        self._ranged: dict[str, bytes] = {}
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The simple API root, for ``--index-url``."""
        return f"{self.root_url}/simple"

    def start(self) -> PackageIndex:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def add(
        self,
        name: str,
        version: str,
        *,
        requires: Sequence[str] = (),
        tag: str = "py3-none-any",
        requires_python: str | None = None,
        provides_extras: Sequence[str] = (),
    ) -> Path:
        """Build a wheel into the index and return its path."""
        lines = list(requires)
        if provides_extras:
            # build_wheel writes each requirement as one METADATA line; ride along on the
            # last one to declare the extras (pip ignores an extra that is not provided).
            lines[-1] += "".join(f"\nProvides-Extra: {extra}" for extra in provides_extras)
        return build_wheel(
            self.files_dir,
            name,
            version,
            requires=lines,
            tag=tag,
            requires_python=requires_python,
        )

    def add_sdist(self, name: str, version: str) -> Path:
        """An sdist-only release that is not a real archive: locking must refuse to read it."""
        path = self.files_dir / f"{canonicalize_name(name).replace('-', '_')}-{version}.tar.gz"
        path.write_bytes(b"not really a tarball")
        return path

    def add_file(self, path: Path) -> Path:
        """Serve a copy of an existing wheel or sdist."""
        return Path(shutil.copy2(path, self.files_dir / path.name))

    def tamper(self, filename: str, data: bytes = b"tampered bytes") -> None:
        """Serve ``data`` for ``filename`` while the pages keep the original digest."""
        self._tampered[filename] = data

    def lie_in_ranges(self, filename: str, data: bytes) -> None:
        """Answer range requests for ``filename`` from ``data``; the whole file stays true."""
        self._ranged[filename] = data

    def serve_metadata(self, filename: str, data: bytes) -> None:
        """Serve ``data`` as ``filename``'s ``.metadata`` file (a lying mirror, say)."""
        self._metadata[filename] = data

    def _metadata_of(self, filename: str) -> bytes | None:
        if filename in self._metadata:
            return self._metadata[filename]
        path = self.files_dir / filename
        if not (self.unadvertised_metadata and path.is_file() and filename.endswith(".whl")):
            return None
        import zipfile

        with zipfile.ZipFile(path) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            return zf.read(meta)

    def write_pages(self) -> str:
        """Write the HTML pages beside ``files/`` as a PEP 503 tree on disk (a mirror copied
        to an air-gapped machine) and return its ``file://`` URL; call again after adding."""
        root = self.files_dir.parent / "simple"
        for project in self._projects():
            page = root / project / "index.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_bytes(self._page(project, as_json=False)[0])
        return root.as_uri()

    def file_url(self, filename: str) -> str:
        return f"{self.root_url}/files/{urllib.parse.quote(filename)}"

    def _projects(self) -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for path in sorted(self.files_dir.iterdir()):
            if path.name.endswith(".whl"):
                name = parse_wheel_filename(path.name)[0]
            else:
                name = parse_sdist_filename(path.name)[0]
            found.setdefault(canonicalize_name(name), []).append(path)
        return found

    def _requires_python(self, path: Path) -> str | None:
        if not path.name.endswith(".whl"):
            return None
        import zipfile

        with zipfile.ZipFile(path) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            for line in zf.read(meta).decode().splitlines():
                if line.startswith("Requires-Python:"):
                    return line.partition(":")[2].strip()
        return None

    def _page(self, project: str, as_json: bool) -> tuple[bytes, str]:
        files = self._projects().get(canonicalize_name(project), [])
        entries = []
        for path in files:
            data = path.read_bytes()
            entries.append(
                {
                    "filename": path.name,
                    "url": f"../../files/{urllib.parse.quote(path.name)}",
                    "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                    "size": len(data),
                    "requires-python": self._requires_python(path),
                }
            )
        if as_json:
            body = {
                "meta": {"api-version": "1.1"},
                "name": project,
                "files": entries,
                "versions": [],
            }
            return json.dumps(body).encode(), _JSON
        links = []
        for entry in entries:
            rp = entry["requires-python"]
            attr = f' data-requires-python="{html.escape(str(rp))}"' if rp else ""
            href = f"{entry['url']}#sha256={entry['hashes']['sha256']}"  # type: ignore[index]
            links.append(f'<a href="{href}"{attr}>{entry["filename"]}</a><br>')
        page = "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n"
        return page.encode(), "text/html"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._respond(head=True)

            def do_GET(self) -> None:
                self._respond(head=False)

            def _respond(self, *, head: bool) -> None:
                index.requests.append(self.path)
                if index.auth is not None:
                    token = base64.b64encode(":".join(index.auth).encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {token}":
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="test"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                parts = [p for p in urllib.parse.urlsplit(self.path).path.split("/") if p]
                if len(parts) == 2 and parts[0] == "simple":
                    as_json = _JSON in self.headers.get("Accept", "") and not index.html_only
                    body, kind = index._page(parts[1], as_json)
                    if body and (as_json or b"<a " in body):
                        return self._send(200, body, kind, head)
                    return self._send(404, b"not found", "text/plain", head)
                if len(parts) == 2 and parts[0] == "files":
                    filename = urllib.parse.unquote(parts[1])
                    if filename.endswith(".metadata"):
                        metadata = index._metadata_of(filename.removesuffix(".metadata"))
                        if metadata is not None:
                            return self._send(200, metadata, "application/octet-stream", head)
                    path = index.files_dir / filename
                    if path.is_file():
                        data = index._tampered.get(filename) or path.read_bytes()
                        asked = self.headers.get("Range", "")
                        if index.ranges != "ignore" and asked.startswith("bytes="):
                            data = index._ranged.get(filename, data)
                            return self._send_range(filename, data, asked, head)
                        index.served[filename] = index.served.get(filename, 0) + len(data)
                        return self._send(200, data, "application/octet-stream", head)
                return self._send(404, b"not found", "text/plain", head)

            def _send_range(self, filename: str, data: bytes, asked: str, head: bool) -> None:
                first, _, last = asked.removeprefix("bytes=").partition("-")
                start, end = int(first), min(int(last or len(data) - 1), len(data) - 1)
                if start > end:
                    return self._send(416, b"", "text/plain", head)
                body = data[start : end + 1]
                if index.ranges == "short":
                    body = body[: len(body) // 2]
                index.served[filename] = index.served.get(filename, 0) + len(body)
                extra = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
                return self._send(206, body, "application/octet-stream", head, extra)

            def _send(
                self,
                status: int,
                body: bytes,
                kind: str,
                head: bool,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for header, value in (headers or {}).items():
                    self.send_header(header, value)
                self.end_headers()
                if not head:
                    # A client may read the headers only (of a 200 to a Range) and hang up.
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(body)

        return Handler


def add_serving_stack(index: PackageIndex) -> None:
    """Stand-in wheels for photonpack's serving requirements, so any photon locks offline."""
    for line in SERVING_REQUIREMENTS:
        requirement = Requirement(line)
        floor = [s.version for s in requirement.specifier if s.operator in (">=", "==")]
        index.add(requirement.name, floor[0] if floor else "1.0")


@pytest.fixture
def package_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """An empty index on a free port, stopped after the test."""
    index = PackageIndex(tmp_path_factory.mktemp("index")).start()
    try:
        yield index
    finally:
        index.stop()


@pytest.fixture(scope="session")
def serving_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """One index for the whole session with stand-ins for the serving stack; add, never remove."""
    index = PackageIndex(tmp_path_factory.mktemp("serving-index")).start()
    add_serving_stack(index)
    try:
        yield index
    finally:
        index.stop()
