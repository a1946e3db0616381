"""A local project directory: its tree digest notices an edit, its archive is the same bytes."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from photonpack.errors import SourceError, StaleLockError
from photonpack.sources.archive import source_archive
from photonpack.sources.form import DirectorySource
from photonpack.sources.tarball import SOURCE_MTIME, archive_digest
from photonpack.sources.tree import tree_digest, tree_members


def make_project(root: Path) -> Path:
    (root / "src" / "mylib").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "mylib"\nversion = "1.0"\n'
    )
    (root / "src" / "mylib" / "__init__.py").write_text("VALUE = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    return root


def junk(root: Path) -> None:
    """What the rule excludes: version control, caches, build output at the root."""
    for directory in (".git", "src/mylib/__pycache__", ".venv/lib", "build", "dist",
                      "src/mylib.egg-info", ".pytest_cache"):  # fmt: skip
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory / "x").write_text(str(os.getpid()))
    (root / "src" / "mylib" / "old.pyc").write_bytes(b"\0")


def test_members_are_sorted_and_exclude_caches_and_build_output(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    junk(root)
    (root / "src" / "mylib" / "build").mkdir()  # a subpackage named build is source
    (root / "src" / "mylib" / "build" / "__init__.py").write_text("")
    assert [(m.path, m.kind) for m in tree_members(root)] == [
        ("pyproject.toml", "file"),
        ("run.sh", "exec"),
        ("src/mylib/__init__.py", "file"),
        ("src/mylib/build/__init__.py", "file"),
    ]


def test_the_digest_ignores_junk_modes_and_times_but_not_an_edit(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    before = tree_digest(root)
    junk(root)
    os.utime(root / "pyproject.toml", (0, 0))
    (root / "pyproject.toml").chmod(0o600)
    assert tree_digest(root) == before
    (root / "src" / "mylib" / "__init__.py").write_text("VALUE = 2\n")
    assert tree_digest(root) != before
    (root / "src" / "mylib" / "__init__.py").write_text("VALUE = 1\n")
    (root / "run.sh").chmod(0o644)  # the execute bit is content
    assert tree_digest(root) != before


def test_two_copies_give_byte_identical_archives(tmp_path: Path) -> None:
    one = make_project(tmp_path / "one")
    two = make_project(tmp_path / "elsewhere" / "two")
    junk(two)
    os.utime(two / "pyproject.toml", (1, 1))
    a = source_archive(DirectorySource(path="one"), tmp_path, tmp_path / "cache-a")
    b = source_archive(DirectorySource(path="elsewhere/two"), tmp_path, tmp_path / "cache-b")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.sha256 == b.sha256 and a.path.name == f"{a.sha256}.tar.gz"
    assert a.pinned == DirectorySource(path="one", tree_digest=tree_digest(one))


def test_the_archive_is_a_plain_sorted_tar_under_source(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "link.txt").symlink_to("src/mylib/__init__.py")
    made = source_archive(DirectorySource(path="p"), tmp_path, tmp_path / "cache")
    data = made.path.read_bytes()
    assert data[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        members = tar.getmembers()
        assert [(m.name, m.mode, m.mtime, m.uid, m.uname) for m in members] == [
            ("source/link.txt", 0o777, SOURCE_MTIME, 0, ""),
            ("source/pyproject.toml", 0o644, SOURCE_MTIME, 0, ""),
            ("source/run.sh", 0o755, SOURCE_MTIME, 0, ""),
            ("source/src/mylib/__init__.py", 0o644, SOURCE_MTIME, 0, ""),
        ]
        assert members[0].issym() and members[0].linkname == "src/mylib/__init__.py"
        handle = tar.extractfile("source/src/mylib/__init__.py")
        assert handle is not None and handle.read() == b"VALUE = 1\n"


def test_the_tree_digest_is_read_back_from_an_archive_whatever_compressed_it(
    tmp_path: Path,
) -> None:
    root = make_project(tmp_path / "p")
    (root / "link.txt").symlink_to("src/mylib/__init__.py")
    made = source_archive(DirectorySource(path="p"), tmp_path, tmp_path / "cache")
    data = made.path.read_bytes()
    assert archive_digest(io.BytesIO(data)) == tree_digest(root)
    other = gzip.compress(gzip.decompress(data), compresslevel=1, mtime=0)  # another zlib's bytes
    assert other != data and archive_digest(io.BytesIO(other)) == tree_digest(root)
    (root / "src" / "mylib" / "__init__.py").write_text("VALUE = 2\n")
    assert archive_digest(io.BytesIO(data)) != tree_digest(root)
    stray = io.BytesIO()
    with tarfile.open(fileobj=stray, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("elsewhere/x"), io.BytesIO(b""))
    stray.seek(0)
    with pytest.raises(ValueError, match="'elsewhere/x' is outside source/"):
        archive_digest(stray)


def test_a_pinned_directory_takes_the_archive_made_for_its_tree_once_read_back(
    tmp_path: Path,
) -> None:
    import hashlib

    root = make_project(tmp_path / "p")
    cache = tmp_path / "cache"
    made = source_archive(DirectorySource(path="p"), tmp_path, cache)
    inode = made.path.stat().st_ino
    again = source_archive(made.pinned, tmp_path, cache)  # what build asks for
    assert again == made and again.path.stat().st_ino == inode  # not written again
    # A remembered archive is read back: one of another tree is never taken for this one.
    other = make_project(tmp_path / "other")
    (other / "extra.txt").write_text("not in p\n")
    wrong = source_archive(DirectorySource(path="other"), tmp_path, cache)
    pin = (
        cache
        / "sources"
        / "pins"
        / hashlib.sha256(
            f"tree {made.pinned.tree_digest}".encode()  # type: ignore[union-attr]
        ).hexdigest()
    )
    pin.write_text(wrong.sha256 + "\n")
    taken = source_archive(made.pinned, tmp_path, cache)
    assert taken.sha256 == made.sha256
    with taken.path.open("rb") as archive:
        assert archive_digest(archive) == tree_digest(root)


def test_a_pinned_directory_that_changed_is_stale(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    pinned = source_archive(DirectorySource(path="./p"), tmp_path, tmp_path / "c").pinned
    (root / "src" / "mylib" / "__init__.py").write_text("VALUE = 2\n")
    with pytest.raises(StaleLockError) as caught:
        source_archive(pinned, tmp_path, tmp_path / "c")
    assert str(caught.value) == (
        f"local project ./p changed since it was locked (its tree was "
        f"{pinned.tree_digest}, it is now {tree_digest(root)}); run photonpack lock"  # type: ignore[union-attr]
    )


def test_a_directory_that_is_not_a_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README").write_text("hi")
    with pytest.raises(SourceError) as caught:
        source_archive(DirectorySource(path="./notes"), tmp_path, tmp_path / "c")
    assert str(caught.value) == (
        f"local project ./notes ({tmp_path / 'notes'}) is not a Python project: it has no "
        "pyproject.toml, setup.py or setup.cfg; point the line at the project's root"
    )
    with pytest.raises(SourceError, match=r"^local project ./gone \(.*\) does not exist; a path"):
        source_archive(DirectorySource(path="./gone"), tmp_path, tmp_path / "c")


def test_a_link_out_of_the_project_is_refused(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "secret").symlink_to("../../etc/passwd")
    with pytest.raises(SourceError) as caught:
        tree_members(root)
    assert str(caught.value) == (
        f"{root / 'secret'} is a symbolic link to ../../etc/passwd, outside the project "
        f"{root}; a source archive holds the project only: copy the file into the project instead"
    )


def other_pythons() -> list[str]:
    """Interpreters of other versions on this machine (pyenv's), to compare bytes with."""
    found = sorted(str(p) for p in Path("/root/.pyenv/versions").glob("3.1[0-9]*/bin/python"))
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}."
    return [p for p in found if f"/{mine}" not in p]


def test_every_python_here_writes_the_same_bytes(tmp_path: Path) -> None:
    pythons = other_pythons()
    if not pythons:
        pytest.skip("no other Python version on this machine")
    root = make_project(tmp_path / "p")
    odd = root / "src" / "mylib" / ("long" * 40)
    odd.mkdir()
    (odd / "ünïcode.py").write_text("x = 1\n")  # a pax header: long and non-ASCII
    (root / "link").symlink_to("run.sh")
    here = source_archive(DirectorySource(path="p"), tmp_path, tmp_path / "c").sha256
    script = (
        "import sys; from pathlib import Path; "
        "from photonpack.sources.archive import source_archive; "
        "from photonpack.sources.form import DirectorySource; "
        "a = source_archive(DirectorySource(path='p'), Path(sys.argv[1]), Path(sys.argv[2])); "
        "print(a.sha256)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for python in pythons:
        done = subprocess.run([python, "-c", script, str(tmp_path), str(tmp_path / python[-20:])],
                              env=env, capture_output=True, text=True, check=True)  # fmt: skip
        assert (python, done.stdout.strip()) == (python, here)
