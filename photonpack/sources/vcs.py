"""git requirements: a branch, tag or commit resolved once to a commit id, its tree exported.

``git+URL@rev`` is pinned by the commit id ``rev`` names today
(:func:`pin_commit`); from then on only that commit is used. The repository is
fetched into a bare cache under the store (one per URL, guarded by a file
lock), and the commit's tree is exported by reading it object by object
(``git ls-tree``, ``git cat-file --batch``) into photonpack's own source
archive (:mod:`photonpack.sources.tarball`), not with ``git archive``: its
tar headers carry the commit id and the commit time, and their layout has
changed between git versions, so the same commit would not give the same
bytes everywhere. ``.gitattributes`` (``export-ignore``, filters) is not
applied; submodules are refused.

The network is needed when a commit is pinned, never after: a commit already
in the cache is exported offline. git's own configuration (credential
helpers, ``insteadOf``) applies; it never prompts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

from photonpack.errors import SourceError
from photonpack.sources.form import VcsSource
from photonpack.sources.tarball import Kind, Member, link_escapes, write_archive

__all__ = ["export_commit", "pin_commit", "repository_cache"]

_FULL_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHORT_ID = re.compile(r"[0-9a-f]{4,63}")
_KINDS: dict[str, Kind] = {"100644": "file", "100755": "exec", "120000": "link"}
_PURPOSE = (
    "photonpack fetches a git requirement once, when locking, to pin its commit and "
    "export that commit's tree into a source archive (the photon archive never needs the "
    "repository)"
)


def _redacted(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _shown(source: VcsSource) -> str:
    return f"git+{_redacted(source.url)}"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # Never a password prompt (CI has no terminal); C locale: messages we quote read the same.
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", LANG="C", GIT_ASKPASS="true")
    return env


def _git(
    args: Sequence[str], *, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=_env(), capture_output=True, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except FileNotFoundError as exc:
        raise SourceError(
            "git is not installed, and photonpack uses the git command line for git "
            "requirements: install git (apt-get install git), or replace the line by a wheel "
            "and --find-links"
        ) from exc
    if check and done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
    return done


def _last_line(error: subprocess.CalledProcessError) -> str:
    lines = [line.strip() for line in (error.stderr or b"").decode(errors="replace").splitlines()]
    useful = [line for line in lines if line]
    return useful[0].removeprefix("fatal: ") if useful else f"git exited {error.returncode}"


def repository_cache(cache_dir: Path, url: str) -> Path:
    """The bare repository caching ``url``'s objects (created when missing)."""
    key = hashlib.sha256(_redacted(url).encode()).hexdigest()[:32]
    path = cache_dir / "git" / key
    if (path / "HEAD").is_file():
        with contextlib.suppress(OSError):
            os.utime(path)  # used: gc keeps it for the keep window (photonpack.store.gc_cache)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Made aside and renamed into place: two locks may create the same cache at once.
    temp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{key}-"))
    try:
        _git(["init", "--quiet", "--bare", str(temp)])
        temp.rename(path)
    except subprocess.CalledProcessError as exc:
        raise SourceError(f"cannot create a git cache at {path}: {_last_line(exc)}") from exc
    except OSError as exc:
        if not (path / "HEAD").is_file():  # not a concurrent creation: a real failure
            raise SourceError(f"cannot create a git cache at {path}: {exc.strerror}") from exc
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return path


@contextlib.contextmanager
def _locked(repository: Path) -> Iterator[None]:
    """One fetch at a time into a cache repository: two locks of one photon may run at once."""
    with (repository / "photonpack.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pin_commit(source: VcsSource, cache_dir: Path) -> VcsSource:
    """``source`` with ``commit`` set, its objects in the cache; fetches only what is missing."""
    if source.vcs != "git":
        raise SourceError(
            f"{source.vcs}+{_redacted(source.url)} is a {source.vcs} requirement; photonpack "
            "fetches git repositories only: use a git mirror of it, or a wheel and --find-links"
        )
    repository = repository_cache(cache_dir, source.url)
    with _locked(repository):
        commit = source.commit or _full_id(source.rev) or _resolved(source, repository)
        if not _has_commit(repository, commit):
            _fetch(source, repository, [commit])
            if not _has_commit(repository, commit):
                _fetch_all(source, repository)
        if not _has_commit(repository, commit):
            raise SourceError(
                f"{_shown(source)} has no commit {commit}; name an existing branch, tag or "
                f"commit (git ls-remote {_redacted(source.url)} lists them)"
            )
    if source.subdirectory and not _has_path(repository, commit, source.subdirectory):
        raise SourceError(
            f"commit {commit} of {_shown(source)} has no directory {source.subdirectory} "
            "(#subdirectory=); name the directory that holds the project's pyproject.toml"
        )
    return _with_commit(source, commit)


def _with_commit(source: VcsSource, commit: str) -> VcsSource:
    import dataclasses

    return dataclasses.replace(source, commit=commit)


def _full_id(rev: str | None) -> str | None:
    return rev if rev is not None and _FULL_ID.fullmatch(rev) else None


def _resolved(source: VcsSource, repository: Path) -> str:
    """The commit ``source.rev`` names on the remote: a branch, a tag, or a short commit id."""
    refs = _remote_refs(source)
    rev = source.rev or "HEAD"
    for name in (f"refs/heads/{rev}", f"refs/tags/{rev}^{{}}", f"refs/tags/{rev}", rev):
        if name in refs:
            return refs[name]
    if _SHORT_ID.fullmatch(rev):
        _fetch_all(source, repository)
        found = _git(
            ["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repository, check=False
        )
        if found.returncode == 0:
            return found.stdout.decode().strip()
    raise SourceError(
        f"{_shown(source)} has no branch, tag or commit {rev!r}; name an existing one "
        f"(git ls-remote {_redacted(source.url)} lists them)"
    )


def _remote_refs(source: VcsSource) -> dict[str, str]:
    try:
        done = _git(["ls-remote", "--", source.url])
    except subprocess.CalledProcessError as exc:
        raise _unreachable(source, exc) from exc
    refs = {}
    for line in done.stdout.decode(errors="replace").splitlines():
        oid, _, name = line.partition("\t")
        refs[name] = oid
    return refs


def _unreachable(source: VcsSource, exc: subprocess.CalledProcessError) -> SourceError:
    return SourceError(
        f"cannot fetch {_shown(source)}: {_redacted(_last_line(exc))}; {_PURPOSE}: check the "
        "URL and your access to it"
    )


def _fetch(source: VcsSource, repository: Path, refspecs: Sequence[str]) -> None:
    done = _git(
        ["fetch", "--quiet", "--no-tags", "--", source.url, *refspecs], cwd=repository, check=False
    )
    if done.returncode != 0 and not refspecs[0].startswith("+"):
        return  # a server may refuse a commit id it does not advertise: the caller fetches all
    if done.returncode != 0:
        raise _unreachable(
            source, subprocess.CalledProcessError(done.returncode, "", b"", done.stderr)
        )


def _fetch_all(source: VcsSource, repository: Path) -> None:
    _fetch(source, repository, ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"])


def _has_commit(repository: Path, commit: str) -> bool:
    done = _git(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=repository, check=False)
    return done.returncode == 0


def _has_path(repository: Path, commit: str, path: str) -> bool:
    done = _git(["cat-file", "-t", f"{commit}:{path}"], cwd=repository, check=False)
    return done.returncode == 0 and done.stdout.strip() == b"tree"


def export_commit(source: VcsSource, cache_dir: Path, out: BinaryIO) -> str:
    """Write the source archive of the pinned ``source`` (its subdirectory) to ``out``.

    Returns the tree digest. Offline: the commit must be in the cache (:func:`pin_commit`).
    """
    assert source.commit is not None, "pin_commit first"
    repository = repository_cache(cache_dir, source.url)
    tree = f"{source.commit}:{source.subdirectory}" if source.subdirectory else source.commit
    entries = _tree_entries(source, repository, tree)
    with _Objects(repository) as objects:
        members = []
        for mode, oid, size, path in entries:
            kind = _KINDS[mode]
            target = ""
            if kind == "link":
                target = objects.read_all(oid).decode("utf-8", errors="surrogateescape")
                _check_link(source, path, target)
            members.append((Member(path=path, kind=kind, size=size, target=target), oid))
        oids = {member.path: oid for member, oid in members}
        return write_archive(
            [member for member, _ in members], lambda m: objects.open(oids[m.path], m.size), out
        )


def _tree_entries(
    source: VcsSource, repository: Path, tree: str
) -> list[tuple[str, str, int, str]]:
    try:
        done = _git(["ls-tree", "-r", "-z", "-l", "--full-tree", tree], cwd=repository)
    except subprocess.CalledProcessError as exc:
        raise SourceError(
            f"cannot read commit {source.commit} of {_shown(source)} from the cache: "
            f"{_last_line(exc)}; lock again to fetch it"
        ) from exc
    entries = []
    for record in done.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid, size = meta.decode().split()
        path = raw_path.decode("utf-8", errors="surrogateescape")
        if kind == "commit":
            raise SourceError(
                f"{_shown(source)} at {source.commit} has a submodule at {path}, which "
                "photonpack does not fetch; vendor it, or depend on it as its own requirement"
            )
        entries.append((mode, oid, int(size) if size != "-" else 0, path))
    return entries


def _check_link(source: VcsSource, path: str, target: str) -> None:
    if link_escapes(path, target):
        raise SourceError(
            f"{path} in {_shown(source)} is a symbolic link to {target}, outside the "
            f"{'subdirectory' if source.subdirectory else 'repository'}; a source archive holds "
            "the project only"
        )


class _Objects:
    """``git cat-file --batch``: blobs read one after another from one process."""

    def __init__(self, repository: Path) -> None:
        self.process = subprocess.Popen(
            ["git", "cat-file", "--batch"], cwd=repository, env=_env(),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.stdout = self.process.stdin, self.process.stdout

    def __enter__(self) -> _Objects:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stdin.close()
        self.process.wait()

    def open(self, oid: str, size: int) -> IO[bytes]:
        """A reader of the blob ``oid``, which must be read to its end before the next."""
        self.stdin.write(f"{oid}\n".encode())
        self.stdin.flush()
        header = self.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob" or int(header[2]) != size:
            raise SourceError(f"git cache object {oid} is not the blob ls-tree listed; lock again")
        return io.BufferedReader(_Blob(self.stdout, size))

    def read_all(self, oid: str) -> bytes:
        self.stdin.write(f"{oid}\n".encode())
        self.stdin.flush()
        header = self.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise SourceError(f"git cache object {oid} is not a blob; lock again")
        data = self.stdout.read(int(header[2]))
        self.stdout.read(1)  # the newline after each object
        return data


class _Blob(io.RawIOBase):
    """Exactly ``size`` bytes of the batch stream, then its separating newline on close."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self.stream, self.left = stream, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.stream.read(min(len(view), self.left)) if self.left else b""
        view[: len(data)] = data
        self.left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            while self.left and (data := self.stream.read(min(self.left, 1 << 16))):
                self.left -= len(data)
            self.stream.read(1)
        super().close()
