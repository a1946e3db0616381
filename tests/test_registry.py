"""Photons through a real OCI registry: the artifact mapping, dedup, faults, interop."""

from __future__ import annotations

import hashlib
import http.client
import json
from pathlib import Path

import pytest

from photonpack.errors import IntegrityError, RegistryError
from photonpack.oci.client import OCI_MANIFEST, RegistryClient, Transfer
from photonpack.oci.reference import Reference, parse_reference
from photonpack.registry import (
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    PushResult,
    fetch_photon,
    list_remote,
    oci_manifest,
    push_photon,
)
from tests.support.registry import Registry, StagedPhoton, TamperingProxy, stage_photon

SHARED = [("alpha", "1.0"), ("beta", "2.0"), ("gamma", "3.0")]


@pytest.fixture(scope="module")
def photons(tmp_path_factory: pytest.TempPathFactory) -> tuple[StagedPhoton, StagedPhoton]:
    """Two photons that share every wheel but one (delta 1.0 vs delta 2.0)."""
    root = tmp_path_factory.mktemp("photons")
    first = stage_photon(root, "counter", [*SHARED, ("delta", "1.0")])
    second = stage_photon(root, "counter", [*SHARED, ("delta", "2.0")], source="# v2\n")
    return first, second


def _ref(registry: Registry, repo: str, tag: str) -> Reference:
    return parse_reference(f"{registry.host}/{repo}:{tag}")


def _push(client: RegistryClient, ref: Reference, photon: StagedPhoton) -> PushResult:
    return push_photon(photon.manifest, photon.blob_path, ref, client=client)


def _wheel_digest(photon: StagedPhoton, project: str) -> str:
    return next("sha256:" + w.sha256 for w in photon.manifest.wheels if w.name == project)


def test_oci_manifest_is_deterministic_artifact(photons: tuple[StagedPhoton, StagedPhoton]) -> None:
    manifest = photons[0].manifest
    body = oci_manifest(manifest)
    assert body == oci_manifest(manifest)
    document = json.loads(body)
    assert document["schemaVersion"] == 2
    assert document["mediaType"] == OCI_MANIFEST
    assert document["artifactType"] == ARTIFACT_TYPE
    assert document["config"] == {
        "mediaType": CONFIG_MEDIA_TYPE,
        "digest": manifest.digest,
        "size": len(manifest.to_bytes()),
    }
    assert [layer["digest"] for layer in document["layers"]] == [
        f"sha256:{h}" for h in manifest.blobs()
    ]
    assert {layer["mediaType"] for layer in document["layers"]} == {LAYER_MEDIA_TYPE}
    titles = sorted(
        layer["annotations"]["org.opencontainers.image.title"] for layer in document["layers"]
    )
    assert titles == [
        "files/counter.py",
        "files/pylock.counter.toml",
        "runtime/photonpack/__init__.py",
        "wheels/alpha-1.0-py3-none-any.whl",
        "wheels/beta-2.0-py3-none-any.whl",
        "wheels/delta-1.0-py3-none-any.whl",
        "wheels/gamma-3.0-py3-none-any.whl",
    ]


def test_second_photon_uploads_only_new_blobs(
    registry: Registry, photons: tuple[StagedPhoton, StagedPhoton]
) -> None:
    first, second = photons
    with RegistryClient(registry.host) as client:
        one = push_photon(
            first.manifest, first.blob_path, _ref(registry, "dedup/counter", "v1"), client=client
        )
        two = push_photon(
            second.manifest, second.blob_path, _ref(registry, "dedup/counter", "v2"), client=client
        )
        again = push_photon(
            first.manifest, first.blob_path, _ref(registry, "dedup/counter", "v1"), client=client
        )
    assert len(one.uploaded) == one.total_blobs == 8  # photon.json + 7 blobs
    changed = [  # the source, and the lock that pins the other delta
        "sha256:" + f.sha256
        for f in second.manifest.files
        if f.path in ("counter.py", "pylock.counter.toml")
    ]
    assert sorted(two.uploaded) == sorted(
        [second.manifest.digest, _wheel_digest(second, "delta"), *changed]
    )
    assert again.uploaded == ()
    assert again.uploaded_bytes == 0
    assert (
        again.manifest_digest
        == one.manifest_digest
        == "sha256:" + hashlib.sha256(oci_manifest(first.manifest)).hexdigest()
    )


def test_registry_api_serves_well_formed_oci_manifest(
    registry: Registry, photons: tuple[StagedPhoton, StagedPhoton]
) -> None:
    first = photons[0]
    with RegistryClient(registry.host) as client:
        pushed = push_photon(
            first.manifest, first.blob_path, _ref(registry, "api/counter", "v1"), client=client
        )
    conn = http.client.HTTPConnection(registry.host, timeout=10)
    conn.request("GET", "/v2/api/counter/manifests/v1", headers={"Accept": OCI_MANIFEST})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200
    assert response.getheader("Content-Type") == OCI_MANIFEST
    assert response.getheader("Docker-Content-Digest") == pushed.manifest_digest
    document = json.loads(body)
    assert document["artifactType"] == ARTIFACT_TYPE
    assert document["config"]["digest"] == first.manifest.digest
    assert len(document["layers"]) == len(first.manifest.blobs())


def test_fetch_by_tag_and_by_digest_gives_the_same_verified_photon(
    registry: Registry, photons: tuple[StagedPhoton, StagedPhoton], tmp_path: Path
) -> None:
    first = photons[0]
    with RegistryClient(registry.host) as client:
        pushed = push_photon(
            first.manifest, first.blob_path, _ref(registry, "fetch/counter", "v1"), client=client
        )
        for i, text in enumerate(["fetch/counter:v1", f"fetch/counter@{pushed.manifest_digest}"]):
            out = tmp_path / str(i)
            out.mkdir()
            fetched = fetch_photon(parse_reference(f"{registry.host}/{text}"), out, client=client)
            assert fetched.manifest == first.manifest
            assert fetched.manifest_digest == pushed.manifest_digest
            for hex_ in first.manifest.blobs():
                assert fetched.blob_path(hex_).read_bytes() == first.blob_path(hex_).read_bytes()


class _Interrupt(Exception):
    pass


def test_interrupted_push_leaves_no_tag_and_resumes(
    registry: Registry, photons: tuple[StagedPhoton, StagedPhoton]
) -> None:
    first = photons[0]
    ref = _ref(registry, "interrupt/counter", "v1")
    finished: list[str] = []

    def stop_after_three(transfer: Transfer) -> None:
        if (
            transfer.done == transfer.total
            and transfer.done > 0
            and transfer.digest not in finished
        ):
            finished.append(transfer.digest)
            if len(finished) == 3:
                raise _Interrupt

    with RegistryClient(registry.host) as client:
        with pytest.raises(_Interrupt):
            push_photon(
                first.manifest, first.blob_path, ref, client=client, progress=stop_after_three
            )
        with pytest.raises(RegistryError) as info:
            client.get_manifest("interrupt/counter", "v1")
        assert "has no manifest 'v1'" in str(info.value)
        resumed = push_photon(first.manifest, first.blob_path, ref, client=client)
    assert len(resumed.uploaded) == resumed.total_blobs - 3
    assert not set(resumed.uploaded) & set(finished)


def _flip_config_byte(path: str, body: bytes) -> bytes:
    if "/blobs/" in path and body.startswith(b"{"):
        return body.replace(b'"counter"', b'"countex"', 1)
    return body


def _reformat_manifest(path: str, body: bytes) -> bytes:
    return json.dumps(json.loads(body), indent=1).encode() if "/manifests/" in path else body


def test_fetch_refuses_tampered_config_and_keeps_nothing(
    registry: Registry, photons: tuple[StagedPhoton, StagedPhoton], tmp_path: Path
) -> None:
    first = photons[0]
    with RegistryClient(registry.host) as client:
        push_photon(
            first.manifest, first.blob_path, _ref(registry, "tamper/counter", "v1"), client=client
        )
    with (
        TamperingProxy(registry.host, _flip_config_byte) as proxy,
        RegistryClient(proxy.host) as client,
        pytest.raises(IntegrityError) as info,
    ):
        fetch_photon(parse_reference(f"{proxy.host}/tamper/counter:v1"), tmp_path, client=client)
    assert "for photon.json, expected" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_fetch_by_digest_refuses_other_manifest_bytes(
    registry: Registry, photons: tuple[StagedPhoton, StagedPhoton], tmp_path: Path
) -> None:
    first = photons[0]
    with RegistryClient(registry.host) as client:
        pushed = push_photon(
            first.manifest, first.blob_path, _ref(registry, "tamper/digest", "v1"), client=client
        )
    with (
        TamperingProxy(registry.host, _reformat_manifest) as proxy,
        RegistryClient(proxy.host) as client,
        pytest.raises(IntegrityError) as info,
    ):
        ref = parse_reference(f"{proxy.host}/tamper/digest@{pushed.manifest_digest}")
        fetch_photon(ref, tmp_path, client=client)
    assert str(info.value).startswith(f"{ref}: the registry served a manifest hashing to sha256:")
    assert list(tmp_path.iterdir()) == []


def test_list_remote_shows_tags_with_digests(
    registry: Registry, photons: tuple[StagedPhoton, StagedPhoton]
) -> None:
    first, second = photons
    with RegistryClient(registry.host) as client:
        one = push_photon(
            first.manifest, first.blob_path, _ref(registry, "list/counter", "v1"), client=client
        )
        two = push_photon(
            second.manifest, second.blob_path, _ref(registry, "list/counter", "v2"), client=client
        )
        tags = list_remote("list/counter", client=client)
    assert [(t.tag, t.manifest_digest, t.photon_digest) for t in tags] == [
        ("v1", one.manifest_digest, first.manifest.digest),
        ("v2", two.manifest_digest, second.manifest.digest),
    ]


def test_pull_of_a_non_photon_is_refused(registry: Registry, tmp_path: Path) -> None:
    config = b"{}"
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": 2,
            },
            "layers": [],
        }
    ).encode()
    with RegistryClient(registry.host) as client:
        import io

        client.upload_blob("other/image", digest=digest, size=2, stream=io.BytesIO(config))
        client.put_manifest("other/image", "v1", body, OCI_MANIFEST)
        with pytest.raises(RegistryError) as info:
            fetch_photon(
                parse_reference(f"{registry.host}/other/image:v1"), tmp_path, client=client
            )
    assert str(info.value) == (
        f"{registry.host}/other/image:v1 is not a photon (its artifact type is "
        "application/vnd.oci.image.config.v1+json); photonpack pulls artifacts of type "
        f"{ARTIFACT_TYPE}"
    )


def test_oras_pulls_what_push_uploaded(
    registry: Registry, photons: tuple[StagedPhoton, StagedPhoton], tmp_path: Path
) -> None:
    import oras.client

    first = photons[0]
    with RegistryClient(registry.host) as client:
        _push(client, _ref(registry, "oras/counter", "v1"), first)
    oras_client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    oras_client.pull(target=f"{registry.host}/oras/counter:v1", outdir=str(tmp_path))
    pulled = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert pulled == [
        "files/counter.py",
        "files/pylock.counter.toml",
        "runtime/photonpack/__init__.py",
        "wheels/alpha-1.0-py3-none-any.whl",
        "wheels/beta-2.0-py3-none-any.whl",
        "wheels/delta-1.0-py3-none-any.whl",
        "wheels/gamma-3.0-py3-none-any.whl",
    ]
    wheel = next(w for w in first.manifest.wheels if w.name == "delta")
    pulled_wheel = tmp_path / "wheels" / wheel.filename
    assert pulled_wheel.read_bytes() == first.blob_path(wheel.sha256).read_bytes()
