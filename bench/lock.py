"""Benchmark: photonpack lock against pip-compile --generate-hashes, pip lock and uv.

Run by hand (needs the public index): ``.venv/bin/python bench/lock.py [--rounds N]``.
Each tool locks the same realistic requirement set (plus photonpack's serving
stack, so that every tool resolves the same thing) with a cold cache (a fresh
XDG_CACHE_HOME) and then a warm one; machine pip configuration is ignored by
all of them. uv is installed into a throwaway venv for this run only.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    BIN,
    REPO,
    REQUIREMENTS,
    clean_env,
    header,
    timed,
    tool_venv,
    verdict,
    write_photon,
)
from photonpack.serving.requirements import SERVING_REQUIREMENTS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1, help="warm runs per tool (median)")
    args = parser.parse_args()
    header("lock: photonpack lock vs pip-compile, pip lock, uv (issue 3)")
    work = Path(tempfile.mkdtemp(prefix="photonpack-bench-"))
    try:
        lines = [*REQUIREMENTS, *SERVING_REQUIREMENTS]
        (work / "requirements.in").write_text("\n".join(lines) + "\n")
        write_photon(work)
        uv_bin = tool_venv(work, "uv")
        uv = uv_bin / "uv" if uv_bin else None
        # Bytecode for every tool first, as an installed package has it: "cold" below
        # means an empty download/HTTP cache, not compiling pip on the first run.
        site = Path(sysconfig.get_paths()["purelib"])
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(REPO / "photonpack"), str(site)],
            env=clean_env(work / "cache-compile"),
            capture_output=True,
            check=False,
        )
        tools: dict[str, list[str]] = {
            "photonpack lock": [str(BIN / "photonpack"), "lock", "-m", "svc.py", "-U"],
            "pip-compile --generate-hashes": [
                str(BIN / "pip-compile"),
                "--quiet",
                "--generate-hashes",
                "--no-config",
                "--rebuild",
                "-o",
                "compiled.txt",
                "requirements.in",
            ],
            "pip lock": [
                str(BIN / "pip"),
                "lock",
                "--quiet",
                "-r",
                "requirements.in",
                "-o",
                "pylock.pip.toml",
            ],
        }
        if uv is not None:
            tools["uv pip compile --generate-hashes"] = [
                str(uv),
                "pip",
                "compile",
                "--quiet",
                "--generate-hashes",
                "--no-config",
                "-o",
                "uv.txt",
                "requirements.in",
            ]
        results: dict[str, tuple[float, float]] = {}
        for name, argv in tools.items():
            cache = work / f"cache-{len(results)}"
            cold = timed(argv, work, clean_env(cache))
            warm = statistics.median(
                timed(argv, work, clean_env(cache)) for _ in range(max(1, args.rounds))
            )
            results[name] = (cold, warm)
            print(f"{name:34s} cold {cold:6.2f} s   warm {warm:6.2f} s", flush=True)
        noop = [str(BIN / "photonpack"), "lock", "-m", "svc.py"]
        noop_times = [timed(noop, work, clean_env(work / "cache-0")) for _ in range(7)]
        print(
            f"{'photonpack lock (no-op)':34s} min {min(noop_times):.3f} s   "
            f"median {statistics.median(noop_times):.3f} s"
        )
        ours_cold, ours_warm = results["photonpack lock"]
        print()
        for name, (cold, warm) in results.items():
            if name != "photonpack lock":
                print(
                    f"photonpack / {name:34s} cold {ours_cold / cold:5.2f}x   "
                    f"warm {ours_warm / warm:5.2f}x"
                )
        print()
        targets = {"pip-compile --generate-hashes": 0.15, "pip lock": 1.2}
        for name, limit in targets.items():
            r = ours_cold / results[name][0]
            print(f"cold lock / {name:30s} {r:5.2f}x  (target <= {limit}: {verdict(r <= limit)})")
        noop_median = statistics.median(noop_times)
        print(
            f"no-op re-lock {noop_median:.3f} s  (target <= 0.15 s: {verdict(noop_median <= 0.15)})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
