"""A big wheel with no ``.metadata``: its METADATA read by HTTP range requests at lock."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.lock import remotezip
from photonpack.lock.lockfile import lock_photon
from photonpack.lock.metadist import wheel_metadata
from photonpack.lock.pylock import Lock
from photonpack.lock.remotezip import RangeRefused, ranged_wheel
from tests.support.index import PackageIndex, add_serving_stack
from tests.support.wheels import build_wheel
from tests.test_lock import X86_311, options, photon

BIG = "big-1.0-py3-none-any.whl"
PADDING = 3 << 20  # above BIG_WHEEL: "big"


def add_big(index: PackageIndex, requires: str = "small>=1") -> Path:
    """A 3 MB wheel (random padding does not deflate) that needs ``requires``."""
    padding = random.Random(0).randbytes(PADDING)
    files: dict[str, str | bytes] = {"big/__init__.py": "", "big/padding.bin": padding}
    return build_wheel(index.files_dir, "big", "1.0", requires=[requires], files=files)


def lock_big(index: PackageIndex, directory: Path) -> Lock:
    return lock_photon(photon(directory, "big"), options(index)).lock


@pytest.fixture
def big_index(package_index: PackageIndex) -> PackageIndex:
    add_serving_stack(package_index)
    add_big(package_index)
    package_index.add("small", "1.0")
    return package_index


def test_a_big_wheel_s_metadata_is_read_by_ranges_with_the_whole_download_s_result(
    big_index: PackageIndex, tmp_path: Path
) -> None:
    size = (big_index.files_dir / BIG).stat().st_size
    big_index.ranges = "honour"
    ranged = lock_big(big_index, tmp_path / "ranged")
    assert 0 < big_index.served[BIG] < size // 20  # the tail: 128 kB of 3 MB

    big_index.ranges, big_index.served = "ignore", {}
    whole = lock_big(big_index, tmp_path / "whole")
    assert big_index.served[BIG] >= size  # a server ignoring Range: the wheel, downloaded
    assert ranged.packages == whole.packages
    big = next(p for p in ranged.packages if p.name == "big")
    assert big.dependencies == ("small",)


def test_a_short_range_answer_falls_back_to_the_whole_wheel(
    big_index: PackageIndex, tmp_path: Path
) -> None:
    big_index.ranges = "short"  # a 206 with half the tail
    lock = lock_big(big_index, tmp_path)
    assert big_index.served[BIG] >= (big_index.files_dir / BIG).stat().st_size
    assert next(p for p in lock.packages if p.name == "big").dependencies == ("small",)


def test_build_refuses_a_lock_made_from_ranges_that_hid_a_requirement(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    """The ranges said ``small>=2`` (small 3.0 locked); the verified wheel says ``small<2``."""
    add_serving_stack(package_index)
    package_index.add("small", "1.0")
    package_index.add("small", "3.0")
    liar = add_big(package_index, "small>=2").read_bytes()
    real = add_big(package_index, "small<2").read_bytes()
    assert len(liar) == len(real)  # else the Content-Range's size gives the lie away
    package_index.ranges = "honour"
    package_index.lie_in_ranges(BIG, liar)
    (tmp_path / "svc.py").write_text(
        "from photonpack import Photon\n\n\nclass Svc(Photon):\n"
        "    requirement_dependency = ['big']\n"
    )
    common = ["-m", str(tmp_path / "svc.py"), "--index-url", package_index.url]
    common += ["--target", str(X86_311)]
    result = CliRunner().invoke(cli, ["lock", *common])
    assert result.exit_code == 0, result.output
    assert 'name = "small"\nversion = "3.0"' in (tmp_path / "pylock.svc.toml").read_text()
    result = CliRunner().invoke(cli, ["build", "--locked", "-o", str(tmp_path / "a"), *common])
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        1,
        f"error: lock file {tmp_path / 'pylock.svc.toml'} is incomplete: big 1.0 needs "
        f"small<2 on {X86_311}, but small 3.0 is locked; lock again with photonpack lock "
        "--upgrade (or delete the lock and run photonpack lock)",
    )


def counting(data: bytes, calls: list[tuple[int, int]]) -> remotezip.Fetch:
    def fetch(start: int, end: int) -> bytes:
        calls.append((start, end))
        return data[start:end]

    return fetch


def test_a_directory_bigger_than_the_tail_takes_more_ranges_and_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"big/m{n}.py": f"N = {n}\n" for n in range(200)}  # a 12 kB directory
    path = build_wheel(tmp_path, "big", "1.0", requires=["small>=1"], files=files)
    data, calls = path.read_bytes(), list[tuple[int, int]]()
    monkeypatch.setattr(remotezip, "TAIL", 1024)
    monkeypatch.setattr(remotezip, "MIN_FETCH", 1024)
    metadata = wheel_metadata(ranged_wheel(counting(data, calls), len(data)))
    assert metadata == wheel_metadata(str(path))
    assert b"Requires-Dist: small>=1" in (metadata or b"")
    assert 2 < len(calls) <= remotezip.MAX_REQUESTS
    assert sum(end - start for start, end in calls) < len(data)


def test_a_zip64_wheel_s_metadata_is_read_by_ranges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # zip64 end records for 3 members
        path = build_wheel(tmp_path, "big", "1.0", requires=["small>=1"])
    data, calls = path.read_bytes(), list[tuple[int, int]]()
    assert b"PK\x06\x06" in data  # the zip64 end of central directory
    metadata = wheel_metadata(ranged_wheel(counting(data, calls), len(data)))
    assert metadata == wheel_metadata(str(path))
    assert calls == [(0, len(data))]  # a small file: one request, the "tail" is all of it


def test_a_wheel_that_needs_too_many_ranges_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"big/m{n}.py": f"N = {n}\n" for n in range(200)}
    data = build_wheel(tmp_path, "big", "1.0", files=files).read_bytes()
    monkeypatch.setattr(remotezip, "TAIL", 64)
    monkeypatch.setattr(remotezip, "MIN_FETCH", 64)
    monkeypatch.setattr(remotezip, "MAX_REQUESTS", 2)  # the tail, the directory: not the member
    with pytest.raises(RangeRefused, match="more than 2 requests"):
        wheel_metadata(ranged_wheel(counting(data, []), len(data)))


def zipped(path: Path, members: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> str:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return str(path)


METADATA = b"Metadata-Version: 2.1\nName: x\nVersion: 1.0\n"


def test_the_metadata_member_alone_is_read_past_a_comment_and_vendored_dist_infos(
    tmp_path: Path,
) -> None:
    members = {
        "x/_vendor/y-2.0.dist-info/METADATA": b"vendored",
        "x-1.0.dist-info/METADATA": METADATA,
    }
    path = zipped(tmp_path / "x.whl", members)
    with zipfile.ZipFile(path, "a") as zf:
        zf.comment = b"PK\x05\x06 a comment that looks like an end record"
    assert wheel_metadata(path) == METADATA
    assert (
        wheel_metadata(zipped(tmp_path / "s.whl", members, method=zipfile.ZIP_STORED)) == METADATA
    )


def test_a_wheel_this_reader_cannot_vouch_for_is_left_to_pip(tmp_path: Path) -> None:
    two = {"x-1.0.dist-info/METADATA": METADATA, "y-1.0.dist-info/METADATA": METADATA}
    assert wheel_metadata(zipped(tmp_path / "two.whl", two)) is None
    one = {"x-1.0.dist-info/METADATA": METADATA}
    assert wheel_metadata(zipped(tmp_path / "bz.whl", one, method=zipfile.ZIP_BZIP2)) is None
    stored = Path(zipped(tmp_path / "crc.whl", one, method=zipfile.ZIP_STORED))
    stored.write_bytes(stored.read_bytes().replace(b"Name: x", b"Name: y", 1))  # the data only
    assert wheel_metadata(str(stored)) is None  # its CRC no longer matches
    (tmp_path / "not.whl").write_bytes(b"not a zip at all")
    assert wheel_metadata(str(tmp_path / "not.whl")) is None
