"""Layers stream through bounded memory, however big their files and however well they compress.

A base layer holding a 192 MiB file (a torch wheel's libraries are that big)
of zeros, which gzip and zstd shrink to a few hundred KiB: reading the base,
and unpacking the layer as ``-o FILE.tar`` does, must not hold the file in
memory. tracemalloc sees every bytes object zlib and zstandard hand back.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard

from photonpack.errors import IntegrityError
from photonpack.image.base import BaseImage, Blob
from photonpack.image.rootfs import open_uncompressed, read_rootfs

BIG = 192 * 1024 * 1024
BOUND = 32 * 1024 * 1024  # well below BIG: a few chunks in flight, not the file


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


class _Tee(io.RawIOBase):
    """Hash the tar on its way into the compressor."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)


def _gzip(out: BinaryIO) -> BinaryIO:
    return gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0)  # type: ignore[return-value]


def _zstd(out: BinaryIO) -> BinaryIO:
    return zstandard.ZstdCompressor(level=1).stream_writer(out, closefd=False)


def _base(directory: Path, compress: Callable[[BinaryIO], BinaryIO], media: str) -> BaseImage:
    path = directory / "layer"
    with path.open("wb") as raw, compress(raw) as packed:
        tee = _Tee(packed)
        with tarfile.open(fileobj=tee, mode="w|") as tar:
            passwd = b"root:x:0:0:root:/root:/bin/sh\n"
            info = tarfile.TarInfo("etc/passwd")
            info.size = len(passwd)
            tar.addfile(info, io.BytesIO(passwd))
            info = tarfile.TarInfo("opt/torch/lib/libtorch_cpu.so")
            info.size = BIG
            tar.addfile(info, io.BufferedReader(_Zeros(BIG), 1 << 20))
    data = path.read_bytes()
    layer = Blob(
        media_type=f"application/vnd.oci.image.layer.v1.{media}",
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        size=len(data),
        path=path,
    )
    assert layer.size < BIG // 100  # it compresses a hundredfold and more
    config = directory / "config"
    config.write_bytes(b"{}")
    return BaseImage(
        name="big",
        digest="sha256:" + "0" * 64,
        config={"architecture": "amd64", "os": "linux"},
        config_blob=Blob(media_type="config", digest="sha256:" + "1" * 64, size=2, path=config),
        layers=(layer,),
        diff_ids=("sha256:" + tee.hash.hexdigest(),),
    )


@pytest.mark.parametrize(("compress", "media"), [(_gzip, "tar+gzip"), (_zstd, "tar+zstd")])
def test_a_layer_with_a_big_file_is_read_and_unpacked_in_bounded_memory(
    tmp_path: Path, compress: Callable[[BinaryIO], BinaryIO], media: str
) -> None:
    base = _base(tmp_path, compress, media)
    tracemalloc.start()
    try:
        fs = read_rootfs(base)
        _, peak_reading = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        total = 0
        with open_uncompressed(base.layers[0]) as layer:
            while chunk := layer.read(1 << 20):
                total += len(chunk)
        _, peak_unpacking = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fs.kind("opt/torch/lib/libtorch_cpu.so") == "file"
    assert fs.read("etc/passwd") == b"root:x:0:0:root:/root:/bin/sh\n"
    assert fs.uncompressed_sizes == [total]
    assert total > BIG
    assert peak_reading < BOUND, f"reading the base held {peak_reading} bytes"
    assert peak_unpacking < BOUND, f"unpacking the layer held {peak_unpacking} bytes"


def test_a_gzip_layer_whose_deflate_data_is_damaged_is_a_clear_error(tmp_path: Path) -> None:
    """Bytes that match the digest but do not inflate: the inflater's error, in one line."""
    path = tmp_path / "layer"
    packed = bytearray(gzip.compress(hashlib.shake_256(b"x").digest(200_000), mtime=0))
    packed[len(packed) // 2 : len(packed) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(packed))
    config = tmp_path / "config"
    config.write_bytes(b"{}")
    base = BaseImage(
        name="damaged",
        digest="sha256:" + "0" * 64,
        config={"architecture": "amd64", "os": "linux"},
        config_blob=Blob(media_type="config", digest="sha256:" + "1" * 64, size=2, path=config),
        layers=(
            Blob(
                media_type="application/vnd.oci.image.layer.v1.tar+gzip",
                digest="sha256:" + hashlib.sha256(packed).hexdigest(),
                size=len(packed),
                path=path,
            ),
        ),
        diff_ids=("sha256:" + "2" * 64,),
    )
    with pytest.raises(IntegrityError, match="is not a readable tar") as raised:
        read_rootfs(base)
    assert "\n" not in str(raised.value)
