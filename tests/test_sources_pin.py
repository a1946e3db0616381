"""A pinned source is checked by its pin, not by its archive's bytes (which depend on zlib).

The lock records the tree digest of a local project and the commit of a git
requirement; the source archive made from them is gzip output, whose bytes a
machine with another zlib (zlib-ng) makes differently. A lock written there
must still build here, and the archive it gives must still pass ``verify``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import shutil
from pathlib import Path

from click.testing import CliRunner

from photonpack.archive import write_archive
from photonpack.archive.manifest import Manifest, SourceEntry, WheelEntry
from photonpack.cli import cli
from photonpack.diff import diff
from photonpack.diff_sides import Side
from photonpack.lock.lockfile import read_lock
from photonpack.sources.tree import tree_archive
from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.stack import build_photon
from tests.test_lock_sources import entry, index, photon, project, repository  # noqa: F401


def _as_if_locked_elsewhere(lock: Path, name: str, cache: Path) -> str:
    """Rewrite the lock's source-archive of ``name`` as another zlib would have made it.

    The same tar, gzip-compressed at another level: other bytes, other sha256, same
    files. Returns the sha256 the lock now records.
    """
    recorded = entry(lock, name)["tool"]["photonpack"]["source-archive"]
    sha256, size = recorded["hashes"]["sha256"], recorded["size"]
    made = cache / "sources" / f"{sha256}.tar.gz"
    other = gzip.compress(gzip.decompress(made.read_bytes()), compresslevel=1, mtime=0)
    other_sha256 = hashlib.sha256(other).hexdigest()
    assert other_sha256 != sha256
    text = lock.read_text()
    table = "[packages.tool.photonpack.source-archive]\nsize = {}\n\n"
    hashes = "[packages.tool.photonpack.source-archive.hashes]\nsha256 = {}\n"
    was = table.format(size) + hashes.format(f'"{sha256}"')
    assert text.count(was) == 1, text
    text = text.replace(was, table.format(len(other)) + hashes.format(f'"{other_sha256}"'))
    lock.write_text(text)
    return other_sha256


def test_a_lock_made_by_another_zlib_builds_here_and_its_archive_verifies(
    index: PackageIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    repo = repository(tmp_path / "repo")
    project(tmp_path / "src" / "locallib")
    (tmp_path / "src" / "locallib" / "pyproject.toml").write_text(
        (tmp_path / "src" / "locallib" / "pyproject.toml").read_text().replace("mylib", "locallib")
    )
    (tmp_path / "src" / "locallib" / "mylib").rename(tmp_path / "src" / "locallib" / "locallib")
    source = photon(tmp_path / "src", f"mylib @ git+{repo.as_uri()}@main", "./locallib")
    there = Store(tmp_path / "there")
    build_photon(index, source, tmp_path / "there.photon", store=there)
    lock = tmp_path / "src" / "pylock.svc.toml"
    for name in ("mylib", "locallib"):
        _as_if_locked_elsewhere(lock, name, there.root / "cache")
    edited = lock.read_bytes()

    here = build_photon(index, source, tmp_path / "here.photon", store=Store(tmp_path / "here"))
    assert lock.read_bytes() == edited  # the lock is fresh: the pins did not change
    built = {w.name: w for w in here.manifest.wheels if w.source is not None}
    assert sorted(built) == ["locallib", "mylib"]
    assert built["mylib"].source is not None
    assert built["mylib"].source.url == f"git+{repo.as_uri()}@{git_head(repo)}"
    assert built["mylib"].source.pin == f"git:{git_head(repo)}"
    (local,) = [s.source for s in read_lock(lock).sdists() if s.name == "locallib"]
    assert local is not None and local.tree_digest is not None  # type: ignore[union-attr]
    tree = local.tree_digest.removeprefix("sha256:")  # type: ignore[union-attr]
    assert built["locallib"].source is not None
    assert built["locallib"].source.pin == f"tree:{tree}"  # photon.json names the pin
    result = CliRunner().invoke(cli, ["verify", str(here.path)])
    assert result.exit_code == 0, result.output


def test_verify_refuses_a_local_project_archive_whose_files_are_not_the_pinned_tree(
    index: PackageIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    project(tmp_path / "src" / "mylib")
    source = photon(tmp_path / "src", "./mylib")
    store = Store(tmp_path / "home")
    built = build_photon(index, source, tmp_path / "svc.photon", store=store)
    (wheel,) = [w for w in built.manifest.wheels if w.source is not None]
    assert wheel.source is not None
    # The same path, other files: an archive of an edited copy, listed in photon.json.
    edited = tmp_path / "edited"
    shutil.copytree(tmp_path / "src" / "mylib", edited)
    (edited / "mylib" / "__init__.py").write_text("VALUE = 666\n")
    forged = tmp_path / "forged.tar.gz"
    with forged.open("wb") as out:
        tree = tree_archive(edited, out)
    sha256 = hashlib.sha256(forged.read_bytes()).hexdigest()
    store.add_blob_file(forged, sha256, forged.stat().st_size)
    swapped = dataclasses.replace(
        wheel,
        source=dataclasses.replace(wheel.source, sha256=sha256, size=forged.stat().st_size),
    )
    data = built.manifest.to_dict()
    data["wheels"] = [(swapped if w is wheel else w).to_dict() for w in built.manifest.wheels]
    manifest = Manifest.from_dict(data)
    tampered = tmp_path / "tampered.photon"
    with tampered.open("wb") as out:
        write_archive(out, manifest, store.blob_path)

    result = CliRunner().invoke(cli, ["verify", str(tampered)])
    assert result.exit_code == 3, result.output
    (line,) = [line for line in result.output.splitlines() if "source:" in line]
    (locked,) = read_lock(tmp_path / "src" / "pylock.svc.toml").sdists()
    pinned = locked.source.tree_digest  # type: ignore[union-attr]
    assert f"blobs/sha256/{sha256} (source:{wheel.source.filename})" in line
    assert f"expected the files of ./mylib the lock pins (tree {pinned})" in line
    assert f"found files with tree {tree}" in line
    assert CliRunner().invoke(cli, ["verify", str(built.path)]).exit_code == 0


def _side(label: str, wheel_sha256: str, archive_sha256: str, pin: str | None) -> Side:
    source = SourceEntry(
        filename="mylib-1.0.tar.gz", url="./mylib", sha256=archive_sha256, size=10, pin=pin
    )
    wheel = WheelEntry(
        filename="mylib-1.0-py3-none-any.whl", name="mylib", version="1.0",
        sha256=wheel_sha256, size=5, targets=("cp311-manylinux_2_28_x86_64",), source=source,
    )  # fmt: skip
    return Side(label=label, digest=None, wheels=(wheel,), targets=wheel.targets)


def test_diff_compares_sources_by_pin_not_by_the_bytes_zlib_made() -> None:
    tree_a, tree_b = f"tree:{'a' * 64}", f"tree:{'b' * 64}"
    # Another zlib made the archive: other bytes, the same pin; the wheel differs.
    a = _side("a", "1" * 64, "c" * 64, tree_a)
    (same,) = diff(a, _side("b", "2" * 64, "d" * 64, tree_a)).packages
    assert same.kind == "rehashed"
    assert same.wheels == (
        f"mylib-1.0-py3-none-any.whl {'1' * 64} -> {'2' * 64} "
        f"(both built from mylib-1.0.tar.gz pin {tree_a}: not reproducible)",
    )
    # The tree changed: the pin says so, whatever the archive's bytes.
    (edited,) = diff(a, _side("b", "2" * 64, "c" * 64, tree_b)).packages
    assert edited.wheels[0].endswith(f"(source ./mylib changed: pin {tree_a} -> {tree_b})")
    # An archive from before pins were recorded: compared by its source archive's sha256.
    (old,) = diff(
        _side("a", "1" * 64, "c" * 64, None), _side("b", "2" * 64, "c" * 64, tree_b)
    ).packages
    assert old.wheels[0].endswith(f"pin sha256:{'c' * 64}: not reproducible)")


def git_head(repo: Path) -> str:
    from tests.test_sources_vcs import git

    return git("rev-parse", "HEAD", cwd=repo)
