"""A git requirement over HTTP, end to end: a real HTTP server started here serves the repository.

The server is git's dumb HTTP protocol (``git update-server-info`` and a static
file server), which git's HTTP transport reads as it reads any host: ``lock``
pins the commit the branch names, ``build`` builds it hermetically, and the
archive runs with no network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.offline import serve_offline
from tests.support.stack import build_photon
from tests.test_lock_sources import entry, index, photon, repository  # noqa: F401
from tests.test_sources_vcs import git, served_over_http


@pytest.fixture
def served_repository(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A hatchling project's repository, and its URL on a local HTTP server."""
    repo = repository(tmp_path / "repo")
    with served_over_http(repo, tmp_path / "served", "mylib.git") as url:
        yield repo, url


def test_a_git_requirement_over_http_is_locked_by_commit_built_and_served_offline(
    index: PackageIndex,  # noqa: F811
    served_repository: tuple[Path, str],
    tmp_path: Path,
) -> None:
    repo, url = served_repository
    commit = git("rev-parse", "HEAD", cwd=repo)
    source = photon(tmp_path / "src", f"mylib @ git+{url}@main")
    result = build_photon(index, source, tmp_path / "svc.photon", store=Store(tmp_path / "home"))
    locked = entry(tmp_path / "src" / "pylock.svc.toml", "mylib")
    assert locked["vcs"] == {
        "type": "git", "url": url, "requested-revision": "main", "commit-id": commit
    }  # fmt: skip
    built = next(w for w in result.manifest.wheels if w.name == "mylib")
    assert built.source is not None and built.source.url == f"git+{url}@{commit}"
    output = serve_offline(result.path, tmp_path / "airgap", "print(client.value())", port=18963)
    assert output.strip().endswith("1")
