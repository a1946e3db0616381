"""How push reaches a registry: shared blobs mounted, proxies, and a site's own CA."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import write_archive
from photonpack.cli import cli
from tests.support.proxy import ConnectProxy, RecordingProxy
from tests.support.registry import Registry, free_port, stage_photon

SHARED = [("alpha", "1.0"), ("beta", "2.0"), ("gamma", "3.0")]


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transport-archive")
    staged = stage_photon(root, "shared", SHARED)
    path = root / "shared.photon"
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def _uploads(seen: list[tuple[str, str]]) -> list[str]:
    """The blob PUTs: one per blob whose bytes were sent."""
    return [path for method, path in seen if method == "PUT" and "/blobs/uploads/" in path]


def test_a_second_repository_gets_the_shared_blobs_by_mount(
    registry: Registry, archive: Path
) -> None:
    with RecordingProxy(registry.host) as proxy:
        first = _run("push", str(archive), f"{proxy.host}/mount/one:v1")
        assert first.exit_code == 0, first.output
        assert len(_uploads(proxy.seen)) == 7
        proxy.seen.clear()

        second = _run("push", str(archive), f"{proxy.host}/mount/two:v1")
        assert second.exit_code == 0, second.output
        assert second.stderr.startswith(f"pushed {proxy.host}/mount/two:v1: uploaded 0 of 7 blobs")
        assert second.stderr.endswith(", mounted 7\n")
        assert _uploads(proxy.seen) == []
        mounts = [path for method, path in proxy.seen if method == "POST"]
        assert len(mounts) == 7
        assert all("from=mount%2Fone" in path for path in mounts)
    pulled = _run("pull", f"{registry.host}/mount/two:v1", "-o", str(archive.parent / "two.photon"))
    assert pulled.exit_code == 0, pulled.output
    assert (archive.parent / "two.photon").read_bytes() == archive.read_bytes()


def test_mount_from_names_a_repository_photonpack_never_used(
    registry: Registry, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run("push", str(archive), f"{registry.host}/mount/elsewhere:v1").exit_code == 0
    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "fresh-home"))  # forgets "elsewhere"
    pushed = _run(
        "push", str(archive), f"{registry.host}/mount/named:v1", "--mount-from", "mount/elsewhere"
    )
    assert pushed.exit_code == 0, pushed.output
    assert "uploaded 0 of 7 blobs" in pushed.stderr
    assert pushed.stderr.endswith(", mounted 7\n")


def test_push_goes_through_http_proxy_unless_no_proxy_names_the_host(
    registry: Registry, archive: Path, no_proxy_env: pytest.MonkeyPatch
) -> None:
    with ConnectProxy() as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        pushed = _run("push", str(archive), f"{registry.host}/proxied/one:v1")
        assert pushed.exit_code == 0, pushed.output
        assert proxy.tunnels and set(proxy.tunnels) == {registry.host}
        proxy.tunnels.clear()

        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        assert _run("push", str(archive), f"{registry.host}/proxied/two:v1").exit_code == 0
        assert proxy.tunnels == []


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """docker-registry over TLS on 127.0.0.2, signed by a CA of its own: (host, ca.pem)."""
    root = tmp_path_factory.mktemp("tls-registry")
    ca_key, ca, key, csr, cert = (root / n for n in ("ca.key", "ca.pem", "k.pem", "r.csr", "c.pem"))
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=photonpack test site CA",
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=127.0.0.2",
    )
    (root / "ext.cnf").write_text("subjectAltName=IP:127.0.0.2\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(root / "ext.cnf"),
    )
    binary = shutil.which("docker-registry")
    assert binary is not None
    host = f"127.0.0.2:{free_port()}"
    (root / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {host}\n  secret: s\n  tls:\n    certificate: {cert}\n    key: {key}\n"
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=log)
    try:
        import http.client
        import ssl
        import time

        context = ssl.create_default_context(cafile=str(ca))
        for _ in range(300):
            try:
                conn = http.client.HTTPSConnection(host, timeout=2, context=context)
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.05)
        yield host, ca
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_a_registry_signed_by_the_site_ca_needs_ca_file_or_ssl_cert_file(
    tls_registry: tuple[str, Path], archive: Path, no_proxy_env: pytest.MonkeyPatch
) -> None:
    host, ca = tls_registry
    no_proxy_env.delenv("PHOTONPACK_CA_FILE", raising=False)
    no_proxy_env.delenv("SSL_CERT_FILE", raising=False)
    refused = _run("push", str(archive), f"{host}/tls/one:v1")
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: cannot reach registry https://{host}: CERTIFICATE_VERIFY_FAILED; "
        "if it serves plain HTTP, pass --insecure\n"
    )
    pushed = _run("push", str(archive), f"{host}/tls/one:v1", "--ca-file", str(ca))
    assert pushed.exit_code == 0, pushed.output

    no_proxy_env.setenv("SSL_CERT_FILE", str(ca))
    pulled = _run("pull", f"{host}/tls/one:v1", "-o", str(archive.parent / "tls.photon"))
    assert pulled.exit_code == 0, pulled.output
    assert (archive.parent / "tls.photon").read_bytes() == archive.read_bytes()
