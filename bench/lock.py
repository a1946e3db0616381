"""Benchmark: photonpack lock against pip-compile --generate-hashes, pip lock and uv.

Run by hand (needs the public index): ``.venv/bin/python bench/lock.py [--rounds N]
[--no-pip-compile] [--base REV]``. With ``--base``, that revision of photonpack (exported
with ``git archive``, compiled, first on ``PYTHONPATH``) is measured in the same run too.
Each tool locks the same realistic requirement set (plus photonpack's serving
stack, so that every tool resolves the same thing) with a cold cache (a fresh
XDG_CACHE_HOME) and then a warm one; machine pip configuration is ignored by
all of them. uv is installed into a throwaway venv for this run only.

Then four targets (cp311/cp312 x x86_64/aarch64), cold, against one target
(cp311 x86_64) cold, interleaved for ``--rounds``: photonpack resolves each
target against shared pages and metadata (target <= 1.5x one target); uv's
universal resolution of the same set is printed beside it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    BIN,
    REPO,
    REQUIREMENTS,
    clean_env,
    compile_bytecode,
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
    parser.add_argument(
        "--no-pip-compile", action="store_true", help="skip pip-compile (its cold run: minutes)"
    )
    parser.add_argument("--base", help="also measure this revision of photonpack (e.g. main)")
    args = parser.parse_args()
    header("lock: photonpack lock vs pip-compile, pip lock, uv (issue 3)")
    work = Path(tempfile.mkdtemp(prefix="photonpack-bench-"))
    try:
        lines = [*REQUIREMENTS, *SERVING_REQUIREMENTS]
        (work / "requirements.in").write_text("\n".join(lines) + "\n")
        write_photon(work)
        uv_bin = tool_venv(work, "uv")
        uv = uv_bin / "uv" if uv_bin else None
        compile_bytecode(work)  # "cold" below: an empty HTTP cache, not compiling pip
        base = _exported(work, args.base) if args.base else None
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
        if args.no_pip_compile:
            del tools["pip-compile --generate-hashes"]
        if base is not None:
            tools[f"photonpack {args.base} lock"] = [*base, "lock", "-m", "svc.py", "-U"]
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
            cold = timed(argv, work, _env(cache, argv))
            warm = statistics.median(
                timed(argv, work, _env(cache, argv)) for _ in range(max(1, args.rounds))
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
        uv_name = "uv pip compile --generate-hashes"
        if uv_name in results:
            targets[uv_name] = 2.0
        for name, limit in targets.items():
            if name not in results:
                continue
            r = ours_cold / results[name][0]
            print(f"cold lock / {name:30s} {r:5.2f}x  (target <= {limit}: {verdict(r <= limit)})")
        noop_median = statistics.median(noop_times)
        print(
            f"no-op re-lock {noop_median:.3f} s  (target <= 0.15 s: {verdict(noop_median <= 0.15)})"
        )
        _several_targets(
            work, uv, max(1, args.rounds), (args.base, base) if base is not None else None
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


FOUR = (
    "cp311-manylinux_2_28_x86_64",
    "cp312-manylinux_2_28_x86_64",
    "cp311-manylinux_2_28_aarch64",
    "cp312-manylinux_2_28_aarch64",
)


def _several_targets(
    work: Path, uv: Path | None, rounds: int, base: tuple[str, list[str]] | None
) -> None:
    """Four targets against one, cold each time, interleaved (and the base revision's)."""
    sides = {"photonpack": [str(BIN / "photonpack")]}
    if base is not None:
        sides[f"photonpack {base[0]}"] = base[1]
    runs: dict[str, list[str]] = {}
    for side, command in sides.items():
        lock = [*command, "lock", "-m", "svc.py", "-U"]
        runs[f"{side} lock, 1 target"] = [*lock, "-o", "one.toml", "--target", FOUR[0]]
        runs[f"{side} lock, 4 targets"] = [
            *lock, "-o", "four.toml", *(a for t in FOUR for a in ("--target", t))
        ]  # fmt: skip
    if uv is not None:
        runs["uv pip compile --universal"] = [
            str(uv), "pip", "compile", "--quiet", "--generate-hashes", "--no-config",
            "--universal", "--python-version", "3.11", "-o", "uv-universal.txt", "requirements.in",
        ]  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in runs}
    for n in range(rounds):
        for i, (name, argv) in enumerate(runs.items()):
            times[name].append(timed(argv, work, _env(work / f"cache-targets-{n}-{i}", argv)))
    print()
    for name, values in times.items():
        print(f"{name:34s} cold {statistics.median(values):6.2f} s  ({len(values)} runs)")
    for side in sides:
        one = statistics.median(times[f"{side} lock, 1 target"])
        four = statistics.median(times[f"{side} lock, 4 targets"])
        met = verdict(four / one <= 1.5)
        label = f"{side}: 4 targets / 1 target"
        print(f"{label:34s} {four / one:5.2f}x  (target <= 1.5: {met})")


def _exported(work: Path, revision: str) -> list[str]:
    """``python -m photonpack`` of ``revision``'s photonpack, exported and compiled."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, "photonpack"], capture_output=True, check=True
    ).stdout
    (work / "base").mkdir()
    subprocess.run(["tar", "-x", "-C", str(work / "base")], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(work / "base")], check=True)
    return [sys.executable, "-m", "photonpack"]


def _env(cache: Path, argv: list[str]) -> dict[str, str]:
    """``clean_env``, with the exported base revision first on the path for its commands."""
    env = clean_env(cache)
    if argv[1:3] == ["-m", "photonpack"]:
        env["PYTHONPATH"] = str(cache.parent / "base")
    return env


if __name__ == "__main__":
    main()
