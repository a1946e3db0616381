"""git requirements: a ref pinned to its commit once, the commit's tree exported deterministically.

Every repository is made here with ``git init`` and reached as ``file://``: never the network.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from photonpack.errors import SourceError
from photonpack.sources.archive import source_archive
from photonpack.sources.form import DirectorySource, VcsSource
from photonpack.sources.vcs import pin_commit

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a hatchling project in ``lib/``: two commits on main, tags, a branch."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    project = repo / "lib"
    (project / "mylib").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "mylib"\nversion = "1.0"\n'
    )
    (project / "mylib" / "__init__.py").write_text("VALUE = 1\n")
    (repo / "README").write_text("top\n")
    commit_all(repo, "one")
    git("tag", "v1.0", cwd=repo)
    git("tag", "-a", "-m", "annotated", "v1.0-annotated", cwd=repo)
    (project / "mylib" / "__init__.py").write_text("VALUE = 2\n")
    commit_all(repo, "two")
    git("branch", "feature", "HEAD~1", cwd=repo)
    return repo


def source(repo: Path, rev: str | None = None, **fields: str) -> VcsSource:
    return VcsSource(url=repo.as_uri(), rev=rev, **fields)  # type: ignore[arg-type]


def test_each_kind_of_ref_pins_its_commit(repo: Path, tmp_path: Path) -> None:
    first, second = git("rev-parse", "HEAD~1", cwd=repo), git("rev-parse", "HEAD", cwd=repo)
    cache = tmp_path / "cache"
    expected = {
        None: second, "main": second, "feature": first, "v1.0": first,
        "v1.0-annotated": first, first[:10]: first, first: first,
    }  # fmt: skip
    pinned = {rev: pin_commit(source(repo, rev), cache).commit for rev in expected}
    assert pinned == expected


def test_a_pin_stays_when_the_branch_moves_and_needs_no_network(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    made = source_archive(source(repo, "main", subdirectory="lib"), tmp_path, cache)
    (repo / "lib" / "mylib" / "__init__.py").write_text("VALUE = 3\n")
    commit_all(repo, "three")
    shutil.rmtree(repo)  # the pinned commit is exported from the cache alone
    again = source_archive(made.pinned, tmp_path, cache)
    assert again == made


def test_the_export_is_the_commit_tree_with_the_same_bytes_as_a_checkout(
    repo: Path, tmp_path: Path
) -> None:
    made = source_archive(source(repo, "v1.0", subdirectory="lib"), tmp_path, tmp_path / "c")
    git("checkout", "-q", "v1.0", cwd=repo)
    checkout = source_archive(DirectorySource(path="repo/lib"), tmp_path, tmp_path / "d")
    assert made.path.read_bytes() == checkout.path.read_bytes()
    assert str(made.pinned) == (
        f"git+{repo.as_uri()}@{git('rev-parse', 'HEAD', cwd=repo)}#subdirectory=lib"
    )


def test_two_caches_give_byte_identical_archives(repo: Path, tmp_path: Path) -> None:
    one = source_archive(source(repo), tmp_path, tmp_path / "one")
    two = source_archive(source(repo), tmp_path, tmp_path / "two")
    assert one.path.read_bytes() == two.path.read_bytes()
    assert one.sha256 == two.sha256


def test_an_unreachable_repository_is_one_line_naming_it(tmp_path: Path) -> None:
    url = (tmp_path / "nowhere").as_uri()
    with pytest.raises(SourceError) as caught:
        pin_commit(VcsSource(url=url, rev="main"), tmp_path / "cache")
    message = str(caught.value)
    assert message.startswith(f"cannot fetch git+{url}: ")
    assert message.endswith(
        "; photonpack fetches a git requirement once, when locking, to pin its commit and "
        "export that commit's tree into a source archive (the photon archive never needs "
        "the repository): check the URL and your access to it"
    )
    assert "\n" not in message


def test_credentials_in_the_url_never_reach_a_message(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        pin_commit(VcsSource(url="http://user:s3cret@127.0.0.1:9/repo.git"), tmp_path / "c")
    assert "s3cret" not in str(caught.value)
    assert str(caught.value).startswith("cannot fetch git+http://127.0.0.1:9/repo.git: ")


def test_a_ref_that_does_not_exist_is_named(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        pin_commit(source(repo, "nope"), tmp_path / "cache")
    assert str(caught.value) == (
        f"git+{repo.as_uri()} has no branch, tag or commit 'nope'; name an existing one "
        f"(git ls-remote {repo.as_uri()} lists them)"
    )
    missing = "0" * 40
    with pytest.raises(SourceError, match=f"has no commit {missing}; name an existing branch"):
        pin_commit(source(repo, missing), tmp_path / "cache")


def test_a_missing_subdirectory_is_named(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"has no directory nope \(#subdirectory=\); name"):
        pin_commit(source(repo, subdirectory="nope"), tmp_path / "cache")


def test_a_submodule_is_refused(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git("init", "-q", cwd=other)
    (other / "f").write_text("x")
    commit_all(other, "o")
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", other.as_uri(), "vendored",
        cwd=repo)  # fmt: skip
    commit_all(repo, "sub")
    with pytest.raises(SourceError, match="has a submodule at vendored, which photonpack does not"):
        source_archive(source(repo), tmp_path, tmp_path / "cache")


def test_other_version_control_systems_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        pin_commit(VcsSource(vcs="hg", url="https://host/repo"), tmp_path)
    assert str(caught.value) == (
        "hg+https://host/repo is a hg requirement; photonpack fetches git repositories only: "
        "use a git mirror of it, or a wheel and --find-links"
    )


@contextlib.contextmanager
def served_over_http(repo: Path, root: Path, name: str = "repo.git") -> Iterator[str]:
    """``repo`` served from ``root`` by a local HTTP server (git's dumb protocol): its URL."""
    root.mkdir()
    git("clone", "-q", "--bare", str(repo), str(root / name), cwd=root)
    git("update-server-info", cwd=root / name)
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def http_repo(repo: Path, tmp_path: Path) -> Iterator[str]:
    """``repo`` served over HTTP by a local server (git's dumb HTTP protocol): its URL."""
    with served_over_http(repo, tmp_path / "served") as url:
        yield url


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_repository_over_http_pins_and_exports_as_over_file(
    repo: Path, http_repo: str, tmp_path: Path
) -> None:
    over_http = source_archive(VcsSource(url=http_repo, rev="v1.0"), tmp_path, tmp_path / "h")
    over_file = source_archive(source(repo, "v1.0"), tmp_path, tmp_path / "f")
    assert over_http.pinned.commit == git("rev-parse", "v1.0^{commit}", cwd=repo)  # type: ignore[union-attr]
    assert over_http.path.read_bytes() == over_file.path.read_bytes()


def test_two_pins_into_one_cache_at_once_both_succeed(repo: Path, tmp_path: Path) -> None:
    import concurrent.futures

    cache = tmp_path / "cache"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        made = list(pool.map(lambda rev: source_archive(source(repo, rev), tmp_path, cache),
                             ["main", "main", "v1.0", "feature"]))  # fmt: skip
    assert made[0] == made[1] and made[2].sha256 == made[3].sha256
    assert len({m.path for m in made}) == 2


def test_the_exported_archive_builds_with_its_pep_517_backend_offline(
    repo: Path, tmp_path: Path
) -> None:
    """The seed's form, a hatchling project at a commit: its archive is a buildable source."""
    import sys
    import tarfile

    made = source_archive(source(repo, "v1.0", subdirectory="lib"), tmp_path, tmp_path / "c")
    unpacked = tmp_path / "unpacked"
    with tarfile.open(made.path) as tar:
        tar.extractall(unpacked, filter="data")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", str(unpacked / "source"), "-w", str(tmp_path / "wheels")],
        check=True, capture_output=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )  # fmt: skip
    assert [p.name for p in (tmp_path / "wheels").iterdir()] == ["mylib-1.0-py2.py3-none-any.whl"]
