"""Archive requirements (``name @ https://…/x.tar.gz``, ``.zip``, a local file): pinned by sha256.

Each is repacked into the canonical source archive, so a project reaches the builder in
one shape whatever the archive it came in. Served from a local index, never the network.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path
from typing import Literal

import pytest

from photonpack.errors import IntegrityError, SourceError
from photonpack.sources.archive import source_archive
from photonpack.sources.form import ArchiveSource, DirectorySource
from tests.support.index import PackageIndex

PYPROJECT = b'[project]\nname = "x"\nversion = "1.0"\n'


def write_tar(
    path: Path, files: dict[str, bytes], *, mode: Literal["w:gz", "w:xz"] = "w:gz"
) -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1234567890, 0o664
            tar.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def project(tmp_path: Path) -> Path:
    root = tmp_path / "x"
    (root / "x").mkdir(parents=True)
    (root / "pyproject.toml").write_bytes(PYPROJECT)
    (root / "x" / "__init__.py").write_bytes(b"")
    return root


FILES = {"x-1.0/pyproject.toml": PYPROJECT, "x-1.0/x/__init__.py": b""}


def test_a_tar_and_a_zip_of_one_project_become_the_same_source_archive(tmp_path: Path) -> None:
    write_tar(tmp_path / "x-1.0.tar.gz", FILES)
    write_zip(tmp_path / "x-1.0.zip", FILES)
    write_tar(tmp_path / "x-1.0.tar.xz", FILES, mode="w:xz")
    made = [
        source_archive(ArchiveSource(url=name), tmp_path, tmp_path / "cache")
        for name in ("x-1.0.tar.gz", "x-1.0.zip", "x-1.0.tar.xz")
    ]
    directory = source_archive(DirectorySource(path="x"), project(tmp_path).parent, tmp_path / "c")
    assert {m.sha256 for m in made} == {directory.sha256}
    data = (tmp_path / "x-1.0.zip").read_bytes()
    assert made[1].pinned == ArchiveSource(
        url="x-1.0.zip", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )


def test_a_download_is_pinned_and_a_written_sha256_is_checked(
    package_index: PackageIndex,
    tmp_path: Path,
) -> None:
    sdist = write_tar(package_index.files_dir / "x-1.0.tar.gz", FILES)
    url = package_index.file_url(sdist.name)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    made = source_archive(ArchiveSource(url=url, name="x"), tmp_path, tmp_path / "cache")
    assert made.pinned == ArchiveSource(url=url, name="x", sha256=digest, size=sdist.stat().st_size)
    again = source_archive(made.pinned, tmp_path, tmp_path / "other-cache")
    assert again.sha256 == made.sha256
    wrong = "0" * 64
    with pytest.raises(IntegrityError) as caught:
        source_archive(ArchiveSource(url=url, sha256=wrong), tmp_path, tmp_path / "cache")
    assert str(caught.value) == (
        f"the source archive {url} has sha256 {digest}, but the requirement (or the lock) says "
        f"{wrong}; the file changed or was tampered with: check it, and correct the "
        "requirement's #sha256= if the new file is the right one"
    )


def test_an_unreachable_archive_url_names_it(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/x-1.0.tar.gz"
    expected = f"^cannot download the source archive {url}: .*; photonpack fetches it once, "
    with pytest.raises(SourceError, match=expected + "when locking, and pins its sha256"):
        source_archive(ArchiveSource(url=url), tmp_path, tmp_path / "cache")


def test_a_subdirectory_of_an_archive(tmp_path: Path) -> None:
    files = {"mono/py/pyproject.toml": PYPROJECT, "mono/py/x/__init__.py": b"", "mono/README": b""}
    write_zip(tmp_path / "mono.zip", files)
    made = source_archive(
        ArchiveSource(url="mono.zip", subdirectory="py"), tmp_path, tmp_path / "c"
    )
    directory = source_archive(DirectorySource(path="x"), project(tmp_path).parent, tmp_path / "d")
    assert made.sha256 == directory.sha256
    with pytest.raises(SourceError, match="has no files under nope; check #subdirectory="):
        source_archive(ArchiveSource(url="mono.zip", subdirectory="nope"), tmp_path, tmp_path / "c")


def test_an_archive_escaping_its_root_is_refused(tmp_path: Path) -> None:
    write_tar(tmp_path / "evil.tar.gz", {"../evil.py": b"", "x/pyproject.toml": PYPROJECT})
    with pytest.raises(SourceError) as caught:
        source_archive(ArchiveSource(url="evil.tar.gz"), tmp_path, tmp_path / "c")
    assert str(caught.value) == (
        "the source archive evil.tar.gz has a member '../evil.py' outside its root"
    )


def test_a_file_that_is_not_an_archive_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x-1.0.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(SourceError, match=r"^the source archive x-1.0.tar.gz cannot be read: "):
        source_archive(ArchiveSource(url="x-1.0.tar.gz"), tmp_path, tmp_path / "c")
