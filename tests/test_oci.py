"""The OCI distribution client against a real registry on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from photonpack.errors import IntegrityError, RegistryError
from photonpack.oci.client import OCI_MANIFEST, Credentials, RegistryClient, Transfer
from photonpack.oci.reference import Reference, parse_reference, parse_repository
from tests.support.registry import (
    PASSWORD,
    USERNAME,
    Registry,
    TamperingProxy,
    TokenRegistry,
    free_port,
)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push(client: RegistryClient, repo: str, data: bytes, **kwargs: object) -> str:
    digest = _digest(data)
    client.upload_blob(repo, digest=digest, size=len(data), stream=io.BytesIO(data), **kwargs)  # type: ignore[arg-type]
    return digest


def _fetch(client: RegistryClient, repo: str, data: bytes) -> bytes:
    out = io.BytesIO()
    client.fetch_blob(repo, digest=_digest(data), size=len(data), out=out)
    return out.getvalue()


def test_parse_reference_reads_tag_digest_and_port() -> None:
    digest = "sha256:" + "a" * 64
    assert parse_reference("localhost:5000/team/counter:v1") == Reference(
        registry="localhost:5000", repository="team/counter", tag="v1"
    )
    assert parse_reference(f"reg.example.com/counter@{digest}") == Reference(
        registry="reg.example.com", repository="counter", digest=digest
    )
    assert parse_reference("localhost/counter").tag == "latest"
    assert str(parse_reference(f"h.io/a/b:t@{digest}")) == f"h.io/a/b:t@{digest}"
    assert parse_repository("localhost:5000/team/counter") == ("localhost:5000", "team/counter")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "counter:v1",
            "expected a reference like localhost:5000/team/counter:v1, found 'counter:v1': "
            "name the registry host first",
        ),
        (
            "localhost:5000/Team/counter",
            "invalid repository 'Team/counter' in 'localhost:5000/Team/counter': use lowercase "
            "letters, digits and separators (. _ -), with / between path components",
        ),
        (
            "localhost:5000/counter@sha256:abc",
            "invalid digest 'sha256:abc' in 'localhost:5000/counter@sha256:abc': "
            "expected sha256: and 64 hex digits",
        ),
    ],
)
def test_parse_reference_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_reference(text)
    assert str(info.value) == message


def test_plain_http_only_for_localhost_unless_insecure() -> None:
    assert RegistryClient("registry.example.com").scheme == "https"
    assert RegistryClient("registry.example.com", insecure=True).scheme == "http"
    assert RegistryClient("127.0.0.1:5000").scheme == "http"
    assert RegistryClient("localhost").scheme == "http"
    assert RegistryClient("[::1]:5000").scheme == "http"


def test_credentials_repr_hides_password() -> None:
    assert PASSWORD not in repr(Credentials(username=USERNAME, password=PASSWORD))


def test_blob_round_trip_and_head(registry: Registry) -> None:
    data = b"hello photon blob"
    with RegistryClient(registry.host) as client:
        assert not client.has_blob("oci/roundtrip", _digest(data))
        _push(client, "oci/roundtrip", data)
        assert client.has_blob("oci/roundtrip", _digest(data))
        assert _fetch(client, "oci/roundtrip", data) == data


def test_large_blob_goes_up_in_chunks_with_progress(registry: Registry) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    events: list[Transfer] = []
    with RegistryClient(registry.host) as client:
        _push(client, "oci/chunks", data, chunk_size=4096, progress=events.append, title="big")
        assert _fetch(client, "oci/chunks", data) == data
    assert [e.done for e in events] == [0, 4096, 8192, 10240, 10240]  # sent, then committed
    assert {(e.title, e.total) for e in events} == {("big", 10240)}


def test_file_blob_streams_in_patches_from_the_kernel(registry: Registry, tmp_path: Path) -> None:
    # A regular file goes to the socket with sendfile, PATCH by PATCH, progress after each piece.
    data = bytes(range(256)) * 12_000  # 3,072,000 bytes: over the 1 MiB of a one-PUT blob
    path = tmp_path / "blob"
    path.write_bytes(data)
    events: list[Transfer] = []
    with RegistryClient(registry.host) as client, path.open("rb") as stream:
        client.upload_blob(
            "oci/file", digest=_digest(data), size=len(data), stream=stream,
            chunk_size=2_000_000, progress=events.append,
        )  # fmt: skip
        assert _fetch(client, "oci/file", data) == data
    assert [e.done for e in events] == [0, 2_000_000, 3_072_000, 3_072_000]


@pytest.mark.parametrize("size", [10, 3_000_000])
def test_file_that_is_not_its_size_is_refused_before_the_digest(
    registry: Registry, tmp_path: Path, size: int
) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * (size + 1))  # grew since its size was taken
    digest = _digest(b"x" * size)
    with RegistryClient(registry.host) as client, path.open("rb") as stream:
        with pytest.raises(IntegrityError) as info:
            client.upload_blob("oci/grown", digest=digest, size=size, stream=stream)
        assert not client.has_blob("oci/grown", digest)  # the client is still usable
    assert str(info.value) == (
        f"blob {digest} (no name) should be {size} bytes, read {size + 1}: the local file "
        "changed during the push; rebuild or re-verify it"
    )


def test_stream_that_ends_early_leaves_no_blob_and_a_usable_client(registry: Registry) -> None:
    data = b"y" * 3_000_000
    with RegistryClient(registry.host) as client:
        with pytest.raises(IntegrityError):
            client.upload_blob(
                "oci/short", digest=_digest(data), size=len(data), stream=io.BytesIO(data[:-5])
            )
        assert not client.has_blob("oci/short", _digest(data))


def test_manifest_put_get_and_paginated_tags(registry: Registry) -> None:
    config = b"{}"
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.test+json",
                "digest": _digest(config),
                "size": 2,
            },
            "layers": [],
        }
    ).encode()
    with RegistryClient(registry.host) as client:
        _push(client, "oci/tags", config)
        for tag in ["v1", "v2", "v3", "a", "b"]:
            client.put_manifest("oci/tags", tag, body, OCI_MANIFEST)
        assert client.get_manifest("oci/tags", "v2") == (OCI_MANIFEST, body)
        assert client.get_manifest("oci/tags", _digest(body))[1] == body
        assert client.list_tags("oci/tags", page_size=2) == ["a", "b", "v1", "v2", "v3"]


def test_missing_tag_and_repository_are_one_line_errors(registry: Registry) -> None:
    with RegistryClient(registry.host) as client, pytest.raises(RegistryError) as info:
        client.get_manifest("oci/nothing", "v9")
    assert str(info.value) == (
        f"{registry.host}/oci/nothing has no manifest 'v9': check the tag with "
        f"`photonpack list --remote {registry.host}/oci/nothing`"
    )
    with RegistryClient(registry.host) as client, pytest.raises(RegistryError) as info:
        client.list_tags("oci/nothing")
    assert str(info.value) == (
        f"{registry.host}/oci/nothing does not exist: check the repository name"
    )


def test_unreachable_registry_is_one_line_error() -> None:
    host = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError) as info:
        RegistryClient(host).has_blob("x/y", _digest(b""))
    assert str(info.value) == (
        f"cannot reach registry http://{host}: [Errno 111] Connection refused"
    )


def test_basic_auth_required_wrong_and_right(auth_registry: Registry) -> None:
    data = b"secret blob"
    with pytest.raises(RegistryError) as info:
        RegistryClient(auth_registry.host).has_blob("auth/x", _digest(data))
    assert str(info.value) == (
        f"{auth_registry.host} requires a login (HTTP 401): run "
        f"`photonpack login {auth_registry.host}`, pass --username and --password-stdin, "
        "or set PHOTONPACK_REGISTRY_USERNAME and PHOTONPACK_REGISTRY_PASSWORD"
    )
    wrong = Credentials(username=USERNAME, password="nope")
    with pytest.raises(RegistryError) as info:
        RegistryClient(auth_registry.host, credentials=wrong).has_blob("auth/x", _digest(data))
    assert str(info.value) == (
        f"{auth_registry.host} refused the login of 'tester' (HTTP 401): "
        "check the username and password"
    )
    right = Credentials(username=USERNAME, password=PASSWORD)
    with RegistryClient(auth_registry.host, credentials=right) as client:
        _push(client, "auth/x", data)
        assert _fetch(client, "auth/x", data) == data


def test_bearer_token_handshake(token_registry: TokenRegistry) -> None:
    data = b"token protected blob"
    with pytest.raises(RegistryError) as info:
        RegistryClient(token_registry.host).has_blob("tok/x", _digest(data))
    assert str(info.value).startswith(f"{token_registry.host} requires a login (HTTP 401)")
    creds = Credentials(username=USERNAME, password=PASSWORD)
    with RegistryClient(token_registry.host, credentials=creds) as client:
        _push(client, "tok/x", data)
        assert _fetch(client, "tok/x", data) == data
    assert "repository:tok/x:pull,push" in token_registry.tokens.issued
    assert "repository:tok/x:pull" in token_registry.tokens.issued


def _flip_last_byte(path: str, body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 1]) if "/blobs/" in path else body


def _append_byte(path: str, body: bytes) -> bytes:
    return body + b"!" if "/blobs/" in path else body


def test_fetch_refuses_altered_bytes(registry: Registry, tmp_path: Path) -> None:
    data = b"the true content"
    with RegistryClient(registry.host) as client:
        _push(client, "oci/tamper", data)
    with (
        TamperingProxy(registry.host, _flip_last_byte) as proxy,
        RegistryClient(proxy.host) as client,
        pytest.raises(IntegrityError) as info,
    ):
        _fetch(client, "oci/tamper", data)
    assert str(info.value).startswith(f"{proxy.host}/oci/tamper served 16 bytes hashing to sha256:")
    assert str(info.value).endswith(
        f"expected 16 bytes with {_digest(data)}; refusing it, nothing was kept"
    )


def test_fetch_refuses_more_bytes_than_listed(registry: Registry) -> None:
    data = b"exact length"
    with RegistryClient(registry.host) as client:
        _push(client, "oci/long", data)
    with (
        TamperingProxy(registry.host, _append_byte) as proxy,
        RegistryClient(proxy.host) as client,
        pytest.raises(IntegrityError) as info,
    ):
        _fetch(client, "oci/long", data)
    assert str(info.value) == (
        f"{proxy.host}/oci/long announced 13 bytes for blob {_digest(data)}, more than the "
        "manifest lists; refusing it, nothing was kept"
    )
