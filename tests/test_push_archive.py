"""`push X.photon REF` in one read of the file, against a real registry (admit.push_archive)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack import admit
from photonpack.admit import push_archive
from photonpack.archive import NullSink, unpack
from photonpack.archive.manifest import Manifest
from photonpack.cli import cli
from photonpack.errors import IntegrityError
from photonpack.oci.client import RegistryClient
from photonpack.oci.reference import parse_reference
from photonpack.registry import push_photon
from photonpack.store import Store
from photonpack.store.written import note_written, written_digest
from tests.support.archives import compress, decompress, make_archive, member_data_offset
from tests.support.registry import Registry

PACKAGES = (("alpha", "1.0"), ("beta", "2.0"), ("gamma", "3.0"))


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _sha(manifest: Manifest, wheel: str) -> str:
    return next(w.sha256 for w in manifest.wheels if w.name == wheel)


def test_push_of_a_file_uploads_exactly_the_missing_blobs_and_pulls_back_identical(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_archive(tmp_path / "a", packages=PACKAGES)
    manifest = archive.manifest
    ref = parse_reference(f"{registry.host}/file/counter:v1")
    with RegistryClient(registry.host) as client:
        # The registry holds one wheel already (pushed by another photon's push).
        beta = archive.blob_path(_sha(manifest, "beta")).read_bytes()
        digest = f"sha256:{_sha(manifest, 'beta')}"
        client.upload_blob(ref.repository, digest=digest, size=len(beta), stream=io.BytesIO(beta))
        store = Store(tmp_path / "empty-store")
        pushed = push_archive(archive.path, ref, store, client=client)
    assert pushed.manifest == manifest
    result = pushed.result
    expected = {f"sha256:{h}" for h in manifest.blobs()} - {f"sha256:{_sha(manifest, 'beta')}"}
    assert set(result.uploaded) == expected | {manifest.digest}
    assert len(result.uploaded) == len(expected) + 1
    # A push moves the photon; it leaves the store as it was (`run` admits).
    assert not list(store.root.glob("blobs/sha256/*"))
    assert not list(store.root.glob("manifests/*"))
    assert not list(store.root.glob("tmp/*"))

    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "elsewhere"))
    out = tmp_path / "pulled.photon"
    pulled = _run("pull", str(ref), "-o", str(out))
    assert pulled.exit_code == 0, pulled.output
    assert out.read_bytes() == archive.path.read_bytes()


def _with_flipped_byte(source: Path, member: str, out: Path) -> Path:
    tar = bytearray(decompress(source))
    offset = member_data_offset(bytes(tar), member) + 40
    tar[offset] ^= 0xFF
    out.write_bytes(compress(bytes(tar)))
    return out


def test_a_corrupted_blob_in_the_archive_exits_3_and_tags_nothing(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_archive(tmp_path / "a", packages=PACKAGES)
    gamma = _sha(archive.manifest, "gamma")
    bad = _with_flipped_byte(archive.path, f"blobs/sha256/{gamma}", tmp_path / "bad.photon")
    home = tmp_path / "home"
    monkeypatch.setenv("PHOTONPACK_HOME", str(home))
    ref = f"{registry.host}/file/corrupt:v1"
    result = _run("push", str(bad), ref)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert f"blobs/sha256/{gamma}" in result.stderr
    with RegistryClient(registry.host) as client:
        assert client.find_manifest("file/corrupt", "v1") is None
        assert not client.has_blob("file/corrupt", f"sha256:{gamma}")
        assert not client.has_blob("file/corrupt", archive.manifest.digest)
    assert not Store(home).has_blob(gamma)
    assert not list(home.glob("manifests/*"))


def test_a_policy_refusal_still_refuses_the_push(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every hash matches, but alpha requires a project the lock does not hold.
    archive = make_archive(tmp_path / "a", packages=PACKAGES, requires={"alpha": ["missing"]})
    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "home"))
    result = _run("push", str(archive.path), f"{registry.host}/file/refused:v1")
    assert result.exit_code == 3, result.output
    assert "missing" in result.stderr
    with RegistryClient(registry.host) as client:
        assert client.find_manifest("file/refused", "v1") is None
    assert not list((tmp_path / "home").glob("manifests/*"))


def test_a_policy_refusal_is_found_in_a_wheel_the_store_already_holds(
    registry: Registry, tmp_path: Path
) -> None:
    # The archive streams past alpha without keeping it (the store has it): the policy
    # inspects the store's copy, and still finds what alpha requires missing.
    archive = make_archive(tmp_path / "a", packages=PACKAGES, requires={"alpha": ["missing"]})
    alpha = _sha(archive.manifest, "alpha")
    store = Store(tmp_path / "store")
    store.add_blob_file(archive.blob_path(alpha), alpha, archive.manifest.blobs()[alpha])
    ref = parse_reference(f"{registry.host}/file/stored-refused:v1")
    with RegistryClient(registry.host) as client, pytest.raises(IntegrityError, match="missing"):
        push_archive(archive.path, ref, store, client=client)
    with RegistryClient(registry.host) as client:
        assert client.find_manifest("file/stored-refused", "v1") is None
    assert not list(store.root.glob("tmp/*"))


def test_a_file_build_wrote_is_pushed_from_the_store_without_reading_it(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_archive(tmp_path / "a", packages=PACKAGES)
    store = Store(tmp_path / "store")
    unpack(archive.path, store.sink())  # the blobs build kept, and its manifest
    store.put_manifest(archive.manifest.digest, archive.manifest.to_bytes())
    note_written(store, archive.path, archive.manifest.digest)

    def no_read(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the archive file was read")

    monkeypatch.setattr(admit, "unpack", no_read)
    monkeypatch.setattr(admit, "read_manifest", no_read)
    ref = parse_reference(f"{registry.host}/file/built:v1")
    with RegistryClient(registry.host) as client:
        pushed = push_archive(archive.path, ref, store, client=client)
    manifest, result = pushed.manifest, pushed.result
    assert manifest == archive.manifest
    assert len(result.uploaded) == len(manifest.blobs()) + 1
    # The policy ran on the stored blobs once, and is remembered for the next run or push.
    assert written_digest(store, archive.path, checked=True) == manifest.digest


def test_the_written_record_of_an_edited_file_is_not_trusted(
    registry: Registry, tmp_path: Path
) -> None:
    archive = make_archive(tmp_path / "a", packages=PACKAGES)
    store = Store(tmp_path / "store")
    unpack(archive.path, store.sink())
    store.put_manifest(archive.manifest.digest, archive.manifest.to_bytes())
    note_written(store, archive.path, archive.manifest.digest)
    gamma = _sha(archive.manifest, "gamma")
    _with_flipped_byte(archive.path, f"blobs/sha256/{gamma}", archive.path)
    assert written_digest(store, archive.path) is None
    ref = parse_reference(f"{registry.host}/file/edited:v1")
    with RegistryClient(registry.host) as client, pytest.raises(IntegrityError, match=gamma):
        push_archive(archive.path, ref, store, client=client)
    with RegistryClient(registry.host) as client:
        assert client.find_manifest("file/edited", "v1") is None


def test_push_from_the_store_still_uploads_from_blob_files(
    registry: Registry, tmp_path: Path
) -> None:
    archive = make_archive(tmp_path / "a", packages=PACKAGES)
    ref = parse_reference(f"{registry.host}/file/blobs:v1")
    with RegistryClient(registry.host) as client:
        result = push_photon(archive.manifest, archive.blob_path, ref, client=client)
        again = push_photon(archive.manifest, archive.blob_path, ref, client=client)
    assert len(result.uploaded) == len(archive.manifest.blobs()) + 1
    assert again.uploaded == ()
    assert unpack(archive.path, NullSink()) == archive.manifest


def test_pull_to_a_file_refused_by_the_policy_leaves_no_file(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pushed by another tool (no policy on the way up): every hash matches, the lock is open.
    archive = make_archive(tmp_path / "a", packages=PACKAGES, requires={"alpha": ["missing"]})
    ref = parse_reference(f"{registry.host}/file/open-lock:v1")
    with RegistryClient(registry.host) as client:
        push_photon(archive.manifest, archive.blob_path, ref, client=client)
    home = tmp_path / "home"
    monkeypatch.setenv("PHOTONPACK_HOME", str(home))
    out = tmp_path / "out"
    out.mkdir()
    result = _run("pull", str(ref), "-o", str(out / "counter.photon"))
    assert result.exit_code == 3, result.output
    assert "missing" in result.stderr
    assert list(out.iterdir()) == []
    assert not list(home.glob("manifests/*")) and not list(home.glob("blobs/sha256/*"))
    assert not list(home.glob("tmp/*"))


def test_a_file_pushed_before_is_pushed_again_without_reading_it(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_archive(tmp_path / "a", packages=PACKAGES)
    store = Store(tmp_path / "store")
    ref = parse_reference(f"{registry.host}/file/again:v1")
    with RegistryClient(registry.host) as client:
        first = push_archive(archive.path, ref, store, client=client)

        def no_read(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("the archive file was read")

        monkeypatch.setattr(admit, "unpack", no_read)
        again = push_archive(archive.path, parse_reference(f"{ref}-again"), store, client=client)
        assert again.result.uploaded == ()
        assert again.result.manifest_digest == first.result.manifest_digest
        # Touched, the file is read (and verified) again.
        archive.path.touch()
        with pytest.raises(AssertionError, match="was read"):
            push_archive(archive.path, ref, store, client=client)
