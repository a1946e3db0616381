"""The archive format: layout, determinism, streaming verification and its refusals."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from photonpack import archive as bundle
from photonpack.archive import (
    DirectorySink,
    MemorySink,
    NullSink,
    Problem,
    blob_member,
    read_manifest,
    unpack,
    write_archive,
)
from photonpack.errors import ArchiveError, BuildError, IntegrityError
from tests.support.archives import (
    Archive,
    compress,
    decompress,
    frames_of,
    make_archive,
    member_data_offset,
    members_of,
    tar_member,
    tar_stream,
)


def collect(path: Path) -> list[str]:
    """Every problem ``unpack`` reports for ``path``, as text ([] when clean)."""
    found: list[Problem] = []
    try:
        unpack(path, NullSink(), on_problem=found.append)
    except IntegrityError:
        assert found, "IntegrityError without a reported problem"
    return [str(p) for p in found]


def wheel_sha(archive: Archive) -> str:
    return archive.manifest.wheels[0].sha256


def write(tmp_path: Path, data: bytes, name: str = "x.photon") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- layout


def test_archive_holds_manifest_then_sorted_blobs(small_archive: Archive) -> None:
    names = [name for name, _ in members_of(small_archive)]
    manifest = small_archive.manifest
    assert names == ["photon.json", *(blob_member(h) for h in manifest.blobs())]
    assert members_of(small_archive)[0][1] == manifest.to_bytes()


def test_members_are_plain_files_with_fixed_metadata(small_archive: Archive) -> None:
    with tarfile.open(fileobj=io.BytesIO(decompress(small_archive.path)), mode="r:") as tf:
        infos = tf.getmembers()
    assert {(i.type, i.mode, i.uid, i.gid, i.uname, i.gname, i.mtime) for i in infos} == {
        (tarfile.REGTYPE, 0o644, 0, 0, "", "", 315532800)
    }
    assert all(not i.pax_headers for i in infos)


def test_archive_is_one_zstd_frame_with_checksum(small_archive: Archive) -> None:
    data = small_archive.path.read_bytes()
    params = zstandard.get_frame_parameters(data)
    assert params.has_checksum
    assert params.window_size <= bundle.MAX_WINDOW_SIZE


def test_same_inputs_give_identical_bytes_across_dirs_umask_and_timezone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_archive(tmp_path / "one", extra_files={"data/w.bin": b"\x00\x01" * 5000})
    old = os.umask(0o077)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        second = make_archive(
            tmp_path / "two" / "deeper", extra_files={"data/w.bin": b"\x00\x01" * 5000}
        )
        os.utime(second.blobs / first.manifest.files[0].sha256, (1, 1))
        again = tmp_path / "again.photon"
        with again.open("wb") as out:
            write_archive(out, second.manifest, second.blob_path)
    finally:
        os.umask(old)
        monkeypatch.delenv("TZ")
        time.tzset()
    assert second.path.read_bytes() == first.path.read_bytes()
    assert again.read_bytes() == first.path.read_bytes()


def test_zstd_output_is_the_same_for_any_thread_count(
    small_archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = set()
    for threads in (1, 2, 4):
        monkeypatch.setattr(bundle, "ZSTD_THREADS", threads)
        out = io.BytesIO()
        write_archive(out, small_archive.manifest, small_archive.blob_path)
        outputs.add(out.getvalue())
    assert outputs == {small_archive.path.read_bytes()}


def test_archive_written_at_the_old_level_3_still_reads_and_verifies(
    small_archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Archives of earlier releases were written at zstd level 3; readers need no level.
    monkeypatch.setattr(bundle, "ZSTD_LEVEL", 3)
    old = tmp_path / "old.photon"
    with old.open("wb") as out:
        write_archive(out, small_archive.manifest, small_archive.blob_path)
    assert old.read_bytes() != small_archive.path.read_bytes()  # other compressed bytes
    sink = MemorySink(set(small_archive.manifest.blobs()))
    assert unpack(old, sink).digest == small_archive.manifest.digest
    assert collect(old) == []
    assert sink.blobs == {
        sha: small_archive.blob_path(sha).read_bytes() for sha in small_archive.manifest.blobs()
    }


def test_archive_of_many_zstd_jobs_is_the_same_for_any_thread_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 14 MiB of incompressible bytes: several zstd jobs (ZSTD_JOB_SIZE), whose
    # boundaries must not depend on the thread count either.
    payload = random.Random(3).randbytes(14 << 20)
    built = make_archive(tmp_path, extra_files={"weights.bin": payload})
    outputs = set()
    for threads in (1, 2, 4):
        monkeypatch.setattr(bundle, "ZSTD_THREADS", threads)
        out = io.BytesIO()
        write_archive(out, built.manifest, built.blob_path)
        outputs.add(hashlib.sha256(out.getvalue()).hexdigest())
    assert outputs == {hashlib.sha256(built.path.read_bytes()).hexdigest()}


def test_source_date_epoch_sets_member_mtime(
    small_archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    out = io.BytesIO()
    write_archive(out, small_archive.manifest, small_archive.blob_path)
    tar = zstandard.ZstdDecompressor().stream_reader(out.getvalue()).read()
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        assert {i.mtime for i in tf.getmembers()} == {1700000000}


def test_bad_source_date_epoch_is_a_build_error(
    small_archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(BuildError) as caught:
        write_archive(io.BytesIO(), small_archive.manifest, small_archive.blob_path)
    assert caught.value.message == (
        "SOURCE_DATE_EPOCH must be a whole number of seconds, found 'yesterday'; unset it or "
        "set it to e.g. the last commit time (git log -1 --format=%ct)"
    )


def test_write_refuses_a_blob_that_changed_since_the_manifest(tmp_path: Path) -> None:
    archive = make_archive(tmp_path, extra_files={"data/model.bin": b"weights"})
    sha = hashlib.sha256(b"weights").hexdigest()
    changed = tmp_path / "changed"
    changed.write_bytes(b"weightz")
    with pytest.raises(IntegrityError) as caught:
        write_archive(
            io.BytesIO(),
            archive.manifest,
            lambda h: changed if h == sha else archive.blob_path(h),
        )
    found = hashlib.sha256(b"weightz").hexdigest()
    assert caught.value.message == (
        f"{changed} (data/model.bin) changed after the manifest was made: expected 7 bytes, "
        f"sha256 {sha}, found 7 bytes, sha256 {found}; run photonpack verify --store to take "
        "the damaged copy out of use, then build or pull again"
    )


def test_write_reports_a_missing_blob_file_as_build_error(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    with pytest.raises(BuildError) as caught:
        write_archive(io.BytesIO(), archive.manifest, lambda h: tmp_path / "nowhere" / h)
    assert "No such file or directory" in caught.value.message
    assert caught.value.message.startswith(f"cannot read {tmp_path / 'nowhere'}/")


# ---------------------------------------------------------------- reading


def test_unpack_clean_archive_returns_its_manifest(small_archive: Archive) -> None:
    assert unpack(small_archive.path, NullSink()) == small_archive.manifest
    assert collect(small_archive.path) == []


def test_unpack_hands_every_verified_blob_to_the_sink(
    small_archive: Archive, tmp_path: Path
) -> None:
    sink = DirectorySink(tmp_path / "out")
    unpack(small_archive.path, sink)
    written = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert set(written) == set(small_archive.manifest.blobs())
    assert all(hashlib.sha256(data).hexdigest() == h for h, data in written.items())


def test_memory_sink_keeps_only_the_wanted_blob(small_archive: Archive) -> None:
    lock = small_archive.manifest.file(small_archive.manifest.lock)
    assert lock is not None
    sink = MemorySink({lock.sha256})
    unpack(small_archive.path, sink)
    assert sink.blobs == {lock.sha256: small_archive.lock_text.encode()}


def test_read_manifest_reads_only_the_first_member(tmp_path: Path) -> None:
    archive = make_archive(tmp_path, extra_files={"big.bin": os.urandom(4 * bundle.CHUNK_SIZE)})
    half = write(tmp_path, archive.path.read_bytes()[: archive.path.stat().st_size // 2])
    assert read_manifest(half) == archive.manifest
    with pytest.raises(IntegrityError):
        unpack(half, NullSink())


# ---------------------------------------------------------------- refusals


def _tampered_tar(archive: Archive, tmp_path: Path, name: str, offset: int = 0) -> Path:
    tar = bytearray(decompress(archive.path))
    tar[member_data_offset(bytes(tar), name) + offset] ^= 0x01
    return write(tmp_path, compress(bytes(tar)))


def test_unpack_rejects_flipped_byte_in_wheel_blob(small_archive: Archive, tmp_path: Path) -> None:
    sha = wheel_sha(small_archive)
    path = _tampered_tar(small_archive, tmp_path, blob_member(sha), 10)
    problems = collect(path)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"blobs/sha256/{sha} (wheel:tinydep-1.0-py3-none-any.whl): expected sha256 {sha}, "
        "found sha256 "
    )
    with pytest.raises(IntegrityError) as caught:
        unpack(path, NullSink())
    assert caught.value.exit_code == 3
    assert caught.value.message == (
        f"{path} failed verification: {problems[0]}; "
        "the archive was damaged or altered: fetch or build it again"
    )


def test_bad_blob_never_reaches_the_sink(small_archive: Archive, tmp_path: Path) -> None:
    sha = wheel_sha(small_archive)
    path = _tampered_tar(small_archive, tmp_path, blob_member(sha), 10)
    out = tmp_path / "out"
    with pytest.raises(IntegrityError):
        unpack(path, DirectorySink(out))
    before = {h for h in small_archive.manifest.blobs() if h < sha}
    assert {p.name for p in out.iterdir()} == before  # the first problem stops unpacking
    unpack(path, DirectorySink(out), on_problem=lambda p: None)
    left = {p.name for p in out.iterdir()}
    assert left == set(small_archive.manifest.blobs()) - {sha}


def test_unpack_rejects_flipped_byte_in_extra_file(small_archive: Archive, tmp_path: Path) -> None:
    entry = small_archive.manifest.file("data/model.bin")
    assert entry is not None
    path = _tampered_tar(small_archive, tmp_path, blob_member(entry.sha256))
    [problem] = collect(path)
    assert problem.startswith(f"blobs/sha256/{entry.sha256} (data/model.bin): expected sha256 ")


def test_unpack_rejects_edited_manifest(small_archive: Archive, tmp_path: Path) -> None:
    tar = bytearray(decompress(small_archive.path))
    at = tar.index(b'"name":"counter"') + len(b'"name":"')
    tar[at] = ord("k")  # still valid JSON: the lock file entry now points at nothing
    problems = collect(write(tmp_path, compress(bytes(tar))))
    assert problems == []  # a consistent manifest with another name is another photon...
    tar[at] = ord("{")  # ...but a broken one is refused
    [problem] = collect(write(tmp_path, compress(bytes(tar))))
    assert problem.startswith(
        "photon.json: expected a valid manifest, found invalid photon manifest"
    )


def test_unpack_rejects_non_canonical_manifest(small_archive: Archive, tmp_path: Path) -> None:
    members = members_of(small_archive)
    pretty = (members[0][0], members[0][1].replace(b'{"entry"', b'{ "entry"', 1))
    path = write(tmp_path, compress(tar_stream([pretty, *members[1:]])))
    assert collect(path) == [
        "photon.json: expected canonical JSON (sorted keys, no spaces), "
        "found another encoding of a manifest"
    ]


def test_unpack_rejects_flipped_compressed_byte(small_archive: Archive, tmp_path: Path) -> None:
    data = bytearray(small_archive.path.read_bytes())
    data[len(data) // 2] ^= 0x40
    problems = collect(write(tmp_path, bytes(data)))
    assert problems, "a flipped compressed byte must be refused"


def test_unpack_rejects_truncated_archive(small_archive: Archive, tmp_path: Path) -> None:
    data = small_archive.path.read_bytes()
    assert collect(write(tmp_path, data[:-2])) == [
        f"(zstd frame): expected a complete zstd frame with its checksum, found the file ends "
        f"after {len(data) - 2} bytes, inside the frame (truncated)"
    ]
    half = len(data) // 2
    problems = collect(write(tmp_path, data[:half]))
    assert len(problems) == 2
    assert problems[0].endswith("(truncated)")  # where the stream stopped...
    assert problems[1] == (  # ...and why
        "(zstd frame): expected a complete zstd frame with its checksum, found the file ends "
        f"after {half} bytes, inside the frame (truncated)"
    )


def test_unpack_rejects_garbage_after_the_frame(small_archive: Archive, tmp_path: Path) -> None:
    data = small_archive.path.read_bytes()
    assert collect(write(tmp_path, data + b"garbage")) == [
        f"(after the zstd frame): expected the end of the file at byte {len(data)}, "
        "found 7 bytes of trailing data"
    ]
    second_frame = compress(b"more")  # frames follow frames: its bytes are the tar stream's
    assert collect(write(tmp_path, data + second_frame)) == [
        "(end of archive): expected nothing after the end-of-archive blocks, "
        "found 4 bytes of trailing data in the tar stream"
    ]


def test_unpack_rejects_data_after_the_tar_end(small_archive: Archive, tmp_path: Path) -> None:
    tar = decompress(small_archive.path) + b"\0" * 512 + b"sneaky"
    assert collect(write(tmp_path, compress(tar))) == [
        "(end of archive): expected nothing after the end-of-archive blocks, "
        "found 6 bytes of trailing data in the tar stream"
    ]


def test_unpack_accepts_zero_padding_after_the_tar_end(
    small_archive: Archive, tmp_path: Path
) -> None:
    tar = decompress(small_archive.path) + b"\0" * 9216
    assert collect(write(tmp_path, compress(tar))) == []


def test_unpack_rejects_missing_and_unlisted_blobs(small_archive: Archive, tmp_path: Path) -> None:
    members = members_of(small_archive)
    sha = wheel_sha(small_archive)
    kept = [m for m in members if m[0] != blob_member(sha)]
    stranger = blob_member("f" * 64)
    path = write(tmp_path, compress(tar_stream([*kept, (stranger, b"x")])))
    size = small_archive.manifest.wheels[0].size
    assert collect(path) == [
        f"{stranger}: expected only blobs listed in photon.json, found an unlisted blob",
        f"blobs/sha256/{sha} (wheel:tinydep-1.0-py3-none-any.whl): expected a member of "
        f"{size} bytes, listed in photon.json, found no such member (missing)",
    ]


def test_unpack_rejects_duplicate_and_unsorted_members(
    small_archive: Archive, tmp_path: Path
) -> None:
    members = members_of(small_archive)
    dup = write(tmp_path, compress(tar_stream([*members, members[-1]])), "dup.photon")
    assert collect(dup) == [f"{members[-1][0]}: expected each blob once, found a duplicate member"]
    swapped = [members[0], members[2], members[1], *members[3:]]
    path = write(tmp_path, compress(tar_stream(swapped)), "swap.photon")
    assert collect(path) == [
        f"{members[1][0]}: expected members sorted by name, after {members[2][0]}, found unsorted"
    ]


def test_unpack_rejects_symlink_and_odd_names(small_archive: Archive, tmp_path: Path) -> None:
    members = members_of(small_archive)
    tar = (
        b"".join(tar_member(n, d) for n, d in members)
        + tar_member("zz-link", kind=tarfile.SYMTYPE)
        + tar_member("../../etc/passwd", b"root")
        + b"\0" * 1024
    )
    assert collect(write(tmp_path, compress(tar))) == [
        "zz-link: expected a regular file, found a symbolic link",
        "../../etc/passwd: expected a member named blobs/sha256/<64 hex digits>, "
        "found '../../etc/passwd'",
    ]


def test_unpack_rejects_wrong_size_member(small_archive: Archive, tmp_path: Path) -> None:
    members = members_of(small_archive)
    name, data = members[1]
    label = ", ".join(small_archive.manifest.blob_labels()[name.rsplit("/", 1)[1]])
    path = write(tmp_path, compress(tar_stream([members[0], (name, data + b"!"), *members[2:]])))
    assert collect(path) == [
        f"{name} ({label}): expected {len(data)} bytes, found {len(data) + 1} bytes"
    ]


def test_unpack_rejects_other_first_member(small_archive: Archive, tmp_path: Path) -> None:
    members = members_of(small_archive)
    path = write(tmp_path, compress(tar_stream([*members[1:], members[0]])))
    assert collect(path) == [
        f"{members[1][0]!r}: expected photon.json as the first member, found {members[1][0]!r}"
    ]


def test_unpack_rejects_window_over_the_cap(small_archive: Archive, tmp_path: Path) -> None:
    params = zstandard.ZstdCompressionParameters.from_level(
        3, window_log=25, write_checksum=1, write_content_size=0
    )
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as w:
        w.write(decompress(small_archive.path))
    path = write(tmp_path, out.getvalue())
    assert collect(path) == [
        "(zstd frame): expected a window of at most 16777216 bytes, "
        "found a window of 33554432 bytes"
    ]
    with pytest.raises(IntegrityError):
        read_manifest(path)


def test_file_that_is_not_zstd_is_an_archive_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"PK\x03\x04 a zip")
    with pytest.raises(ArchiveError) as caught:
        unpack(path, NullSink())
    assert caught.value.exit_code == 1
    assert caught.value.message == (
        f"{path} is not a photon archive: it is not zstd-compressed "
        "(first bytes 504b0304, expected 28b52ffd)"
    )
    with pytest.raises(ArchiveError):
        read_manifest(path)


def test_zstd_file_that_is_not_tar_is_an_archive_error(tmp_path: Path) -> None:
    path = write(tmp_path, compress(b"hello, this is not a tar stream" * 40))
    with pytest.raises(ArchiveError) as caught:
        unpack(path, NullSink())
    assert caught.value.message.startswith(
        f"{path} is not a photon archive: zstd data, but not a tar stream ("
    )


def test_missing_file_is_an_archive_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as caught:
        read_manifest(tmp_path / "nope.photon")
    assert (
        caught.value.message == f"cannot read {tmp_path / 'nope.photon'}: No such file or directory"
    )


def test_big_blob_streams_through_in_chunks(tmp_path: Path) -> None:
    payload = os.urandom(3 * bundle.CHUNK_SIZE + 123)
    archive = make_archive(tmp_path, extra_files={"big.bin": payload})
    sink = MemorySink({hashlib.sha256(payload).hexdigest()})
    unpack(archive.path, sink)
    assert sink.blobs[hashlib.sha256(payload).hexdigest()] == payload


@pytest.fixture
def _no_threads_left() -> Iterator[None]:
    import threading

    before = threading.active_count()
    yield
    assert threading.active_count() == before


@pytest.mark.usefixtures("_no_threads_left")
def test_unpack_stops_its_hashing_thread_even_on_failure(
    small_archive: Archive, tmp_path: Path
) -> None:
    data = small_archive.path.read_bytes()
    with pytest.raises(IntegrityError):
        unpack(write(tmp_path, data[: len(data) // 2]), NullSink())


# ---------------------------------------------------------------- big archives: head and body


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """An archive of SPLIT_SIZE bytes of blobs and more: the manifest in a head of its own."""
    rng = random.Random(19)
    return make_archive(
        tmp_path_factory.mktemp("big"),
        extra_files={
            "data/big.bin": rng.randbytes(bundle.SPLIT_SIZE),
            "data/small.bin": b"weights" * 100,
        },
    )


def _inflate(frame: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(frame)


def test_a_big_archive_is_a_head_and_a_body(big_archive: Archive) -> None:
    data = big_archive.path.read_bytes()
    head, pad, body = frames_of(data)
    members = members_of(big_archive)
    assert _inflate(head) == tar_member(*members[0])  # photon.json alone
    assert pad[:4] == b"\x50\x2a\x4d\x18" and pad[8:] == bytes(len(pad) - 8)
    assert (len(head) + len(pad)) % bundle.HEAD_ALIGN == 0 and 8 <= len(pad) < bundle.HEAD_ALIGN + 8
    assert _inflate(body) == tar_stream(members[1:])
    for frame in (head, body):
        params = zstandard.get_frame_parameters(frame)
        assert params.has_checksum and params.window_size <= bundle.MAX_WINDOW_SIZE
    assert collect(big_archive.path) == []
    assert read_manifest(big_archive.path) == big_archive.manifest
    one = write(big_archive.path.parent, compress(decompress(big_archive.path)), "one.photon")
    assert collect(one) == [] and len(frames_of(one.read_bytes())) == 1  # as before: read too


class _Trickle(io.RawIOBase):
    """A file that hands out at most ``step`` bytes per read: headers split every way."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        take = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._pos : self._pos + take]
        self._pos += len(chunk)
        return chunk


@pytest.mark.parametrize("step", [1, 5, 7, 9, 18, 1 << 20])
def test_frame_walker_follows_frames_split_across_reads(big_archive: Archive, step: int) -> None:
    from photonpack.archive.zstdframe import FrameGuard, decompressor, frame_start

    data = big_archive.path.read_bytes()
    head, pad, _body = frames_of(data)
    if step < 1 << 20:  # through the frame boundaries, not the 64 MiB, byte by byte
        data = data[: len(head) + len(pad) + 600]
    header_size, checksum, problem = frame_start(io.BytesIO(data), big_archive.path)
    assert problem is None
    raw = _Trickle(data, step)
    guard = FrameGuard(raw, header_size, checksum)  # type: ignore[arg-type]
    reader = decompressor(raw, guard)  # type: ignore[arg-type]
    inflated = b"".join(iter(lambda: reader.read(1 << 16), b""))
    assert guard.frames == 3
    if step < 1 << 20:
        assert guard.finish(len(data)) is not None  # cut inside the body
        assert inflated.startswith(tar_member(*members_of(big_archive)[0]))
        return
    assert inflated == decompress(big_archive.path)
    assert guard.finish(len(data)) is None and guard.end == len(data)


def test_a_skippable_frame_must_hold_zeros_only(big_archive: Archive, tmp_path: Path) -> None:
    data = bytearray(big_archive.path.read_bytes())
    head, _pad, _body = frames_of(bytes(data))
    data[len(head) + 8 + 100] = 1
    problems = collect(write(tmp_path, bytes(data)))
    assert problems[-1] == (
        f"(zstd frame): expected zeros in a skippable frame, found byte {len(head) + 108} "
        "(in frame 2) is 0x01"
    )


@pytest.mark.parametrize(
    ("options", "found"),
    [({"window_log": 25}, "a window of 33554432 bytes"), ({"write_checksum": 0}, "none")],
)
def test_unpack_rejects_a_later_frame_a_reader_must_not_take(
    big_archive: Archive, tmp_path: Path, options: dict[str, int], found: str
) -> None:
    head, pad, body = frames_of(big_archive.path.read_bytes())
    settings = {"window_log": 22, "write_checksum": 1, "write_content_size": 0, **options}
    params = zstandard.ZstdCompressionParameters.from_level(1, **settings)
    out = io.BytesIO()  # streamed, so that zstd keeps the window asked for
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as w:
        w.write(_inflate(body))
    path = write(tmp_path, head + pad + out.getvalue())
    expected = "a frame checksum" if found == "none" else "a window of at most 16777216 bytes"
    problems = collect(path)
    assert problems[-1] == (
        f"(zstd frame): expected {expected}, found frame 3, at byte {len(head) + len(pad)}: {found}"
    )
    assert problems[0].endswith("(truncated)")  # the stream stops where that frame begins


def test_the_body_written_before_the_manifest_is_the_archive_any_writer_writes(
    big_archive: Archive, tmp_path: Path
) -> None:
    import dataclasses
    import threading

    from photonpack.archive.early import EarlyBody

    manifest = big_archive.manifest
    provisional = dataclasses.replace(manifest, handlers=(), openapi=None)
    blobs = list(manifest.blobs())
    present, late = blobs[:1], blobs[1:]
    early = tmp_path / "early.photon"
    with (
        early.open("w+b") as out,
        EarlyBody(
            out, provisional, big_archive.blob_path, mtime=315532800, present=present
        ) as body,
    ):
        arrivals = [
            threading.Timer(0.05 * i, body.arrived, (sha,), {"hashed": False})
            for i, sha in enumerate(reversed(late))  # out of the archive's order
        ]
        for timer in arrivals:
            timer.start()
        for timer in arrivals:  # finish: every blob has arrived, or will not
            timer.join()
        assert body.finish(manifest)
    assert early.read_bytes() == big_archive.path.read_bytes()
    kept = tuple(f for f in manifest.files if f.path != "data/small.bin")
    other = dataclasses.replace(manifest, files=kept)  # not the same blobs
    huge = dataclasses.replace(  # a contract that makes the head outgrow its room
        manifest, openapi={"x": random.Random(1).randbytes(100 << 10).hex()}
    )
    for name, final in (("other", other), ("huge", huge)):
        with (
            (tmp_path / f"{name}.photon").open("w+b") as out,
            EarlyBody(out, provisional, big_archive.blob_path, mtime=315532800) as body,
        ):
            for sha in blobs:
                body.arrived(sha, hashed=False)
            assert not body.finish(final), name
