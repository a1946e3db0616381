"""A lock from an index over HTTPS: pip's trust, with its TLS context set up once per lock.

The index is signed by a CA of the test's own: trusted through ``SSL_CERT_FILE``
(as a site's CA is), refused without it, as pip refuses it.
"""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from photonpack.errors import PhotonpackError
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, lock_photon
from photonpack.lock.target import Target
from photonpack.lock.tls import once_context
from tests.support.index import PackageIndex, add_serving_stack
from tests.test_lock import photon

TARGETS = (Target.parse("cp311-manylinux_2_28_x86_64"), Target.parse("cp312-manylinux_2_28_x86_64"))


class _TlsIndex(PackageIndex):
    @property
    def root_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def _site_ca(root: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    _openssl(root, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=photonpack test index CA")  # fmt: skip
    _openssl(root, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
             "-out", "index.csr", "-subj", "/CN=127.0.0.1")  # fmt: skip
    (root / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(root, "x509", "-req", "-in", "index.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "cert.pem", "-days", "2",
             "-extfile", "ext.cnf")  # fmt: skip
    return root / "ca.pem", root / "cert.pem", root / "key.pem"


@pytest.fixture(scope="module")
def tls_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_TlsIndex, Path]]:
    root = tmp_path_factory.mktemp("tls-index")
    ca, cert, key = _site_ca(root)
    index = _TlsIndex(root / "index")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    index._server.socket = server.wrap_socket(index._server.socket, server_side=True)
    add_serving_stack(index)
    index.add("alpha", "1.0")
    index.start()
    yield index, ca
    index.stop()


def test_an_index_signed_by_the_site_ca_locks_with_ssl_cert_file(
    tls_index: tuple[_TlsIndex, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, ca = tls_index
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    options = LockOptions(index=IndexSettings(index_url=index.url), targets=TARGETS)
    lock = lock_photon(photon(tmp_path, "alpha"), options).lock
    assert {p.name for p in lock.packages} >= {"alpha"}
    assert all(w.url.startswith(index.root_url) for w in lock.wheels())


def test_an_index_signed_by_an_unknown_ca_is_refused(
    tls_index: tuple[_TlsIndex, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _ = tls_index
    for variable in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    options = LockOptions(index=IndexSettings(index_url=index.url), targets=TARGETS)
    with pytest.raises(PhotonpackError, match="CERTIFICATE_VERIFY_FAILED"):
        lock_photon(photon(tmp_path, "alpha"), options)
    assert not (tmp_path / "pylock.svc.toml").exists()


def test_the_context_verifies_and_loads_each_ca_file_once(tmp_path: Path) -> None:
    context = once_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the system's CAs and certifi's
    ca, _, _ = _site_ca(tmp_path)
    context.load_verify_locations(ca)
    ca.unlink()
    context.load_verify_locations(ca)  # asked again at each connection: not read again
    with pytest.raises(FileNotFoundError):
        ssl.create_default_context().load_verify_locations(ca)
