"""The content-addressed store: verified blobs, manifests, refs, locks, clear errors."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from photonpack.errors import IntegrityError, PhotonpackError, StoreError
from photonpack.store import Store, default_home, validate_name


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_default_home_follows_photonpack_home_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "home"))
    assert default_home() == tmp_path / "home"
    monkeypatch.delenv("PHOTONPACK_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "photonpack"


def test_blob_enters_the_store_only_when_its_bytes_match(tmp_path: Path) -> None:
    store = Store(tmp_path)
    data = b"hello photon"
    with store.blob_writer(_sha(data), len(data)) as out:
        out.write(data)
    assert store.blob_path(_sha(data)).read_bytes() == data
    with (
        pytest.raises(IntegrityError, match="expected 5 bytes"),
        store.blob_writer(_sha(b"right"), 5) as out,
    ):
        out.write(b"wrong")
    assert not store.has_blob(_sha(b"right"))
    assert list((tmp_path / "tmp").iterdir()) == []


def test_verify_blob_removes_a_corrupted_blob(tmp_path: Path) -> None:
    store = Store(tmp_path)
    source = tmp_path / "f"
    source.write_bytes(b"abc")
    path = store.add_blob_file(source, _sha(b"abc"), 3)
    assert store.verify_blob(_sha(b"abc"), 3)
    path.chmod(0o644)
    path.write_bytes(b"abd")
    assert not store.verify_blob(_sha(b"abc"), 3)
    assert not path.exists()


def test_a_blob_put_in_here_and_altered_with_its_mtime_restored_is_still_caught(
    tmp_path: Path,
) -> None:
    # verify_blob trusts a blob this process hashed only while its file is untouched:
    # a write moves its ctime even when the mtime is put back.
    store = Store(tmp_path)
    source = tmp_path / "f"
    source.write_bytes(b"abc")
    path = store.add_blob_file(source, _sha(b"abc"), 3)
    assert store.verify_blob(_sha(b"abc"), 3)
    before = path.stat()
    path.chmod(0o644)
    path.write_bytes(b"abd")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not store.verify_blob(_sha(b"abc"), 3)
    assert not path.exists()
    assert not Store(tmp_path).verify_blob(_sha(b"abc"), 3)  # another process: hashes it


def test_refs_are_listed_newest_first_and_removed_by_name(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.refs.put("alpha", "sha256:" + "a" * 64, 10)
    time.sleep(1.01)  # refs record whole seconds
    store.refs.put("beta", "sha256:" + "b" * 64, 20)
    assert [ref.name for ref in store.refs.all()] == ["beta", "alpha"]
    assert store.refs.remove("alpha").digest == "sha256:" + "a" * 64
    with pytest.raises(StoreError, match=r"no photon named 'alpha' .* \(known: beta\)"):
        store.refs.get("alpha")


@pytest.mark.parametrize("name", ["Counter", "1abc", "a_b", "a" * 33, "", "counter-", "-a"])
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(PhotonpackError, match="lowercase letters, digits and hyphens"):
        validate_name(name)


@pytest.mark.parametrize("name", ["a", "counter-v2", "a" * 32, "a-1"])
def test_lepton_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name


def test_manifest_bytes_must_match_their_digest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    data = b'{"name":"x"}'
    digest = "sha256:" + _sha(data)
    store.put_manifest(digest, data)
    assert store.get_manifest_bytes(digest) == data
    with pytest.raises(IntegrityError):
        store.put_manifest("sha256:" + "0" * 64, data)


def test_read_only_store_gives_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores permission bits; a read-only bind mount would be needed.
        readonly = Path("/proc/photonpack-store")
    else:
        readonly = tmp_path / "ro"
        readonly.mkdir(mode=0o555)
    store = Store(readonly)
    with pytest.raises(StoreError, match=r"cannot .* in the store"):
        store.refs.put("counter", "sha256:" + "a" * 64, 1)


def test_lock_serialises_two_threads(tmp_path: Path) -> None:
    store = Store(tmp_path)
    inside: list[int] = []
    overlap: list[bool] = []

    def work() -> None:
        with store.lock("k"):
            inside.append(1)
            overlap.append(len(inside) > 1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == [False, False, False]


def test_publish_dir_replaces_an_incomplete_leftover(tmp_path: Path) -> None:
    store = Store(tmp_path)
    final = store.env_path("c" * 64)
    final.mkdir(parents=True)
    (final / "half-written").write_text("x")
    assert not store.is_complete(final)
    with store.temp_dir("env-") as temp:
        (temp / "ok").write_text("y")
        store.publish_dir(temp, final)
    assert store.is_complete(final)
    assert sorted(p.name for p in final.iterdir()) == [".complete", "ok"]


def test_reimporting_the_same_archive_bytes_skips_unpacking_but_not_verification(
    counter_archive: Path, tmp_path: Path
) -> None:
    import shutil

    store = Store(tmp_path / "home")
    first = store.import_archive(counter_archive)
    [seen] = (tmp_path / "home" / "archives").iterdir()
    assert seen.name == _sha(counter_archive.read_bytes()) + ".json"
    assert store.import_archive(counter_archive) == first

    truncated = tmp_path / "truncated.photon"
    truncated.write_bytes(counter_archive.read_bytes()[:-1000])
    with pytest.raises(IntegrityError):
        store.import_archive(truncated)

    # A blob missing from the store sends the known archive through a full import.
    victim = next(iter(first.blobs()))
    store.blob_path(victim).unlink()
    copy = Path(shutil.copy(counter_archive, tmp_path / "copy.photon"))
    assert store.import_archive(copy) == first
    assert store.has_blob(victim)


def test_an_archive_file_hashed_before_is_trusted_only_while_its_identity_is_unchanged(
    counter_archive: Path, tmp_path: Path
) -> None:
    import shutil

    from photonpack.store.written import hashed_before

    store = Store(tmp_path / "home")
    archive = Path(shutil.copy(counter_archive, tmp_path / "counter.photon"))
    first = store.import_archive(archive)
    file_hex = _sha(archive.read_bytes())
    assert hashed_before(store, archive) == file_hex  # a warm run reads nothing of it
    assert store.import_archive(archive) == first

    # Rewritten with the same bytes: a new ctime, so hashed again (and still known).
    data = archive.read_bytes()
    archive.write_bytes(data)
    assert hashed_before(store, archive) is None
    assert store.import_archive(archive) == first
    assert hashed_before(store, archive) == file_hex

    # Altered in place with its mtime put back: the ctime still moved; refused.
    stat = archive.stat()
    with archive.open("r+b") as fh:
        fh.seek(len(data) // 2)
        fh.write(bytes([data[len(data) // 2] ^ 1]))
    os.utime(archive, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hashed_before(store, archive) is None
    with pytest.raises(PhotonpackError):
        store.import_archive(archive)

    # Moved: the record is the old path's, not the file's.
    moved = tmp_path / "moved.photon"
    shutil.copy(counter_archive, tmp_path / "again.photon")
    store.import_archive(tmp_path / "again.photon")
    (tmp_path / "again.photon").replace(moved)
    assert hashed_before(store, moved) is None


def test_a_stream_becomes_the_blob_its_bytes_name_and_mends_an_altered_one(
    tmp_path: Path,
) -> None:
    import io

    store = Store(tmp_path)
    sha, size = store.add_blob_stream(io.BytesIO(b"model weights"))
    assert (sha, size) == (_sha(b"model weights"), 13)
    blob = store.blob_path(sha)
    blob.chmod(0o644)
    blob.write_bytes(b"model weighTs")  # altered in place, same size
    assert store.add_blob_stream(io.BytesIO(b"model weights")) == (sha, size)
    assert blob.read_bytes() == b"model weights"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_stream_already_stored_intact_is_rehashed_and_not_written_again(
    tmp_path: Path,
) -> None:
    import io

    store = Store(tmp_path)
    sha, _ = store.add_blob_stream(io.BytesIO(b"serving code"))
    before = store.blob_path(sha).stat()
    assert store.add_blob_stream(io.BytesIO(b"serving code"))[0] == sha
    after = store.blob_path(sha).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_adopting_a_file_checks_it_and_moves_it_in(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.temp_dir("pull-") as scratch:
        good = scratch / "good"
        good.write_bytes(b"abc")
        assert store.adopt_blob(good, _sha(b"abc"), 3).read_bytes() == b"abc"
        assert not good.exists()
        bad = scratch / "bad"
        bad.write_bytes(b"abd")
        with pytest.raises(IntegrityError):
            store.adopt_blob(bad, _sha(b"abc"), 3)
    assert store.verify_blob(_sha(b"abc"), 3)
