"""Benchmark: photonpack lock against pip-compile --generate-hashes, pip lock and uv.

Run by hand (needs the public index): ``.venv/bin/python bench/lock.py [--rounds N]``.
Each tool locks the same realistic requirement set (plus photonpack's serving
stack, so that every tool resolves the same thing) with a cold cache (a fresh
XDG_CACHE_HOME) and then a warm one; machine pip configuration is ignored by
all of them. uv is installed into a throwaway venv for this run only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from photonpack.runtime.requirements import SERVING_REQUIREMENTS  # noqa: E402

REQUIREMENTS = ["fastapi", "uvicorn", "numpy", "pydantic", "requests", "pillow", "scikit-learn"]
BIN = Path(sys.executable).parent


def clean_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["XDG_CACHE_HOME"] = str(cache)
    env["UV_CACHE_DIR"] = str(cache / "uv")
    env["UV_NO_CONFIG"] = "1"
    # Installed packages have compiled bytecode; this checkout does not (and the machine may
    # forbid writing it), so give every tool a bytecode cache outside the tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache.parent / "pycache")
    env["PYTHONWARNINGS"] = "ignore"
    env["PIP_CERT"] = os.environ.get("PIP_CERT", "")
    if not env["PIP_CERT"]:
        del env["PIP_CERT"]
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def ensure_uv(work: Path) -> Path | None:
    venv = work / "uv-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = clean_env(work / "uv-install-cache")
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "uv"],
        env=env,
        capture_output=True,
        check=False,
    )
    return venv / "bin" / "uv" if done.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1, help="warm runs per tool (median)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="photonpack-bench-"))
    try:
        lines = [*REQUIREMENTS, *SERVING_REQUIREMENTS]
        (work / "requirements.in").write_text("\n".join(lines) + "\n")
        (work / "svc.py").write_text(
            textwrap.dedent(
                f"""
                from photonpack import Photon

                class Svc(Photon):
                    requirement_dependency = {REQUIREMENTS!r}
                """
            )
        )
        uv = ensure_uv(work)
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
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
