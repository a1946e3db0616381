"""Benchmark: a photon with three sdist-only dependencies, cold and warm (issue 15).

Run by hand (needs the public index): ``.venv/bin/python bench/sources.py [--rounds N]``.

The photon declares the realistic requirement set plus three packages that
publish only an sdist (docopt 0.6.2, antlr4-python3-runtime 4.9.3, wget 3.2).
Measured in the same run, each in a fresh ``$PHOTONPACK_HOME``/cache:

- cold: ``photonpack build`` of that photon (lock, downloads, three hermetic
  builds) against ``pip wheel --no-deps`` of the same three sdists (isolated
  builds, build requirements from the index) plus photonpack's regular cold
  build of the photon without them. Target: <= 1.2x.
- warm: the same photon built again (lock fresh, wheels from the store's
  build cache) against the warm build of the photon without them (median of
  ``--rounds``, the two alternated). Target: within 10 %.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, REQUIREMENTS, clean_env, header, photon_build, timed, verdict

SDISTS = ["docopt==0.6.2", "antlr4-python3-runtime==4.9.3", "wget==3.2"]


def cpu() -> float:
    """CPU seconds (user + sys) of the finished child processes: steadier than wall time
    on a loaded machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="warm builds per photon (median)")
    args = parser.parse_args()
    header("sources: a photon with three sdist-only dependencies (issue 15)")
    work = Path(tempfile.mkdtemp(prefix="pp-bench-sources-"))
    try:
        plain = photon_build(work / "plain", name="plain")
        cold_plain = plain.run()
        print(f"   photonpack build, no sdists: cold {cold_plain:.1f} s", flush=True)
        wheel_dir = work / "pip-wheels"
        pip = [str(BIN / "python"), "-m", "pip", "wheel", "--no-deps", "-w", str(wheel_dir)]
        cold_pip = timed([*pip, *SDISTS], work, clean_env(work / "pip-cache"))
        print(f"   pip wheel --no-deps of the three sdists: cold {cold_pip:.1f} s", flush=True)
        sources = photon_build(work / "sources", name="sources", requirements=REQUIREMENTS + SDISTS)
        before = cpu()
        cold_sources = sources.run()
        cold_cpu = cpu() - before
        print(
            f"   photonpack build, with the sdists: cold {cold_sources:.1f} s "
            f"({cold_cpu:.1f} s CPU)",
            flush=True,
        )
        first = sources.archive.read_bytes()
        # Warm rounds alternate between the two photons, so that a load that comes and goes
        # (this VM's neighbours) falls on both sides alike.
        warm_runs: list[float] = []
        warm_cpus: list[float] = []
        plain_runs: list[float] = []
        plain_cpus: list[float] = []
        for _ in range(max(1, args.rounds)):
            for runs, cpus, build in (
                (warm_runs, warm_cpus, sources),
                (plain_runs, plain_cpus, plain),
            ):
                before = cpu()
                runs.append(build.run())
                cpus.append(cpu() - before)
        warm_sources, warm_plain = statistics.median(warm_runs), statistics.median(plain_runs)
        same = sources.archive.read_bytes() == first
        print()
        print(f"{'':44}{'cold s':>9}{'warm s':>9}")
        print(f"{'photonpack build, with 3 sdists':44}{cold_sources:9.2f}{warm_sources:9.2f}")
        print(f"{'photonpack build, without them':44}{cold_plain:9.2f}{warm_plain:9.2f}")
        print(f"{'pip wheel --no-deps (3 sdists)':44}{cold_pip:9.2f}")
        print()
        cold = cold_sources / (cold_pip + cold_plain)
        warm = warm_sources / warm_plain
        met_cold, met_warm = verdict(cold <= 1.2), verdict(warm <= 1.1)
        print(f"cold / (pip wheel + regular build)  {cold:.3f}x  (target <= 1.20: {met_cold})")
        print(f"warm / warm without sdists          {warm:.3f}x  (target <= 1.10: {met_warm})")
        print(f"warm rebuild byte-identical: {same}")
        print(
            f"CPU (user + sys) of photonpack build with the sdists: cold {cold_cpu:.2f} s, "
            f"warm {statistics.median(warm_cpus):.3f} s (median); without them, warm "
            f"{statistics.median(plain_cpus):.3f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
