"""Benchmark of ``photonpack gc`` and ``verify -n`` (issue 19), offline, by hand.

A store holds a named photon (the archive of ``bench/verify.py``, 320 MB of
payload by default) and what gc must remove: an unnamed photon (half as
big) and an unreachable environment of 20,000 small files. In the same run:

- ``photonpack gc --dry-run`` against ``du -s`` of the same unreachable
  content (a copy, laid out beside the store);
- ``photonpack gc`` against ``rm -rf`` of that copy;
- ``photonpack verify -n NAME`` (blobs re-hashed in place) against
  ``photonpack verify FILE``, the old ``-n`` path (the archive written back
  out, then verified: what ``verify -n`` did before), ``zstd -dc FILE |
  sha256sum``, and ``cat`` of the stored blobs ``| sha256sum``.

Targets: gc <= 1.5x (du + rm -rf) of the same content; verify -n >= 1.0x the
throughput of ``cat blobs | sha256sum`` and writes nothing.

    .venv/bin/python bench/gc.py [--dir /tmp/pp-bench-gc] [--mb 320] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import header, target
from bench.verify import build
from photonpack.admit import admit_archive
from photonpack.store import Store, locks
from tests.support.archives import make_archive

PYTHON = sys.executable
ENV_FILES = 20_000
ENV_FILE_SIZE = 4096


def _tree(root: Path, rng: random.Random) -> None:
    """An environment-like tree: ENV_FILES small files in 400 directories."""
    for i in range(ENV_FILES):
        folder = root / f"lib/python3.11/site-packages/pkg{i % 400}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"m{i}.py").write_bytes(rng.randbytes(ENV_FILE_SIZE))
    (root / ".complete").write_bytes(b"")


def _unnamed(directory: Path, total_mb: int) -> Path:
    path = directory / "other.photon"
    if path.exists():
        return path
    rng = random.Random(7)
    extra = {f"weights/other-{i}.bin": rng.randbytes(16 << 20) for i in range(total_mb // 16)}
    return make_archive(directory / "other", name="other", extra_files=extra).path


def _store(home: Path, named: Path, unnamed: Path, peer: Path, round_: int) -> None:
    """The store gc collects, and ``peer``: a copy of exactly what gc removes."""
    store = Store(home)
    manifest = admit_archive(named, store)
    store.refs.put("kept", manifest.digest, named.stat().st_size)
    other = admit_archive(unnamed, store)
    env = home / "envs" / ("e" * 63 + str(round_ % 10))
    _tree(env, random.Random(round_))
    os.utime(env / ".complete", (0, 0))  # used long ago: no keep window spares it
    locks.release()
    peer.mkdir(parents=True)
    for sha in other.blobs():
        if not store.has_blob(sha) or sha in manifest.blobs():
            continue
        shutil.copyfile(store.blob_path(sha), peer / sha)
    shutil.copytree(env, peer / "env")
    subprocess.run(["sync"], check=True)


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, done.stdout


def _shell(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


OLD_VERIFY_N = """
from pathlib import Path
from photonpack.archive import write_archive
from photonpack.store import Store
from photonpack.verify import verify_archive
store = Store()
manifest = store.manifest(store.refs.get("kept").digest)
with store.temp_dir("named-") as scratch:
    path = scratch / "kept.photon"
    with path.open("wb") as out:
        write_archive(out, manifest, store.blob_path)
    assert verify_archive(path).ok
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pp-bench-gc"))
    parser.add_argument("--mb", type=int, default=320, help="payload of the named photon")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    header("gc and verify -n: photonpack vs du, rm -rf, zstd -dc | sha256sum (issue 19)")
    named, unnamed = build(args.dir, args.mb), _unnamed(args.dir, args.mb // 2)
    rows: dict[str, list[float]] = {}
    freed = ""
    for round_ in range(args.repeat):
        home, peer = args.dir / f"home-{round_}", args.dir / f"peer-{round_}"
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(peer, ignore_errors=True)
        _store(home, named, unnamed, peer, round_)
        env = {**os.environ, "PHOTONPACK_HOME": str(home)}
        gc = [PYTHON, "-m", "photonpack", "gc", "--json", "--keep-recent", "0"]
        verify_n = [PYTHON, "-m", "photonpack", "verify", "-n", "kept"]
        store = Store(home)
        kept = store.manifest(store.refs.get("kept").digest)
        blobs = " ".join(str(store.blob_path(sha)) for sha in kept.blobs())
        locks.release()
        measured = {
            "du -s (the same content)": _shell(f"du -s {peer}"),
            "gc --dry-run": _timed([*gc, "--dry-run"], env)[0],
            "verify -n (in place)": _timed(verify_n, env)[0],
            "verify FILE": _timed([PYTHON, "-m", "photonpack", "verify", str(named)], env)[0],
            "old verify -n (write back + verify)": _timed([PYTHON, "-c", OLD_VERIFY_N], env)[0],
            "zstd -dc FILE | sha256sum": _shell(f"zstd -dc {named} | sha256sum"),
            "cat stored blobs | sha256sum": _shell(f"cat {blobs} | sha256sum"),
            "rm -rf (the same content)": _shell(f"rm -rf {peer}"),
        }
        seconds, out = _timed(gc, env)
        measured["gc"] = seconds
        report = json.loads(out)
        freed = f"{report['freed']['items']} items, {report['freed']['size'] / 1e6:.0f} MB"
        for label, value in measured.items():
            rows.setdefault(label, []).append(value)
        shutil.rmtree(home, ignore_errors=True)
    best = {label: min(values) for label, values in rows.items()}
    print(f"named photon archive: {named.stat().st_size / 1e6:.0f} MB; gc freed {freed} a round")
    print(f"best of {args.repeat} rounds (fresh store each round, page cache warm):")
    for label, value in best.items():
        print(f"  {label:40s} {value:7.2f} s")
    print()
    peer_gc = best["du -s (the same content)"] + best["rm -rf (the same content)"]
    print(target("gc vs du + rm -rf", best["gc"] / peer_gc, 1.5))
    print(target("gc --dry-run vs du -s", best["gc --dry-run"] / best["du -s (the same content)"]))
    hashing = best["cat stored blobs | sha256sum"]
    print(
        target(
            "verify -n throughput vs cat | sha256sum",
            hashing / best["verify -n (in place)"],
            1.0,
            at_least=True,
        )
    )
    print(
        target(
            "verify -n vs old verify -n",
            best["verify -n (in place)"] / best["old verify -n (write back + verify)"],
        )
    )
    print(target("verify -n vs verify FILE", best["verify -n (in place)"] / best["verify FILE"]))
    print(
        target(
            "verify FILE vs zstd -dc | sha256sum",
            best["verify FILE"] / best["zstd -dc FILE | sha256sum"],
        )
    )


if __name__ == "__main__":
    main()
