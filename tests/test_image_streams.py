"""A wheel's deflate streams become gzip members of the image's layers, byte for byte.

``streams.py`` finds each big deflated member of a wheel; ``layer.py`` copies
it into the layer as a gzip member of its own when the installed file is what
the zip says it holds (size and CRC-32), and compresses everything else. The
tar inside is the same either way, so the diff ID does not change; the layer
is valid gzip for ``gzip -t``, Python and (``test_image_podman.py``) podman.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.archive import read_manifest, write_archive
from photonpack.cli import cli
from photonpack.image import layer as layer_module
from photonpack.image.base import read_oci_layout
from photonpack.image.build import ImageOptions, build_image
from photonpack.image.layer import Entry, write_layer
from photonpack.image.streams import STREAM_BYTES, wheel_streams
from photonpack.store import Store
from tests.support.images import write_base
from tests.support.registry import stage_photon

SITE = "opt/photon/env/lib/python3.11/site-packages"
WHEEL = "pkg-1.0-py3-none-any.whl"


def _text(seed: str, size: int) -> bytes:
    """Compressible but not trivial: hex digits of a hash chain, as source code compresses."""
    out, block = bytearray(), seed.encode()
    while len(out) < size:
        block = hashlib.sha256(block).hexdigest().encode()
        out += b"value = '" + block[:24] + b"'\n"
    return bytes(out[:size])


MEMBERS: dict[str, tuple[bytes, int]] = {
    "pkg/big.py": (_text("big", 300_000), zipfile.ZIP_DEFLATED),
    "pkg/small.py": (b"x = 1\n", zipfile.ZIP_DEFLATED),
    "pkg/stored.bin": (_text("stored", 60_000), zipfile.ZIP_STORED),
    "pkg-1.0.data/purelib/extra.py": (_text("extra", 80_000), zipfile.ZIP_DEFLATED),
    "pkg-1.0.data/scripts/tool": (_text("tool", 80_000), zipfile.ZIP_DEFLATED),
}
INSTALLED = {
    "pkg/big.py": "pkg/big.py",
    "pkg/small.py": "pkg/small.py",
    "pkg/stored.bin": "pkg/stored.bin",
    "pkg-1.0.data/purelib/extra.py": "extra.py",
}


def _wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (data, method) in MEMBERS.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = method
            archive.writestr(info, data)
    return path


def _installed(root: Path) -> list[Entry]:
    entries = []
    for member, relative in INSTALLED.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(MEMBERS[member][0])
        entries.append(Entry(path=f"{SITE}/{relative}", source=path))
    return entries


def _raw(wheel: Path, member: str) -> bytes:
    """The member's deflate stream as the zip holds it."""
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo(member)
    data = wheel.read_bytes()[info.header_offset :]
    start = 30 + int.from_bytes(data[26:28], "little") + int.from_bytes(data[28:30], "little")
    return data[start : start + info.compress_size]


def _gzip_members(data: bytes) -> int:
    count = 0
    while data:
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        inflate.decompress(data)
        assert inflate.eof
        data, count = inflate.unused_data, count + 1
    return count


def _with(entries: list[Entry], streams: dict[str, object]) -> list[Entry]:
    return [
        Entry(path=e.path, source=e.source, stream=streams.get(e.path))  # type: ignore[arg-type]
        for e in entries
    ]


def test_big_deflated_members_that_land_in_site_packages_are_found(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / WHEEL)
    streams = wheel_streams([(WHEEL, wheel)], SITE)
    assert sorted(streams) == [f"{SITE}/extra.py", f"{SITE}/pkg/big.py"]
    big = streams[f"{SITE}/pkg/big.py"]
    assert big.length >= STREAM_BYTES
    assert (big.size, big.crc) == (300_000, zlib.crc32(MEMBERS["pkg/big.py"][0]))
    start = big.offset
    assert wheel.read_bytes()[start : start + big.length] == _raw(wheel, "pkg/big.py")


def test_a_layer_reusing_streams_holds_the_same_tar_and_is_valid_gzip(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / WHEEL)
    entries = _installed(tmp_path / "site")
    plain = write_layer(entries, tmp_path / "plain.tar.gz")
    streams = wheel_streams([(WHEEL, wheel)], SITE)
    reused = write_layer(_with(entries, dict(streams)), tmp_path / "reused.tar.gz")

    assert (reused.diff_id, reused.tar_size) == (plain.diff_id, plain.tar_size)
    assert reused.digest != plain.digest
    data = reused.path.read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == reused.digest
    assert len(data) == reused.size
    tar = gzip.decompress(data)
    assert "sha256:" + hashlib.sha256(tar).hexdigest() == reused.diff_id
    assert tar == gzip.decompress(plain.path.read_bytes())
    # Two streams copied: the members before, between and after them are compressed here.
    assert _raw(wheel, "pkg/big.py") in data
    assert _raw(wheel, "pkg-1.0.data/purelib/extra.py") in data
    assert _gzip_members(data) == 5
    if shutil.which("gzip"):
        subprocess.run(["gzip", "-t", str(reused.path)], check=True)


def test_an_installed_file_that_is_not_the_members_content_is_compressed(
    tmp_path: Path,
) -> None:
    wheel = _wheel(tmp_path / WHEEL)
    entries = _installed(tmp_path / "site")
    changed = tmp_path / "site" / "pkg" / "big.py"
    content = bytearray(changed.read_bytes())
    content[1000] ^= 1  # same size, other CRC
    changed.write_bytes(bytes(content))
    plain = write_layer(entries, tmp_path / "plain.tar.gz")
    streams = wheel_streams([(WHEEL, wheel)], SITE)
    reused = write_layer(_with(entries, dict(streams)), tmp_path / "reused.tar.gz")
    assert reused.diff_id == plain.diff_id
    data = reused.path.read_bytes()
    assert _raw(wheel, "pkg/big.py") not in data
    assert _raw(wheel, "pkg-1.0.data/purelib/extra.py") in data
    assert bytes(content) in gzip.decompress(data)


def test_a_stream_is_copied_through_bounded_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small chunk size: the copy and the check read a stream piece by piece."""
    monkeypatch.setattr(layer_module, "_CHUNK", 4096)
    wheel = _wheel(tmp_path / WHEEL)
    entries = _installed(tmp_path / "site")
    plain = write_layer(entries, tmp_path / "plain.tar.gz")
    reused = write_layer(
        _with(entries, dict(wheel_streams([(WHEEL, wheel)], SITE))), tmp_path / "r.tar.gz"
    )
    assert reused.diff_id == plain.diff_id
    assert gzip.decompress(reused.path.read_bytes()) == gzip.decompress(plain.path.read_bytes())


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the tiny base has CPython 3.11: run with 3.11"
)
def test_one_writer_and_several_give_the_same_image_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = {"bigdep/table.txt": _text("bigdep", 11 * 1024 * 1024)}  # not compiled: fast
    staged = stage_photon(
        tmp_path, "workers", [("bigdep", "1.0"), ("alpha", "1.0")],
        wheel_files={"bigdep": big}, wheel_payload={"bigdep": 200_000, "alpha": 0},
    )  # fmt: skip
    archive = tmp_path / "workers.photon"
    with archive.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    base = write_base(tmp_path / "base")
    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(
        cli, ["image", str(archive), "--base", f"oci:{base}", "--oci-layout",
              str(tmp_path / "out"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    store, manifest = Store(), read_manifest(archive)
    image_base = read_oci_layout(base, tag=None, architecture="amd64")
    digests = set()
    for workers in (1, 3):
        work = tmp_path / f"work-{workers}"
        work.mkdir()
        image = build_image(store, manifest, image_base, work, ImageOptions(workers=workers))
        digests.add(image.digest)
        layer = next(b for b in image.layers[-image.added :] if b.size > 1_000_000)
        assert layer.path is not None
        assert _gzip_members(layer.path.read_bytes()) > 1  # the big module's stream reused
    assert digests == {json.loads(result.stdout)["digest"]}


def test_a_big_reused_stream_is_written_through_bounded_memory(tmp_path: Path) -> None:
    """A 64 MiB file and its wheel's stream: checked and copied in chunks, never held."""
    size = 64 * 1024 * 1024
    wheel = tmp_path / WHEEL
    with (
        zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("pkg/lib.so", "w", force_zip64=True) as member,  # a zip64 local header
    ):
        for _ in range(size >> 20):
            member.write(bytes(1 << 20))
    installed = tmp_path / "site" / "pkg" / "lib.so"
    installed.parent.mkdir(parents=True)
    with installed.open("wb") as out:
        for _ in range(size >> 20):
            out.write(bytes(1 << 20))
    streams = wheel_streams([(WHEEL, wheel)], SITE)
    entry = Entry(path=f"{SITE}/pkg/lib.so", source=installed, stream=streams[f"{SITE}/pkg/lib.so"])
    tracemalloc.start()
    try:
        written = write_layer([entry], tmp_path / "layer.tar.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"writing the layer held {peak} bytes"
    assert _gzip_members(written.path.read_bytes()) == 3  # headers, the stream, the end
    assert written.tar_size > size
