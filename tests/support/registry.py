"""A real OCI registry for tests: Debian's ``docker-registry`` (CNCF distribution).

Three flavours, each started once per session on 127.0.0.1 with its own
storage: anonymous, HTTP Basic (htpasswd), and Bearer tokens issued by a tiny
token server defined here (RS256 JWTs signed with ``openssl``, as the
distribution ``token`` auth expects). A tampering proxy lets tests serve
altered bytes through a real HTTP hop.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from photonpack.archive.manifest import Manifest
from tests.support.archives import make_lock
from tests.support.wheels import build_wheel

__all__ = [
    "PASSWORD",
    "USERNAME",
    "Registry",
    "StagedPhoton",
    "TamperingProxy",
    "auth_registry",
    "registry",
    "stage_photon",
    "token_registry",
]

USERNAME = "tester"
PASSWORD = "s3cret-pass"
# bcrypt of PASSWORD at the lowest cost (4): the registry checks it on every request.
_HTPASSWD = f"{USERNAME}:$2b$04$RyGOhc.YBFhqZAQ.BcpEpeG9eJfL1KOsIOIloE4UIH4fIq9.7HdQ.\n"
_SERVICE = "photonpack-test-registry"
_ISSUER = "photonpack-test-issuer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Registry:
    """A running registry; ``host`` is what goes in front of references."""

    host: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _wait_ready(host: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited:\n{log.read_text()}")
        conn = http.client.HTTPConnection(host, timeout=2)
        try:
            conn.request("GET", "/v2/")
            if conn.getresponse().status in (200, 401):
                return
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    raise RuntimeError(f"docker-registry did not start on {host}:\n{log.read_text()}")


def start_registry(root: Path, auth: str = "") -> Registry:
    """Start ``docker-registry serve`` with storage under ``root`` and the given auth block."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError("install Debian's docker-registry package (.ci/run does)")
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: photonpack-test-secret\n" + auth
    )
    log = root / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=out)
    host = f"127.0.0.1:{port}"
    try:
        _wait_ready(host, process, log)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return Registry(host=host, root=root, process=process, log=log)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenServer(http.server.ThreadingHTTPServer):
    key: Path
    cert_der: bytes
    issued: list[str]


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    server: _TokenServer

    def log_message(self, *_args: object) -> None:
        pass

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        self.server.issued += query.get("scope", [])
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self.server.cert_der).decode()],
        }
        claims = {
            "iss": _ISSUER,
            "sub": USERNAME,
            "aud": _SERVICE,
            "exp": now + 600,
            "nbf": now - 60,
            "iat": now - 60,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.server.key)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        body = json.dumps({"token": f"{signing_input}.{_b64url(signature)}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class TokenRegistry:
    registry: Registry
    tokens: _TokenServer

    @property
    def host(self) -> str:
        return self.registry.host


def _serve(server: http.server.HTTPServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


class _ProxyServer(http.server.ThreadingHTTPServer):
    upstream: str
    alter: Callable[[str, bytes], bytes]


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(self.server.upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if self.command == "GET":
            data = self.server.alter(self.path, data)
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _forward


class TamperingProxy:
    """A proxy in front of a registry whose ``alter(path, body)`` rewrites GET bodies."""

    def __init__(self, upstream: str, alter: Callable[[str, bytes], bytes]) -> None:
        self.server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.upstream = upstream
        self.server.alter = alter
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> TamperingProxy:
        _serve(self.server)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry, shared by the session (tests use distinct repositories)."""
    running = start_registry(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that requires HTTP Basic auth as USERNAME / PASSWORD."""
    root = tmp_path_factory.mktemp("auth-registry")
    (root / "htpasswd").write_text(_HTPASSWD)
    auth = f"auth:\n  htpasswd:\n    realm: photonpack-test\n    path: {root / 'htpasswd'}\n"
    running = start_registry(root, auth)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """A registry with Bearer token auth; the token server grants USERNAME every scope."""
    root = tmp_path_factory.mktemp("token-registry")
    key, cert = root / "key.pem", root / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=photonpack-test-tokens",
        ],
        check=True,
        capture_output=True,
    )
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], check=True, capture_output=True
    ).stdout
    tokens = _TokenServer(("127.0.0.1", 0), _TokenHandler)
    tokens.key, tokens.cert_der, tokens.issued = key, der, []
    _serve(tokens)
    realm = f"http://127.0.0.1:{tokens.server_address[1]}/token"
    auth = (
        f"auth:\n  token:\n    realm: {realm}\n    service: {_SERVICE}\n"
        f"    issuer: {_ISSUER}\n    rootcertbundle: {cert}\n"
    )
    running = start_registry(root, auth)
    yield TokenRegistry(registry=running, tokens=tokens)
    running.stop()
    tokens.shutdown()
    tokens.server_close()


@dataclass
class StagedPhoton:
    """A photon manifest with its blobs as ``blobs/<hex>`` files (what an archive holds)."""

    manifest: Manifest
    blobs: Path

    def blob_path(self, hex_: str) -> Path:
        return self.blobs / hex_


def stage_photon(
    directory: Path,
    name: str,
    wheels: list[tuple[str, str]],
    *,
    wheel_payload: int | Mapping[str, int] = 0,
    wheel_files: Mapping[str, Mapping[str, bytes]] | None = None,
    source: str = "",
    targets: Sequence[str] = ("cp311-manylinux_2_28_x86_64",),
    native: Collection[str] = (),
) -> StagedPhoton:
    """A valid photon with real wheels; the same (name, version) gives the same wheel bytes.

    The wheels are pure Python, for every target, but those of the ``native``
    projects: one wheel per target, tagged for its platform, whose
    ``<project>/_native.txt`` names the target.

    ``wheel_payload`` adds that many deterministic, incompressible bytes to each
    wheel (or per project name, as a mapping), to make transfers realistic in size;
    ``wheel_files`` adds files (path in the wheel -> bytes) to a project's wheel.
    """
    import hashlib as _h

    blobs = directory / name / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)

    def add(data: bytes) -> dict[str, object]:
        hex_ = _h.sha256(data).hexdigest()
        (blobs / hex_).write_bytes(data)
        return {"sha256": hex_, "size": len(data)}

    wheel_entries = []
    wheel_paths = []
    for project, version in sorted(wheels):
        files: dict[str, str | bytes] = {f"{project}/__init__.py": f"VERSION = {version!r}\n"}
        extra = wheel_payload if isinstance(wheel_payload, int) else wheel_payload[project]
        if extra:
            seed = f"{project}-{version}".encode()
            files[f"{project}/data.bin"] = _h.shake_256(seed).digest(extra)
        files.update((wheel_files or {}).get(project, {}))
        builds: list[tuple[str, list[str], dict[str, str | bytes]]] = [
            ("py3-none-any", sorted(targets), files)
        ]
        if project in native:
            builds = [
                (f"{t.split('-')[0]}-{t.split('-')[0]}-{t.split('-', 1)[1]}", [t],
                 {**files, f"{project}/_native.txt": f"{t}\n"})
                for t in targets
            ]  # fmt: skip
        for tag, fits, contents in builds:
            path = build_wheel(directory / "wheels", project, version, files=contents, tag=tag)
            wheel_paths.append(path)
            wheel_entries.append(
                {"filename": path.name, "name": project, "version": version, "targets": fits}
                | add(path.read_bytes())
            )
    lock = f"pylock.{name}.toml"
    lock_text = make_lock(wheel_paths, list(targets), Path(lock)).to_text()
    source_text = (
        source or f"from photonpack import Photon\n\nclass C(Photon):\n    pass  # {name}\n"
    )
    document = {
        "schema_version": 1,
        "name": name,
        "entry": f"{name}.py:C",
        "photon": {
            "requirement_dependency": [w[0] for w in sorted(wheels)],
            "system_dependency": [],
            "image": None,
        },
        "handlers": [],
        "openapi": None,
        "targets": sorted(targets),
        "lock": lock,
        "files": sorted(
            [
                {"path": f"{name}.py", "executable": False} | add(source_text.encode()),
                {"path": lock, "executable": False} | add(lock_text.encode()),
            ],
            key=lambda f: str(f["path"]),
        ),
        "runtime": [{"path": "photonpack/__init__.py", "executable": False} | add(b"# runtime\n")],
        "wheels": sorted(wheel_entries, key=lambda w: str(w["filename"])),
        "tools": {"photonpack": "0.1.0"},
    }
    return StagedPhoton(manifest=Manifest.from_dict(document), blobs=blobs)
