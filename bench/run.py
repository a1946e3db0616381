"""Benchmark of `photonpack run`'s pieces against their peers, run by hand.

    .venv/bin/python bench/run.py [--wheels DIR] [--uv UV] [--repeat 3] [--starts 7]

Without ``--wheels`` the realistic photon of the lock benchmark is built once
(real PyPI downloads, into a fresh ``$PHOTONPACK_HOME``) and its wheels are
the install set; without ``--uv``, uv is installed into a throwaway venv.

Install section: a cold install of the same wheels into a fresh venv by
photonpack (``create_environment``), by ``pip install --no-index --find-links
--require-hashes``, and by ``uv pip install --offline`` (cold and warm cache,
with and without bytecode). Each install lands in a fresh directory and ends
with ``sync``; the figure is the median of ``--repeat`` runs.

Warm start: ``photonpack run svc.photon`` (verify, reuse the environment,
serve) against the same counter written by hand for FastAPI and started with
``uvicorn`` from an existing venv (this one), both on 127.0.0.1: process
start to the first 200 of ``/healthz``, median of ``--starts``.

Verify: ``verify_archive`` on the realistic archive against ``zstd -dc FILE |
sha256sum``, with bench/verify.py's own measuring code.

Targets (issue 5): cold install with bytecode <= 0.35x pip; a new environment
whose wheels the store holds <= 2x uv's warm-cache time; warm start <= 1.3x
the hand-written app; verify >= 1.5x the pipeline's throughput.

Older form, with wheels of your own:

    pip download --only-binary=:all: -d /tmp/pp-bench/wheels fastapi 'uvicorn[standard]' \\
        pydantic numpy pillow httpx python-multipart pyyaml requests jinja2
    .venv/bin/python bench/run.py --wheels /tmp/pp-bench/wheels
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from packaging.utils import parse_wheel_filename

from bench import verify as verify_bench
from bench._common import (
    BIN,
    free_port,
    header,
    photon_build,
    start_server,
    stop_server,
    target,
    tool_venv,
)
from bench.serve import HANDWRITTEN
from photonpack.bundle import read_manifest
from photonpack.runtime.install import create_environment
from photonpack.store import Store

BASE = Path(getattr(sys, "_base_executable", sys.executable))
# No machine pip/uv configuration (its find-links and constraints would change what runs).
QUIET = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))},
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "UV_NO_CONFIG": "1",
}


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

    cache_type = wheel_cache_type()

    def photonpack_store(store_root: Path | None) -> Callable[[Path], None]:
        """Install through the store's unpacked-wheel cache (``store_root`` None: a new one)."""

        def run(dest: Path) -> None:
            dest.mkdir()
            cache = cache_type(Store(store_root or dest / "store"))
            create_environment(dest / "env", wheels=wheels, **{"cache": cache})

        return run

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
        if cache_type is not None:
            results["photonpack cold store cache"] = timed(photonpack_store(None), work, repeat)
            shared = work / "shared-store"
            photonpack_store(shared)(work / "prime-store")
            results["photonpack warm store cache"] = timed(photonpack_store(shared), work, repeat)
        results["pip (bytecode)"] = timed(pip, work, repeat)
        if uv is not None:
            results["uv cold (bytecode)"] = timed(uv_install(None, True), work, repeat)
            results["uv cold (no bytecode)"] = timed(uv_install(None, False), work, repeat)
            warm = work / "uv-warm-cache"
            uv_install(warm, False)(work / "prime")
            results["uv warm (no bytecode)"] = timed(uv_install(warm, False), work, repeat)
            results["uv warm (bytecode)"] = timed(uv_install(warm, True), work, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pip_time = results["pip (bytecode)"]
    for name, seconds in results.items():
        print(f"  {name:28s} {seconds:7.3f} s   {seconds / pip_time:5.2f}x pip")
    ours = results["photonpack (bytecode)"]
    print(target("photonpack (bytecode) / pip", ours / pip_time, 0.35))
    if "uv warm (no bytecode)" in results:
        print(target("photonpack / uv cold (bytecode)", ours / results["uv cold (bytecode)"]))
        # A new environment from wheels the store already holds: through the store's
        # unpacked-wheel cache when this photonpack has one, else a plain install.
        linked = results.get("photonpack warm store cache", ours)
        print(target("store holds wheels / uv warm", linked / results["uv warm (no bytecode)"], 2))
        print(target("photonpack / uv warm (bytecode)", ours / results["uv warm (bytecode)"]))
    print(flush=True)
    return results


def wheel_cache_type() -> Any:
    """The store's unpacked-wheel cache class, or None in a photonpack without one.

    Looked up by name: the cache is newer than this benchmark's install section,
    which keeps measuring the plain install either way.
    """
    try:
        module = importlib.import_module("photonpack.runtime.cache")
    except ImportError:
        return None
    if "cache" not in inspect.signature(create_environment).parameters:
        return None
    return getattr(module, "WheelCache", None)


def build_realistic(work: Path) -> tuple[Path, Path, dict[str, str]]:
    """Build the realistic photon; return the archive, a directory of its wheels, the env."""
    job = photon_build(work)
    seconds = job.run()
    manifest = read_manifest(job.archive)
    store = Store(job.home)
    wheels = work / "wheels"
    wheels.mkdir()
    for wheel in manifest.wheels:
        (wheels / wheel.filename).hardlink_to(store.blob_path(wheel.sha256))
    size = job.archive.stat().st_size / 1e6
    print(f"built {job.archive.name} ({size:.1f} MB) in {seconds:.1f} s", flush=True)
    return job.archive, wheels, job.env


def bench_start(archive: Path, env: dict[str, str], starts: int) -> dict[str, float]:
    """Command to first 200: ``photonpack run X.photon`` vs uvicorn on a hand-written app."""
    app_dir = archive.parent / "handwritten"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "handwritten.py").write_text(HANDWRITTEN % "")

    def photonpack(port: int) -> list[str]:
        return [str(BIN / "photonpack"), "run", str(archive), "--host", "127.0.0.1",
                "--port", str(port)]  # fmt: skip

    def uvicorn(port: int) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "handwritten:app", "--host", "127.0.0.1",
                "--port", str(port), "--no-access-log"]  # fmt: skip

    kinds = {"photonpack run": (photonpack, archive.parent), "uvicorn app": (uvicorn, app_dir)}
    # One untimed start each: the first photonpack run installs the environment when the
    # build did not, and both compile their bytecode into the fresh PYTHONPYCACHEPREFIX.
    first: dict[str, float] = {}
    for kind, (argv, cwd) in kinds.items():
        port = free_port()
        process, first[kind] = start_server(argv(port), cwd=cwd, port=port, env=env)
        stop_server(process)
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(starts):
        order = list(kinds) if i % 2 == 0 else list(reversed(kinds))
        for kind in order:
            argv, cwd = kinds[kind]
            port = free_port()
            process, seconds = start_server(argv(port), cwd=cwd, port=port, env=env)
            stop_server(process)
            samples[kind].append(seconds)
    medians = {kind: statistics.median(v) for kind, v in samples.items()}
    print(
        f"warm start, process start to first 200, median of {starts} (first runs, not counted: "
        + ", ".join(f"{kind} {seconds:.2f} s" for kind, seconds in first.items())
        + ")"
    )
    for kind, median in medians.items():
        print(f"  {kind:28s} {median * 1000:7.0f} ms   (min {min(samples[kind]) * 1000:.0f} ms)")
    print(
        target("photonpack / hand-written", medians["photonpack run"] / medians["uvicorn app"], 1.3)
    )
    print(flush=True)
    return medians


def bench_verify(archive: Path, repeat: int) -> dict[str, float]:
    """``verify_archive`` vs ``zstd -dc | sha256sum``, measured by bench/verify.py's code."""
    payload = read_manifest(archive).total_size
    peer = verify_bench.timed_shell(f"zstd -dc {archive} | sha256sum", repeat)
    ours, rss = verify_bench.timed_child(verify_bench.VERIFY.format(path=str(archive)), repeat)
    startup, _ = verify_bench.timed_child(verify_bench.STARTUP, repeat)
    print(
        f"verify, {archive.stat().st_size / 1e6:.0f} MB archive, {payload / 1e6:.0f} MB payload, "
        f"best of {repeat}"
    )
    for name, seconds in (("zstd -dc | sha256sum", peer), ("verify_archive (process)", ours)):
        print(f"  {name:28s} {seconds:7.3f} s   {payload / seconds / 1e6:6.0f} MB/s")
    print(f"  (verify includes {startup:.2f} s of interpreter start-up; peak RSS {rss:.0f} MB)")
    print(target("verify / pipeline throughput", peer / ours, 1.5, at_least=True))
    print(flush=True)
    return {"pipeline": peer, "verify": ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, help="directory of .whl files [default: built]")
    parser.add_argument("--uv", type=Path, help="a uv executable [default: pip install uv]")
    parser.add_argument("--repeat", type=int, default=3, help="runs per install/verify figure")
    parser.add_argument("--starts", type=int, default=7, help="start-up samples per server")
    parser.add_argument(
        "--only", choices=["install", "start", "verify"], action="append", help="sections to run"
    )
    args = parser.parse_args()
    sections = set(args.only or ["install", "start", "verify"])
    header("run: install, warm start and verify (issue 5)")
    work = Path(tempfile.mkdtemp(prefix="pp-bench-run-"))
    try:
        archive, wheels, env = None, args.wheels, None
        if wheels is None or sections & {"start", "verify"}:
            archive, built_wheels, env = build_realistic(work)
            wheels = wheels or built_wheels
        if "install" in sections:
            uv = args.uv
            if uv is None and (tools := tool_venv(work, "uv")) is not None:
                uv = tools / "uv"
            bench_install(wheels, uv, args.repeat)
        if "start" in sections:
            assert archive is not None and env is not None
            bench_start(archive, env, args.starts)
        if "verify" in sections:
            assert archive is not None
            bench_verify(archive, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
