"""Index access: digests and sizes from the index, verified downloads into a cache."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from photonpack.errors import IntegrityError, PackageIndexError
from photonpack.lock.download import fetch_wheels
from photonpack.lock.index import IndexSettings, list_files, measure, redact_url
from photonpack.lock.pylock import LockedWheel
from tests.support.index import PackageIndex


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def locked(index: PackageIndex, path: Path) -> LockedWheel:
    return LockedWheel(
        name="alpha",
        version="1.0",
        filename=path.name,
        url=index.file_url(path.name),
        size=path.stat().st_size,
        sha256=sha256(path),
    )


def test_json_pages_give_digest_and_size(package_index: PackageIndex) -> None:
    wheel = package_index.add("alpha", "1.0")
    files = list_files(["Alpha"], IndexSettings(index_url=package_index.url))
    [found] = files["alpha"]
    assert (found.filename, found.sha256, found.size) == (
        wheel.name,
        sha256(wheel),
        wheel.stat().st_size,
    )
    assert found.url == package_index.file_url(wheel.name)


def test_html_pages_give_digest_from_fragment_and_size_from_head(tmp_path: Path) -> None:
    index = PackageIndex(tmp_path, html_only=True).start()
    try:
        wheel = index.add("alpha", "1.0")
        [found] = list_files(["alpha"], IndexSettings(index_url=index.url))["alpha"]
        assert (found.sha256, found.size) == (sha256(wheel), None)
        assert measure(found).size == wheel.stat().st_size
    finally:
        index.stop()


def test_find_links_directory_is_hashed_locally(tmp_path: Path) -> None:
    from tests.support.wheels import build_wheel

    wheel = build_wheel(tmp_path / "wheels", "beta", "2.0")
    build_wheel(tmp_path / "wheels", "unrelated", "1.0")
    settings = IndexSettings(
        index_url=(tmp_path / "no-index").as_uri(), find_links=(str(tmp_path / "wheels"),)
    )
    [found] = list_files(["beta"], settings)["beta"]
    assert (found.sha256, found.size, found.url) == (
        sha256(wheel),
        wheel.stat().st_size,
        wheel.as_uri(),
    )


def test_unreachable_index_names_the_url_and_the_options(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PackageIndexError) as info:
        list_files(
            ["alpha"], IndexSettings(index_url=f"http://user:secret@127.0.0.1:{port}/simple")
        )
    message = str(info.value)
    assert message.startswith(
        f"package index http://127.0.0.1:{port}/simple/alpha/ is unreachable: "
    )
    assert "--index-url URL, or --find-links DIR" in message
    assert "secret" not in message


def test_redact_url_strips_credentials_only() -> None:
    assert (
        redact_url("https://u:p@mirror.example:8443/simple") == "https://mirror.example:8443/simple"
    )
    assert redact_url("https://mirror.example/simple") == "https://mirror.example/simple"


def test_fetch_wheels_downloads_verifies_and_caches(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    wheel = package_index.add("alpha", "1.0")
    seen: list[int] = []
    got = fetch_wheels(
        [locked(package_index, wheel)], tmp_path / "cache", progress=lambda w, n: seen.append(n)
    )
    assert got == {sha256(wheel): tmp_path / "cache" / "sha256" / sha256(wheel)}
    assert got[sha256(wheel)].read_bytes() == wheel.read_bytes()
    assert sum(seen) == wheel.stat().st_size
    downloads = len(package_index.requests)
    fetch_wheels([locked(package_index, wheel)], tmp_path / "cache")
    assert len(package_index.requests) == downloads  # served from the verified cache


def test_a_download_in_progress_lies_outside_the_cache(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    from tests.support.wheels import build_wheel

    data = {"alpha/data.bin": os.urandom(2_500_000)}  # incompressible: downloaded in 3 chunks
    wheel = build_wheel(package_index.files_dir, "alpha", "1.0", files=data)
    cache, partial = tmp_path / "cache", tmp_path / "partial"
    partial.mkdir()
    seen: list[tuple[list[str], list[str]]] = []

    def look(_wheel: object, _received: int) -> None:  # mid-download: where are the bytes?
        seen.append(
            (
                sorted(p.name for p in (cache / "sha256").iterdir()),
                [p.name for p in partial.iterdir()],
            )
        )

    got = fetch_wheels([locked(package_index, wheel)], cache, progress=look, partial=partial)
    assert len(seen) > 1
    assert all(in_cache == [] and len(parts) == 1 for in_cache, parts in seen)
    assert seen[0][1][0].startswith(f".{sha256(wheel)}-")  # a temp file named for its blob
    assert [p.name for p in (cache / "sha256").iterdir()] == [sha256(wheel)]
    assert got[sha256(wheel)].read_bytes() == wheel.read_bytes()
    assert list(partial.iterdir()) == []


def test_fetch_wheels_rejects_tampered_bytes(package_index: PackageIndex, tmp_path: Path) -> None:
    wheel = package_index.add("alpha", "1.0")
    package_index.tamper(wheel.name, b"x" * 10)
    with pytest.raises(IntegrityError) as info:
        fetch_wheels([locked(package_index, wheel)], tmp_path / "cache")
    assert str(info.value).startswith(
        f"{wheel.name} from {package_index.file_url(wheel.name)} does not match the lock: "
        f"expected sha256 {sha256(wheel)} and {wheel.stat().st_size} bytes, "
        "got 10 bytes with sha256 "
    )
    assert info.value.exit_code == 3
    assert list((tmp_path / "cache" / "sha256").iterdir()) == []


def test_fetch_wheels_reads_file_urls(tmp_path: Path) -> None:
    from tests.support.wheels import build_wheel

    wheel = build_wheel(tmp_path / "w", "alpha", "1.0")
    entry = LockedWheel(
        name="alpha",
        version="1.0",
        filename=wheel.name,
        url=wheel.as_uri(),
        size=wheel.stat().st_size,
        sha256=sha256(wheel),
    )
    assert (
        fetch_wheels([entry], tmp_path / "cache")[entry.sha256].read_bytes() == wheel.read_bytes()
    )
