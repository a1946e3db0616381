"""Benchmark: ``photonpack build`` against ``pex``, warm caches, and the sum of the wheels.

Run by hand (needs the public index): ``.venv/bin/python bench/build.py [--rounds N]``.

The photon declares the realistic requirement set of the lock benchmark (plus
photonpack's serving stack, which every photon carries). In a fresh
``$PHOTONPACK_HOME`` it is built once cold (lock, download, describe
environment) and then ``--rounds`` times warm (the figure: median). The peers
package exactly the pinned versions of the photon's wheels, for the same
interpreter, wheels only, with the same (warm) cache discipline:

- ``pex -r pinned.txt``: resolves against the index on every build;
- ``pex --lock pex.lock``: from a lock made once by ``pex3 lock create`` (the
  closest analogue of a build from ``pylock.svc.toml``).

pex is installed into a throwaway venv for this run only. Targets (issue 4):
archive size <= 1.0x the sum of the wheel sizes; warm build time <= pex's.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    clean_env,
    header,
    photon_build,
    ratio,
    timed,
    tool_venv,
    verdict,
)
from photonpack._digest import sha256_file
from photonpack.archive import read_manifest
from photonpack.archive.manifest import Manifest


@dataclass(frozen=True, kw_only=True)
class Figure:
    name: str
    cold: float
    warm: float
    size: int


def changed_entries(a: Manifest, b: Manifest) -> list[tuple[str, str, str]]:
    """(path, old sha256, new sha256) of every file, runtime file or wheel that differs."""

    def entries(m: Manifest) -> dict[str, str]:
        found = {f"files/{f.path}": f.sha256 for f in m.files}
        found |= {f"runtime/{f.path}": f.sha256 for f in m.runtime}
        return found | {f"wheels/{w.filename}": w.sha256 for w in m.wheels}

    old, new = entries(a), entries(b)
    return [
        (key, old.get(key, "-")[:12], new.get(key, "-")[:12])
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ] or [("manifest", a.digest, b.digest)]


def warm_median(argv: list[str], cwd: Path, env: dict[str, str], rounds: int) -> float:
    return statistics.median([timed(argv, cwd, env) for _ in range(max(1, rounds))])


def bench_photonpack(work: Path, rounds: int) -> tuple[Figure, Path]:
    job = photon_build(work)
    argv, project, env, out = job.argv, job.cwd, job.env, job.archive
    cold = timed(argv, project, env)
    first, first_manifest = sha256_file(out)[0], read_manifest(out)
    warm = warm_median(argv, project, env, rounds)
    if sha256_file(out)[0] != first:
        # photonpack ships its own source: an edit to the checkout between two builds
        # changes the archive, legitimately. Anything else is a determinism bug.
        print(f"   WARNING: the warm build's bytes differ from the cold one's: {first}")
        for label, a, b in changed_entries(first_manifest, read_manifest(out)):
            print(f"     {label}: {a} -> {b}")
    return Figure(name="photonpack build", cold=cold, warm=warm, size=out.stat().st_size), out


def bench_pex(work: Path, pinned: Path, rounds: int) -> list[Figure]:
    tools = tool_venv(work, "pex")
    if tools is None:
        return []
    common = ["--python", sys.executable, "--pex-root"]
    figures: list[Figure] = []
    runs = {
        "pex -r pinned.txt": ["-r", str(pinned), "--no-build"],
        "pex --lock (pex3 lock)": ["--lock", str(work / "pex.lock.json")],
    }
    for name, args in runs.items():
        root = work / f"pex-root-{len(figures)}"
        env = clean_env(work / f"cache-pex-{len(figures)}")
        out = work / f"svc-{len(figures)}.pex"
        if "--lock" in args:
            lock = [str(tools / "pex3"), "lock", "create", "-r", str(pinned), "--wheel"]
            lock += ["--no-build", *common, str(root), "-o", str(work / "pex.lock.json")]
            seconds = timed(lock, work, env)
            print(f"   (pex3 lock create: {seconds:.1f} s, not counted)", flush=True)
        argv = [str(tools / "pex"), *args, *common, str(root), "-o", str(out)]
        cold = timed(argv, work, env)
        warm = warm_median(argv, work, env, rounds)
        figures.append(Figure(name=name, cold=cold, warm=warm, size=out.stat().st_size))
        print(f"   {name}: cold {cold:.1f} s, warm {warm:.1f} s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="warm builds per tool (median)")
    parser.add_argument("--no-pex", action="store_true", help="skip the pex peers")
    args = parser.parse_args()
    header("build: photonpack build vs pex, warm caches (issue 4)")
    work = Path(tempfile.mkdtemp(prefix="pp-bench-build-"))
    try:
        ours, archive = bench_photonpack(work, args.rounds)
        print(f"   photonpack build: cold {ours.cold:.1f} s, warm {ours.warm:.2f} s", flush=True)
        manifest = read_manifest(archive)
        wheels = sum(w.size for w in manifest.wheels)
        pinned = work / "pinned.txt"
        pinned.write_text("".join(f"{w.name}=={w.version}\n" for w in manifest.wheels))
        peers = [] if args.no_pex else bench_pex(work, pinned, args.rounds)
        print()
        print(f"{len(manifest.wheels)} wheels for {', '.join(manifest.targets)}")
        print(f"{'':26}{'cold s':>9}{'warm s':>9}{'size MB':>10}{'/ wheels':>10}")
        for fig in [ours, *peers]:
            print(
                f"{fig.name:26}{fig.cold:9.2f}{fig.warm:9.2f}"
                f"{fig.size / 1e6:10.1f}{ratio(fig.size, wheels):>10}"
            )
        print(f"{'sum of the wheel files':26}{'':18}{wheels / 1e6:10.1f}{'1.00x':>10}")
        print()
        size_ratio = ours.size / wheels
        print(
            f"archive / sum of wheels      {size_ratio:.3f}x  (target <= 1.00: "
            f"{verdict(size_ratio <= 1.0)})"
        )
        for peer in peers:
            r = ours.warm / peer.warm
            print(f"warm build / {peer.name:22} {r:.3f}x  (target <= 1.00: {verdict(r <= 1.0)})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
