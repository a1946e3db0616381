"""Benchmark of `photonpack run`'s pieces against their peers, run by hand.

    .venv/bin/python bench/run.py [--wheels DIR] [--uv UV] [--repeat 3] [--starts 7]

Without ``--wheels`` the realistic photon of the lock benchmark is built once
(real PyPI downloads, into a fresh ``$PHOTONPACK_HOME``) and its wheels are
the install set; without ``--uv``, uv is installed into a throwaway venv.

Install section: a cold install of the same wheels into a fresh venv by
photonpack as a first ``photonpack run`` does it (``ensure_environment`` in an
empty store that holds the verified wheels), by ``pip install --no-index
--find-links --require-hashes``, and by ``uv pip install --offline`` (cold and
warm cache, with and without bytecode); plus photonpack building the
environment of a photon whose wheels two other photons brought into the
store (and of one with the same wheels but other runtime files). Each install
lands in a fresh directory under ``--workdir`` and ends with ``sync``; no
tree is removed before the run ends (see ``PROBE_FILES``); the figures are
medians of ``--repeat`` rounds, each round running every variant once in a
rotated order. The install section runs last.

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
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path

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
from photonpack.archive import read_manifest
from photonpack.archive.manifest import FileEntry
from photonpack.buildfiles import runtime_entries as runtime_files
from photonpack.install.environment import ensure_environment
from photonpack.install.installer import create_environment
from photonpack.store import Store

BASE = Path(getattr(sys, "_base_executable", sys.executable))
# No machine pip/uv configuration (its find-links and constraints would change what runs).
QUIET = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))},
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "UV_NO_CONFIG": "1",
}


def sync() -> None:
    subprocess.run(["sync"], check=True)


# CPU seconds (user + system) of each timed action, this process and its children:
# unlike wall time, hardly changed by other work on the machine.
_cpu_spent: list[float] = []


def _cpu() -> float:
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def timed(action: Callable[[], object]) -> float:
    """Seconds for ``action`` and a ``sync`` after it (what it wrote is on disk)."""
    sync()
    start, cpu = time.perf_counter(), _cpu()
    action()
    sync()
    _cpu_spent.append(_cpu() - cpu)
    return time.perf_counter() - start


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


# Creating a file on ext4 without a journal (this VM's disk) scans past the inodes
# of its block group freed in the last 60 s, or 6 min while their table block is
# dirty (fs/ext4/ialloc.c, recently_deleted): removing a 7,000-file tree and then
# installing the next into the same place costs every installer ~1 ms per file,
# 30x the usual. So no tree is removed until the run's end, and the cost of creating
# files where the run works is printed before and after.
PROBE_FILES = 2000

NEW_RUNTIME = "  same, new runtime files"
UV_WARM, UV_WARM_PYC = "uv warm (no bytecode)", "uv warm (bytecode)"


def creation_cost(folder: Path) -> str:
    """How long creating PROBE_FILES empty files in ``folder`` takes (kept until the end)."""
    folder.mkdir()
    start = time.perf_counter()
    for index in range(PROBE_FILES):
        (folder / str(index)).touch()
    per_thousand = (time.perf_counter() - start) * 1000 / PROBE_FILES * 1000
    verdict = "normal" if per_thousand < 100 else "SLOW: figures include the filesystem's cost"
    return f"creating 1,000 files takes {per_thousand:.0f} ms ({verdict})"


# ``--against TREE``: a first run's environment built by another photonpack source tree
# (a checkout of main, say), in a child process that imports photonpack from TREE and
# times what ``photonpack_run`` times; this tree runs the same way (a child's CPU differs
# from the bench process's own), and the two alternate in the same rounds.
AGAINST_CHILD = """
import hashlib, resource, subprocess, sys, time
from pathlib import Path
tree, dest, wheel_dir = sys.argv[1:4]
sys.path.insert(0, tree)
import photonpack
if not photonpack.__file__.startswith(tree):
    sys.exit(f"photonpack was imported from {photonpack.__file__}, not from {tree}")
from photonpack.buildfiles import runtime_entries
from photonpack.install.environment import ensure_environment
from photonpack.store import Store
store = Store(Path(dest) / "store")
pairs = []
for wheel in sorted(Path(wheel_dir).glob("*.whl")):
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    store.add_blob_file(wheel, digest, wheel.stat().st_size)
    pairs.append((digest, wheel.name))
runtime = runtime_entries(store)
def cpu():
    me, kids = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
subprocess.run(["sync"], check=True)
start, used = time.perf_counter(), cpu()
ensure_environment(store, wheels=pairs, runtime=runtime)
subprocess.run(["sync"], check=True)
print(time.perf_counter() - start, cpu() - used)
"""


THIS_CHILD = "photonpack run (this tree)"


def against_name(tree: Path) -> str:
    return f"photonpack run ({tree.name})"


def photonpack_against(tree: Path, wheel_dir: Path) -> Callable[[Path], float]:
    """The ``--against`` variant: ``tree``'s photonpack, timed in a child (see AGAINST_CHILD)."""
    source = str(tree.resolve())

    def run(dest: Path) -> float:
        argv = [sys.executable, "-c", AGAINST_CHILD, source, str(dest), str(wheel_dir)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"--against {tree}: {done.stderr.strip() or done.stdout.strip()}")
        seconds, cpu = (float(field) for field in done.stdout.split())
        _cpu_spent.append(cpu)
        return seconds

    return run


def bench_install(
    wheel_dir: Path,
    uv: Path | None,
    repeat: int,
    workdir: Path | None = None,
    only: Collection[str] | None = None,
    uv_cold_limit: float | None = None,
    against: Path | None = None,
) -> dict[str, float]:
    """Install ``wheel_dir`` by every variant (or those named in ``only``); the medians.

    ``against``: also build a first run's environment with that photonpack tree, and with
    this one, each in a child process.
    """
    wheels = sorted(wheel_dir.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels)
    print(f"install: {len(wheels)} wheels, {size / 1e6:.1f} MB, python {BASE}")
    work = Path(tempfile.mkdtemp(prefix="pp-bench-", dir=workdir or wheel_dir.parent))
    print(f"  in {work}: {creation_cost(work / 'probe-start')}", flush=True)
    req = requirements(wheels, work / "requirements.txt")
    flags = ["--no-index", "--find-links", str(wheel_dir), "-r", str(req)]

    def stocked_store(root: Path) -> tuple[Store, list[tuple[str, str]], list[FileEntry]]:
        """A store holding the wheels and photonpack's runtime, as after verifying an archive."""
        store = Store(root)
        pairs = []
        for wheel in wheels:
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            store.add_blob_file(wheel, digest, wheel.stat().st_size)
            pairs.append((digest, wheel.name))
        return store, pairs, runtime_files(store)

    def photonpack_run(dest: Path) -> float:
        """What a first ``photonpack run`` pays for its environment, in an empty store."""
        store, pairs, runtime = stocked_store(dest / "store")
        return timed(lambda: ensure_environment(store, wheels=pairs, runtime=runtime))

    wanted = set(only or ())

    def needed(name: str) -> bool:
        return not wanted or name in wanted

    if needed(NEW_RUNTIME):
        shared, shared_pairs, shared_runtime = stocked_store(work / "shared-store")
        ensure_environment(shared, wheels=shared_pairs, runtime=shared_runtime)

    def photonpack_shared(dest: Path) -> float:
        """A photon whose wheels two other photons (same photonpack) brought into the store."""
        store, pairs, runtime = stocked_store(dest / "store")
        half = len(pairs) // 2
        ensure_environment(store, wheels=pairs[:half], runtime=runtime)
        ensure_environment(store, wheels=pairs[half:], runtime=runtime)
        return timed(lambda: ensure_environment(store, wheels=pairs, runtime=runtime))

    def photonpack_new_runtime(dest: Path) -> float:
        """The same wheels with other runtime files (another photonpack) in that store."""
        marker = dest.with_suffix(".py")
        marker.write_text(f"MARKER = {dest.name!r}\n")
        digest, size = hashlib.sha256(marker.read_bytes()).hexdigest(), marker.stat().st_size
        shared.add_blob_file(marker, digest, size)
        extra = FileEntry(path="photonpack/_marker.py", sha256=digest, size=size)
        runtime = [*shared_runtime, extra]
        return timed(lambda: ensure_environment(shared, wheels=shared_pairs, runtime=runtime))

    def pip(dest: Path) -> float:
        def install() -> None:
            python = bare_venv(dest)
            subprocess.run(
                [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                 "--require-hashes", "--no-deps", *flags],
                check=True, env=QUIET,
            )  # fmt: skip

        return timed(install)

    def uv_install(cache: Path | None, compile_bytecode: bool) -> Callable[[Path], float]:
        def run(dest: Path) -> float:
            assert uv is not None

            def install() -> None:
                python = bare_venv(dest)
                cache_dir = cache or dest.with_name(dest.name + "-uv-cache")
                args = [str(uv), "pip", "install", "-q", "--offline", "--no-deps", "--python",
                        str(python), "--cache-dir", str(cache_dir), *flags]  # fmt: skip
                if compile_bytecode:
                    args.append("--compile-bytecode")
                subprocess.run(args, check=True, env=QUIET)

            return timed(install)

        return run

    variants: dict[str, Callable[[Path], float]] = {
        "venv --without-pip": lambda dest: timed(lambda: bare_venv(dest)),
        "photonpack run, empty store": photonpack_run,
        "photonpack, no store": lambda dest: timed(lambda: create_environment(dest, wheels=wheels)),
        "photonpack, no bytecode": lambda dest: timed(
            lambda: create_environment(dest, wheels=wheels, compile_bytecode=False)
        ),
        "photonpack, store has wheels": photonpack_shared,
        NEW_RUNTIME: photonpack_new_runtime,
        "pip (bytecode)": pip,
    }
    if against is not None:  # both trees in a child, the same way
        variants[against_name(against)] = photonpack_against(against, wheel_dir)
        variants[THIS_CHILD] = photonpack_against(Path(__file__).resolve().parent.parent, wheel_dir)
    if uv is not None:
        warm = work / "uv-warm-cache"
        variants |= {
            "uv cold (bytecode)": uv_install(None, True),
            "uv cold (no bytecode)": uv_install(None, False),
            UV_WARM: uv_install(warm, False),
            UV_WARM_PYC: uv_install(warm, True),
        }
    variants = {name: run for name, run in variants.items() if needed(name)}
    if any(name.startswith("uv warm") for name in variants):
        uv_install(warm, False)(work / "prime")
    samples: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    _cpu_spent.clear()
    try:
        # Rounds, each running every variant once in a rotated order: drift in the
        # machine's load spreads over all of them. Every tree stays until the end
        # (see PROBE_FILES): about 2 GB of disk per round.
        for round_ in range(repeat):
            names = list(variants)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]
            for index, name in enumerate(names):
                samples[name].append(variants[name](work / f"run-{round_}-{index}"))
                cpu[name].append(_cpu_spent.pop())
                time.sleep(1)
        print(f"  at the end: {creation_cost(work / 'probe-end')}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {name: statistics.median(times) for name, times in samples.items()}
    pip_time = results.get("pip (bytecode)", float("nan"))
    pip_cpu = statistics.median(cpu.get("pip (bytecode)", [float("nan")]))
    print(f"  median of {repeat} rounds             wall             CPU (user + system)")
    for name, seconds in results.items():
        used = statistics.median(cpu[name])
        print(
            f"  {name:32s} {seconds:7.3f} s {seconds / pip_time:5.2f}x pip"
            f"   {used:7.2f} s {used / pip_cpu:5.2f}x pip"
        )
    nan = float("nan")
    ours = results.get("photonpack run, empty store", nan)
    print(target("photonpack run (empty store) / pip", ours / pip_time, 0.35))
    if against is not None:
        mine, theirs = results.get(THIS_CHILD, nan), results.get(against_name(against), nan)
        print(target(f"{THIS_CHILD} / {against_name(against)}", mine / theirs))
    if uv is not None:
        cold_uv = results.get("uv cold (bytecode)", nan)
        print(target("photonpack run / uv cold (bytecode)", ours / cold_uv, uv_cold_limit))
        linked = results.get("photonpack, store has wheels", nan)
        print(target("store has wheels / uv warm", linked / results.get(UV_WARM, nan), 2))
        print(target("photonpack run / uv warm (bytecode)", ours / results.get(UV_WARM_PYC, nan)))
    print(flush=True)
    return results


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


def bench_start(
    archive: Path,
    env: dict[str, str],
    starts: int,
    *,
    app: str = HANDWRITTEN % "",
    python: Path = Path(sys.executable),
    limit: float = 1.3,
) -> dict[str, float]:
    """Command to first 200: ``photonpack run X.photon`` vs uvicorn on a hand-written app.

    The app is ``app`` (bench/serve.py's counter by default), served by ``python``'s uvicorn.
    """
    app_dir = archive.parent / "handwritten"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "handwritten.py").write_text(app)

    def photonpack(port: int) -> list[str]:
        return [str(BIN / "photonpack"), "run", str(archive), "--host", "127.0.0.1",
                "--port", str(port)]  # fmt: skip

    def uvicorn(port: int) -> list[str]:
        return [str(python), "-m", "uvicorn", "handwritten:app", "--host", "127.0.0.1",
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
        target(
            "photonpack / hand-written", medians["photonpack run"] / medians["uvicorn app"], limit
        )
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
        "--workdir", type=Path, help="where installs land [default: beside the wheels]"
    )
    parser.add_argument(
        "--only", choices=["install", "start", "verify"], action="append", help="sections to run"
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another photonpack source tree whose first-run install alternates with this one's",
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
        # Install last: removing its trees (gigabytes) keeps the disk and a CPU busy
        # for a while, which the start-up figures would pay for.
        if "start" in sections:
            assert archive is not None and env is not None
            bench_start(archive, env, args.starts)
        if "verify" in sections:
            assert archive is not None
            bench_verify(archive, args.repeat)
        if "install" in sections:
            uv = args.uv
            if uv is None and (tools := tool_venv(work, "uv")) is not None:
                uv = tools / "uv"
            bench_install(wheels, uv, args.repeat, args.workdir, against=args.against)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
