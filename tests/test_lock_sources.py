"""git, archive-URL and local-project requirements: locked with their pin, built, served offline.

Every repository and project is made here (``git init``, a hatchling project) and
reached as ``file://`` or a path beside the photon: never the network.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from pathlib import Path

import pytest

from photonpack.errors import SourceError, StaleLockError
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, check_lock, lock_photon
from photonpack.serving.source import parse_spec
from photonpack.sources.form import ArchiveSource, DirectorySource, VcsSource
from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.offline import serve_offline
from tests.support.repack import closure, repack
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


def lock(index: PackageIndex, source: Path, store: Store, **options: object):  # type: ignore[no-untyped-def]
    settings = LockOptions(
        index=IndexSettings(index_url=index.url), source_cache=store.root / "cache", **options
    )  # type: ignore[arg-type]
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
    locked = entry(result.manifest and (tmp_path / "src" / "pylock.svc.toml"), "mylib")
    assert locked["vcs"] == {
        "type": "git", "url": repo.as_uri(), "requested-revision": "main", "commit-id": commit
    }  # fmt: skip
    assert [d["name"] for d in locked["dependencies"]] == ["tinydep"]  # known at lock
    assert "hatchling" in " ".join(locked["tool"]["photonpack"]["build-packages"])
    built = next(w for w in result.manifest.wheels if w.name == "mylib")
    assert built.source is not None and built.source.url == f"git+{repo.as_uri()}@{commit}"
    output = serve_offline(result.path, tmp_path / "airgap", "print(client.value())", port=18961)
    assert output.strip().endswith("1")
