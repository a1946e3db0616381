"""Benchmark of `photonpack run`'s pieces against their peers, run by hand.

Install section: a cold install of the same wheels into a fresh venv by
photonpack (``create_environment``), by ``pip install --no-index --find-links
--require-hashes``, and by ``uv pip install --offline`` (cold and warm cache,
with and without bytecode). Each install lands in a fresh directory and ends
with ``sync``; the figure is the median of ``--repeat`` runs.

    pip download --only-binary=:all: -d /tmp/pp-bench/wheels fastapi 'uvicorn[standard]' \\
        pydantic numpy pillow httpx python-multipart pyyaml requests jinja2
    python -m venv /tmp/pp-bench/uvenv && /tmp/pp-bench/uvenv/bin/pip install uv
    .venv/bin/python bench/run.py --wheels /tmp/pp-bench/wheels --uv /tmp/pp-bench/uvenv/bin/uv
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from packaging.utils import parse_wheel_filename

from photonpack.runtime.install import create_environment

BASE = Path(getattr(sys, "_base_executable", sys.executable))
QUIET = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def timed(action: Callable[[Path], None], work: Path, repeat: int) -> float:
    times = []
    for i in range(repeat):
        dest = work / f"run-{time.monotonic_ns()}-{i}"
        start = time.perf_counter()
        action(dest)
        subprocess.run(["sync"], check=True)
        times.append(time.perf_counter() - start)
        shutil.rmtree(dest)
    return statistics.median(times)


def requirements(wheels: list[Path], out: Path) -> Path:
    lines = []
    for wheel in wheels:
        name, version, _b, _t = parse_wheel_filename(wheel.name)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    out.write_text("\n".join(lines) + "\n")
    return out


def bare_venv(dest: Path) -> Path:
    subprocess.run([str(BASE), "-m", "venv", "--without-pip", str(dest)], check=True)
    return dest / "bin" / "python"


def bench_install(wheel_dir: Path, uv: Path | None, repeat: int) -> dict[str, float]:
    wheels = sorted(wheel_dir.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels)
    print(f"install: {len(wheels)} wheels, {size / 1e6:.1f} MB, python {BASE}")
    work = Path(tempfile.mkdtemp(prefix="pp-bench-", dir=wheel_dir.parent))
    req = requirements(wheels, work / "requirements.txt")
    flags = ["--no-index", "--find-links", str(wheel_dir), "-r", str(req)]
    results: dict[str, float] = {}

    def photonpack(dest: Path) -> None:
        create_environment(dest, wheels=wheels)

    def photonpack_nopyc(dest: Path) -> None:
        create_environment(dest, wheels=wheels, compile_bytecode=False)

    def pip(dest: Path) -> None:
        python = bare_venv(dest)
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
             "--require-hashes", "--no-deps", *flags],
            check=True, env=QUIET,
        )  # fmt: skip

    def uv_install(cache: Path | None, compile_bytecode: bool) -> Callable[[Path], None]:
        def run(dest: Path) -> None:
            assert uv is not None
            python = bare_venv(dest)
            cache_dir = cache or dest / "uv-cache"
            args = [str(uv), "pip", "install", "-q", "--offline", "--no-deps", "--python",
                    str(python), "--cache-dir", str(cache_dir), *flags]  # fmt: skip
            if compile_bytecode:
                args.append("--compile-bytecode")
            subprocess.run(args, check=True, env=QUIET)

        return run

    try:
        results["venv --without-pip"] = timed(lambda d: (bare_venv(d), None)[1], work, repeat)
        results["photonpack (bytecode)"] = timed(photonpack, work, repeat)
        results["photonpack (no bytecode)"] = timed(photonpack_nopyc, work, repeat)
        results["pip (bytecode)"] = timed(pip, work, repeat)
        if uv is not None:
            results["uv cold (bytecode)"] = timed(uv_install(None, True), work, repeat)
            results["uv cold (no bytecode)"] = timed(uv_install(None, False), work, repeat)
            warm = work / "uv-warm-cache"
            uv_install(warm, False)(work / "prime")
            results["uv warm (no bytecode)"] = timed(uv_install(warm, False), work, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pip_time = results["pip (bytecode)"]
    for name, seconds in results.items():
        print(f"  {name:28s} {seconds:7.3f} s   {seconds / pip_time:5.2f}x pip")
    if "uv warm (no bytecode)" in results:
        ratio = results["photonpack (bytecode)"] / results["uv cold (bytecode)"]
        print(f"  photonpack / uv cold (bytecode) = {ratio:.2f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, required=True, help="directory of .whl files")
    parser.add_argument("--uv", type=Path, help="a uv executable (optional peer)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_install(args.wheels, args.uv, args.repeat)


if __name__ == "__main__":
    main()
