"""Benchmark of source pinning and export (issue 15, photonpack/sources) against git and tar.

The project is a copy of the installed ``pip`` package (about a thousand files, vendored
libraries included) with a ``pyproject.toml``, committed to a local git repository. In the
same run, median of --repeat:

- tree digest (what ``lock --check`` pays for a local project) vs
  ``find -type f | sort | xargs sha256sum | sha256sum``;
- the directory's source archive vs GNU ``tar --sort=name ... | gzip -9n`` (same member
  rules: fixed mtime, owner, numeric ids);
- the same directory, pinned, asked for again (what ``build`` pays when the lock was
  written where another zlib made the archive) vs the same ``tar | gzip -9n``;
- a pinned commit's export from the cache vs ``git archive --format=tar | gzip -9n``;
- pinning a branch (ls-remote, fetch into a fresh cache) vs ``git clone --bare --quiet``.

Targets (set here): each ≤ 1.5x its peer.

    .venv/bin/python bench/source_archives.py [--dir /tmp/pp-bench-sources] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pip

from bench._common import header, ratio, target
from photonpack.sources.archive import source_archive
from photonpack.sources.form import DirectorySource, VcsSource
from photonpack.sources.tree import tree_digest
from photonpack.sources.vcs import pin_commit

GIT_ENV = {
    "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.org", "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@example.org", "PATH": "/usr/bin:/bin",
}  # fmt: skip


def sh(command: str, cwd: Path) -> None:
    subprocess.run(command, shell=True, cwd=cwd, check=True, env=GIT_ENV, capture_output=True)


def median(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def project(work: Path) -> tuple[Path, int, int]:
    root = work / "project"
    if not root.exists():
        shutil.copytree(Path(pip.__file__).parent, root / "src" / "pip",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        (root / "pyproject.toml").write_text('[project]\nname = "pipcopy"\nversion = "1.0"\n')
        sh("git init -q -b main . && git add -A && git commit -q -m one", root)
    files = [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]
    return root, len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pp-bench-sources"))
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    options.dir.mkdir(parents=True, exist_ok=True)
    header("sources: tree digest, source archive, git export and pin")
    root, count, size = project(options.dir)
    print(f"   project: {count} files, {size / 1e6:.1f} MB\n")
    out = options.dir / "peer.tar.gz"
    rows = []

    ours = median(lambda: tree_digest(root), options.repeat)
    peer = median(lambda: sh("find . -path ./.git -prune -o -type f -print0 | sort -z | "
                             "xargs -0 sha256sum | sha256sum", root), options.repeat)  # fmt: skip
    rows.append(("tree digest", "find | sort | sha256sum", ours, peer))

    cache = options.dir / "cache"
    form = DirectorySource(path="project")
    ours = median(lambda: source_archive(form, options.dir, cache), options.repeat)
    peer = median(lambda: sh("tar --sort=name --exclude=.git --mtime=@315532800 --owner=0 "
                             f"--group=0 --numeric-owner -cf - . | gzip -9n > {out}", root),
                  options.repeat)  # fmt: skip
    rows.append(("directory archive", "tar --sort=name | gzip -9n", ours, peer))
    # What build pays for a local project the lock pins, when the lock's archive sha256 is
    # not in the store (a lock written where another zlib made other bytes): the archive
    # remembered for the tree, its digest read back, else made again.
    pinned_form = DirectorySource(path="project", tree_digest=tree_digest(root))
    source_archive(pinned_form, options.dir, cache)
    ours = median(lambda: source_archive(pinned_form, options.dir, cache), options.repeat)
    rows.append(("pinned directory again (build)", "tar --sort=name | gzip -9n", ours, peer))

    vcs = pin_commit(VcsSource(url=root.as_uri(), rev="main"), cache)
    from photonpack.sources import vcs as vcs_module

    def export() -> None:
        with (options.dir / "ours.tar.gz").open("wb") as handle:
            vcs_module.export_commit(vcs, cache, handle)

    ours = median(export, options.repeat)
    peer = median(lambda: sh(f"git archive --format=tar {vcs.commit} | gzip -9n > {out}", root),
                  options.repeat)  # fmt: skip
    rows.append(("git export (cached commit)", "git archive | gzip -9n", ours, peer))

    def pin_fresh() -> None:
        with tempfile.TemporaryDirectory(dir=options.dir) as fresh:
            pin_commit(VcsSource(url=root.as_uri(), rev="main"), Path(fresh))

    def clone_fresh() -> None:
        with tempfile.TemporaryDirectory(dir=options.dir) as fresh:
            sh(f"git clone -q --bare {root.as_uri()} {fresh}/c", root)

    pinned, cloned = median(pin_fresh, options.repeat), median(clone_fresh, options.repeat)
    rows.append(("git pin (fresh cache)", "git clone --bare", pinned, cloned))

    print(f"{'photonpack':28} {'s':>7}   {'peer':28} {'s':>7}   ratio")
    for label, peer_label, ours, peer in rows:
        print(f"{label:28} {ours:7.3f}   {peer_label:28} {peer:7.3f}   {ratio(ours, peer)}")
    print()
    for label, _, ours, peer in rows:
        print(target(f"{label} / peer", ours / peer, 1.5))


if __name__ == "__main__":
    main()
