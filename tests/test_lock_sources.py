"""git, archive-URL and local-project requirements: locked with their pin, built, served offline.

Every repository and project is made here (``git init``, a hatchling project) and
reached as ``file://`` or a path beside the photon: never the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from photonpack.build import rebuild
from photonpack.errors import SourceError, StaleLockError
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, LockResult, check_lock, lock_photon
from photonpack.serving.source import parse_spec
from photonpack.sources.form import ArchiveSource, DirectorySource, SourceForm, VcsSource
from photonpack.store import Store
from photonpack.summary import inspect_report, render_inspect
from tests.support.index import PackageIndex
from tests.support.offline import serve_offline
from tests.support.repack import closure, repack
from tests.support.serving import Served
from tests.support.stack import build_photon, write_photon
from tests.test_sources_vcs import commit_all, git

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PHOTON = """
from photonpack import Photon


class Svc(Photon):
    requirement_dependency = {requirements!r}

    @Photon.handler
    def value(self) -> int:
        import mylib
        return mylib.VALUE
"""

PYPROJECT = (
    '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    '[project]\nname = "mylib"\nversion = "1.0"\ndependencies = ["tinydep>=1.0"]\n'
)


@pytest.fixture(scope="module")
def index(real_index: PackageIndex) -> PackageIndex:
    """The session's real index plus hatchling (the projects' backend)."""
    for name in closure(["hatchling"]):
        if not list(real_index.files_dir.glob(f"{name.replace('-', '_')}-*.whl")):
            repack(name, real_index.files_dir)
    return real_index


def project(root: Path, value: int = 1) -> Path:
    """A hatchling project ``mylib`` (it needs tinydep) at ``root``."""
    (root / "mylib").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "mylib" / "__init__.py").write_text(f"VALUE = {value}\n")
    return root


def repository(root: Path) -> Path:
    """A git repository holding the project: one commit on main."""
    project(root)
    git("init", "-q", "-b", "main", cwd=root)
    commit_all(root, "one")
    return root


def photon(directory: Path, *requirements: str) -> Path:
    return write_photon(directory, PHOTON.format(requirements=list(requirements)), "svc.py")


def lock(
    index: PackageIndex, source: Path, store: Store, *, upgrade_packages: tuple[str, ...] = ()
) -> LockResult:
    settings = LockOptions(
        index=IndexSettings(index_url=index.url),
        source_cache=store.root / "cache",
        upgrade_packages=upgrade_packages,
    )
    return lock_photon(parse_spec(str(source)), settings)


def entry(path: Path, name: str) -> dict:  # type: ignore[type-arg]
    data = tomllib.loads(path.read_text())
    return next(p for p in data["packages"] if p["name"] == name)


def test_a_git_requirement_is_locked_by_commit_built_and_served_offline(
    index: PackageIndex, tmp_path: Path
) -> None:
    repo = repository(tmp_path / "repo")
    commit = git("rev-parse", "HEAD", cwd=repo)
    store = Store(tmp_path / "home")
    source = photon(tmp_path / "src", f"mylib @ git+{repo.as_uri()}@main")
    result = build_photon(index, source, tmp_path / "svc.photon", store=store)
    locked = entry(tmp_path / "src" / "pylock.svc.toml", "mylib")
    assert locked["vcs"] == {
        "type": "git", "url": repo.as_uri(), "requested-revision": "main", "commit-id": commit
    }  # fmt: skip
    assert [d["name"] for d in locked["dependencies"]] == ["tinydep"]  # known at lock
    assert "hatchling" in " ".join(locked["tool"]["photonpack"]["build-packages"])
    built = next(w for w in result.manifest.wheels if w.name == "mylib")
    assert built.source is not None and built.source.url == f"git+{repo.as_uri()}@{commit}"
    schema = json.loads((Path(__file__).parents[1] / "schema" / "photon.schema.json").read_text())
    jsonschema.validate(result.manifest.to_dict(), schema)
    assert result.manifest.blob_labels()[built.source.sha256] == ["source:mylib-1.0.tar.gz"]
    shown = render_inspect(inspect_report(result.manifest))
    assert "mylib 1.0  " in shown and f"built from git+{repo.as_uri()}@{commit} sha256:" in shown
    output = serve_offline(result.path, tmp_path / "airgap", "print(client.value())", port=18961)
    assert output.strip().endswith("1")


def test_a_moved_branch_stays_pinned_until_upgrade(index: PackageIndex, tmp_path: Path) -> None:
    repo = repository(tmp_path / "repo")
    first = git("rev-parse", "HEAD", cwd=repo)
    store = Store(tmp_path / "home")
    source = photon(tmp_path / "src", f"mylib @ git+{repo.as_uri()}@main")
    lock(index, source, store)
    (repo / "mylib" / "__init__.py").write_text("VALUE = 2\n")
    second = commit_all(repo, "two")
    spec = parse_spec(str(source))
    options = LockOptions(index=IndexSettings(index_url=index.url))
    check_lock(spec, options)  # the branch moved: the lock still holds, pinned
    path = tmp_path / "src" / "pylock.svc.toml"
    assert not lock(index, source, store).changed
    (tmp_path / "src" / "other.txt").write_text("tinydep\n")  # any input change re-resolves
    write_photon(
        tmp_path / "src",
        PHOTON.format(requirements=[f"mylib @ git+{repo.as_uri()}@main", "-r other.txt"]),
        "svc.py",
    )
    assert lock(index, source, store).changed
    assert entry(path, "mylib")["vcs"]["commit-id"] == first  # kept without -U
    assert lock(index, source, store, upgrade_packages=("mylib",)).changed
    assert entry(path, "mylib")["vcs"]["commit-id"] == second


def test_a_local_project_is_pinned_by_its_tree_and_an_edit_makes_the_lock_stale(
    index: PackageIndex, tmp_path: Path
) -> None:
    project(tmp_path / "src" / "mylib")
    store = Store(tmp_path / "home")
    source = photon(tmp_path / "src", "-e ./mylib")
    lock(index, source, store)
    path = tmp_path / "src" / "pylock.svc.toml"
    locked = entry(path, "mylib")
    assert locked["directory"] == {"path": "./mylib", "editable": True}
    digest = locked["tool"]["photonpack"]["tree-digest"]
    assert digest.startswith("sha256:")
    options = LockOptions(index=IndexSettings(index_url=index.url))
    check_lock(parse_spec(str(source)), options)
    (tmp_path / "src" / "mylib" / "mylib" / "__init__.py").write_text("VALUE = 3\n")
    with pytest.raises(StaleLockError) as info:
        check_lock(parse_spec(str(source)), options)
    assert str(info.value) == (
        "pylock.svc.toml is stale: local project ./mylib changed since it was locked; "
        "run photonpack lock"
    )
    assert lock(index, source, store).changed
    assert entry(path, "mylib")["tool"]["photonpack"]["tree-digest"] != digest
    result = build_photon(index, source, tmp_path / "svc.photon", store=store)
    built = next(w for w in result.manifest.wheels if w.name == "mylib")
    assert built.filename == "mylib-1.0-py2.py3-none-any.whl"  # a regular wheel in the archive
    output = serve_offline(result.path, tmp_path / "airgap", "print(client.value())", port=18962)
    assert output.strip().endswith("3")


def test_an_archive_url_is_locked_by_sha256_and_two_builds_are_identical(
    index: PackageIndex, tmp_path: Path
) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for path in sorted(project(tmp_path / "p").rglob("*")):
            tar.add(path, arcname=f"mylib-1.0/{path.relative_to(tmp_path / 'p')}", recursive=False)
    archive = tmp_path / "mylib-1.0.tar.gz"
    archive.write_bytes(data.getvalue())
    store = Store(tmp_path / "home")
    source = photon(tmp_path / "src", f"mylib @ {archive.as_uri()}")
    first = build_photon(index, source, tmp_path / "a.photon", store=store)
    locked = entry(tmp_path / "src" / "pylock.svc.toml", "mylib")
    assert locked["archive"] == {
        "url": archive.as_uri(),
        "size": len(data.getvalue()),
        "hashes": {"sha256": hashlib.sha256(data.getvalue()).hexdigest()},
    }
    logs = sorted((store.root / "logs" / "build").iterdir())
    stamps = [log.stat().st_mtime_ns for log in logs]
    second = build_photon(index, source, tmp_path / "b.photon", store=store)
    assert [log.stat().st_mtime_ns for log in logs] == stamps  # the cache: no build ran
    assert first.path.read_bytes() == second.path.read_bytes()
    fresh = build_photon(index, source, tmp_path / "c.photon", store=Store(tmp_path / "other"))
    assert fresh.path.read_bytes() == first.path.read_bytes()  # rebuilt: reproducible
    again = rebuild(parse_spec(str(source)), first.manifest, tmp_path / "r.photon", store=store)
    assert again.digest == first.manifest.digest  # verify --rebuild: built again, the same


def test_a_ref_that_does_not_exist_is_one_line_and_writes_nothing(
    index: PackageIndex, tmp_path: Path
) -> None:
    repo = repository(tmp_path / "repo")
    source = photon(tmp_path / "src", f"mylib @ git+{repo.as_uri()}@nope")
    with pytest.raises(SourceError) as info:
        lock(index, source, Store(tmp_path / "home"))
    assert "nope" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "src" / "pylock.svc.toml").exists()


def test_forms_survive_the_lock_file(tmp_path: Path) -> None:
    from photonpack.lock.schema import Where
    from photonpack.lock.sdist import LockedSdist

    forms: list[SourceForm] = [
        VcsSource(url="https://h/r.git", rev="v1", commit="a" * 40, name="x"),
        DirectorySource(path="./lib", tree_digest="sha256:" + "b" * 64, name="x"),
        ArchiveSource(url="https://h/x-1.tar.gz", sha256="c" * 64, size=3, name="x"),
    ]
    for form in forms:
        sdist = LockedSdist(
            name="x", version="1", filename="x-1.tar.gz", url="", size=9, sha256="d" * 64,
            source=form,
        )  # fmt: skip
        table = {"name": "x", "version": "1", **sdist.package_tables()}
        back = LockedSdist.from_source(table, "packages[0]", Where(tmp_path), name="x", version="1")
        assert back is not None and back.source == form and back.sha256 == sdist.sha256


def test_a_bare_git_url_is_named_by_its_egg_or_its_metadata(
    index: PackageIndex, tmp_path: Path
) -> None:
    repo = repository(tmp_path / "repo")
    commit = git("rev-parse", "HEAD", cwd=repo)
    store = Store(tmp_path / "home")
    for line in (f"git+{repo.as_uri()}@main#egg=mylib", f"git+{repo.as_uri()}"):
        source = photon(tmp_path / "src", line)
        lock(index, source, store)
        vcs = entry(tmp_path / "src" / "pylock.svc.toml", "mylib")["vcs"]
        assert vcs["commit-id"] == commit and vcs["url"] == repo.as_uri(), line


def test_an_editable_project_is_live_under_run_m(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    from photonpack import Client

    project(tmp_path / "src" / "mylib")
    source = photon(tmp_path / "src", "-e ./mylib")
    served = serve_photon(str(source))
    assert Client(served.url).value() == 1
    served.stop()
    (tmp_path / "src" / "mylib" / "mylib" / "__init__.py").write_text("VALUE = 7\n")
    again = serve_photon(str(source))
    assert Client(again.url).value() == 7  # the project's files, not an installed copy
