"""Pinned sources as PEP 751 tables: valid for packaging.pylock, and read back as they were."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.pylock import Pylock

from photonpack.errors import LockFileError
from photonpack.lock.source_entries import source_entry, source_from_entry
from photonpack.sources.form import ArchiveSource, DirectorySource, SourceForm, VcsSource

COMMIT = "c" * 40
SHA = "a" * 64
PINNED: list[SourceForm] = [
    VcsSource(url="https://host/r.git", rev="main", commit=COMMIT, subdirectory="py", name="r"),
    VcsSource(url="file:///srv/r", commit=COMMIT, name="r"),
    DirectorySource(path="./mylib", editable=True, tree_digest=f"sha256:{SHA}", name="mylib"),
    ArchiveSource(url="https://host/x-1.0.tar.gz", sha256=SHA, size=12, name="x"),
    ArchiveSource(url="vendor/x-1.0.zip", sha256=SHA, subdirectory="py", name="x"),
]


def lock_with(package: dict[str, Any]) -> dict[str, Any]:
    return {"lock-version": "1.0", "created-by": "photonpack", "packages": [package]}


@pytest.mark.parametrize("pinned", PINNED, ids=str)
def test_each_pinned_source_is_valid_pep_751_and_reads_back(pinned: SourceForm) -> None:
    package = {"name": pinned.name, **source_entry(pinned)}
    Pylock.from_dict(lock_with(package))  # raises when not PEP 751
    assert source_from_entry(package, at="packages[0]") == pinned


def test_the_tables_as_written() -> None:
    assert source_entry(PINNED[0]) == {
        "vcs": {"type": "git", "url": "https://host/r.git", "requested-revision": "main",
                "commit-id": COMMIT, "subdirectory": "py"},
    }  # fmt: skip
    assert source_entry(PINNED[2]) == {
        "directory": {"path": "./mylib", "editable": True},
        "tool": {"photonpack": {"tree-digest": f"sha256:{SHA}"}},
    }
    assert source_entry(PINNED[4]) == {
        "archive": {"path": "vendor/x-1.0.zip", "hashes": {"sha256": SHA}, "subdirectory": "py"},
    }


def test_an_unpinned_source_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="is not pinned"):
        source_entry(VcsSource(url="https://host/r.git"))


def test_an_index_package_has_no_source_and_a_directory_needs_its_digest() -> None:
    assert source_from_entry({"name": "six", "wheels": []}, at="packages[0]") is None
    with pytest.raises(LockFileError) as caught:
        source_from_entry({"name": "m", "directory": {"path": "./m"}}, at="packages[2]")
    assert str(caught.value) == (
        "packages[2].tool.photonpack.tree-digest is missing: a local project is pinned by its "
        "tree digest; lock again with photonpack lock"
    )
