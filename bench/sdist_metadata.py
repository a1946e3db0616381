"""Benchmark: locking sdists whose PKG-INFO is static (PEP 643) against the same sdists dynamic.

Run by hand, offline: ``.venv/bin/python bench/sdist_metadata.py [--rounds N]``.

A local index (started on a free port, as the tests' is) serves the serving
stack, hatchling's wheels and three hatchling sdists in two flavours that
differ only in their ``PKG-INFO``: Metadata-Version 2.2 with nothing
``Dynamic`` (lock reads it, no backend runs), and the same with
``Dynamic: Requires-Dist`` (lock falls back to pip, which installs hatchling
into an isolated environment per sdist and runs its metadata hook). Each
round runs a cold ``photonpack lock`` (the previous lock deleted) of each
photon, interleaved, in the same run; medians of wall and child CPU time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench._common import clean_env, header  # noqa: E402
from tests.support.index import PackageIndex, add_serving_stack  # noqa: E402
from tests.support.repack import closure, repack  # noqa: E402
from tests.support.sdists import build_sdist  # noqa: E402

NAMES = ("alpha-src", "beta-src", "gamma-src")
SOURCE = """
from photonpack import Photon

class Svc(Photon):
    requirement_dependency = {requirements!r}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    header("sdist metadata: static PKG-INFO read vs the backend run (issue 15)")
    work = Path(tempfile.mkdtemp(prefix="pp-bench-sdistmeta-"))
    index = PackageIndex(work / "index").start()
    try:
        run(work, index, args.rounds)
    finally:
        index.stop()
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, index: PackageIndex, rounds: int) -> None:
    add_serving_stack(index)
    for name in closure(["hatchling"]):
        repack(name, index.files_dir)
    sides: dict[str, Path] = {}
    for flavour, dynamic in (("static", ()), ("dynamic", ("Requires-Dist",))):
        names = [f"{flavour}-{name}" for name in NAMES]
        for name in names:
            build_sdist(
                index.files_dir, name, "1.0", backend="hatchling", metadata_version="2.2",
                dynamic=dynamic,
            )  # fmt: skip
        project = work / flavour
        project.mkdir()
        (project / "svc.py").write_text(SOURCE.format(requirements=names))
        sides[f"lock, 3 sdists, PKG-INFO {flavour}"] = project
    env = clean_env(work / "cache")
    env["PHOTONPACK_HOME"] = str(work / "home")
    argv = [sys.executable, "-m", "photonpack", "lock", "-m", "svc.py", "--index-url", index.url]
    wall: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, project in sides.items():
            for old in project.glob("pylock.*.toml"):
                old.unlink()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(
                argv, cwd=project, env=env, capture_output=True, text=True, check=False
            )
            wall[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
    print(f"load average {os.getloadavg()[0]:.2f}, {rounds} rounds, medians")
    print(f"{'':40}{'wall s':>9}{'cpu s':>9}")
    for name in sides:
        print(f"{name:40}{statistics.median(wall[name]):9.2f}{statistics.median(cpu[name]):9.2f}")
    static_s, dynamic_s = (statistics.median(wall[n]) for n in sides)
    print(f"static / dynamic (wall): {static_s / dynamic_s:.2f}x")


if __name__ == "__main__":
    main()
