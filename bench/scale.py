"""Scale benchmark (issue 19): a ~3 GB photon through every stage, time and peak RSS, by hand.

Offline: the public index is not reachable from this VM, so the photon is the
real ``torch`` CPU wheel of ``/opt/wheels`` (183 MB, its pure-Python
dependencies repacked from this venv or stood in), photonpack's real serving
stack repacked from this venv, and synthetic wheels of incompressible data
(``tests/support/wheels.build_big_wheel``) up to ``--gb`` in all. Each stage
runs as a command whose peak RSS is taken from its parent's ``wait``
(``ru_maxrss``: the largest process), with its peer in the same run:

- build, cold (the wheels copied from ``--find-links`` into the store) and warm
  (nothing changed), against ``cp`` of the archive;
- ``verify FILE`` against ``zstd -dc FILE | sha256sum``;
- ``run`` (verify, unpack, install with bytecode, start, first 200 on /healthz)
  against ``pip install --no-index`` of the same wheels (with bytecode);
- ``push`` and ``pull`` through a local ``docker-registry`` (ORAS is left out: it
  is not run here; its figures on the realistic set are in ``bench/registry.py``).
- a sibling photon (the same wheels, one more handler): the bytes its ``push`` uploads
  and its ``pull`` downloads into a store holding the first (target < 0.1 %);
- disk economy: the store after build and run (blobs, unpacked wheels, environment,
  hard links counted once) against ``pip install``'s venv of the same wheels.

    .venv/bin/python bench/scale.py [--gb 3.0] [--workdir DIR] [--no-pip]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from packaging.version import Version

from bench._common import BIN, clean_env, free_port, header, start_server, stop_server, verdict
from photonpack.serving.requirements import SERVING_REQUIREMENTS
from tests.support.registry import start_registry
from tests.support.repack import closure, repack
from tests.support.wheels import build_big_wheel, build_wheel

TORCH = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
# torch's own requirements (name: lowest version): repacked from this venv where the
# installed version is high enough, else a stand-in of that version.
TORCH_DEPS = {
    "filelock": "0",
    "typing-extensions": "4.10.0",
    "setuptools": "77.0.3",
    "sympy": "1.13.3",
    "networkx": "2.5.1",
    "jinja2": "0",
    "fsspec": "0.8.5",
}
BIG = 1 << 30  # bytes per synthetic wheel (the last one takes the rest)
RSS_LIMIT_MB = 200

SOURCE = """
from photonpack import Photon


class Big(Photon):
    requirement_dependency = {requirements!r}

    @Photon.handler
    def ping(self) -> str:
        return "pong"
"""


def wheels(directory: Path, total: int) -> list[str]:
    """Fill ``directory`` with the photon's wheels; return its requirement lines."""
    directory.mkdir(parents=True, exist_ok=True)
    installed = set(closure(SERVING_REQUIREMENTS))
    for name in installed:
        repack(name, directory)
    requirements = []
    if TORCH.exists():
        shutil.copy(TORCH, directory)
        requirements.append("torch")
        for name, lowest in TORCH_DEPS.items():
            if any(directory.glob(f"{name.replace('-', '_')}-*.whl")):
                continue  # the serving stack has it
            try:
                usable = Version(md.version(name)) >= Version(lowest)
            except md.PackageNotFoundError:
                usable = False
            if usable:
                for needed in closure([name]):
                    if not any(directory.glob(f"{needed.replace('-', '_')}-*.whl")):
                        repack(needed, directory)
            else:
                build_wheel(directory, name, lowest if lowest != "0" else "1.0")
    have = sum(p.stat().st_size for p in directory.iterdir())
    index = 0
    while have < total:
        size = min(BIG, total - have)
        build_big_wheel(directory, f"weights-{index}", "1.0", size, seed=index)
        requirements.append(f"weights-{index}")
        have += size
        index += 1
    return requirements


# Runs a command, passes SIGTERM on to it, then writes the peak RSS (kB) of the largest
# process it waited for (ru_maxrss of the children; this small parent is not counted).
PEAK = """
import resource, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
signal.signal(signal.SIGTERM, lambda *_: child.terminate())
code = child.wait()
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def peak(rss_file: Path, argv: list[str]) -> list[str]:
    """``argv`` run so that its peak RSS lands in ``rss_file`` (``read_peak``)."""
    return [sys.executable, "-c", PEAK, str(rss_file), *argv]


def read_peak(rss_file: Path) -> float:
    return int(rss_file.read_text()) / 1024


def measured(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command; a failure stops the benchmark."""
    with tempfile.NamedTemporaryFile() as rss:
        start = time.perf_counter()
        done = subprocess.run(
            peak(Path(rss.name), argv),
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return elapsed, read_peak(Path(rss.name))


SIBLING = """

    @Photon.handler
    def hello(self, name: str = "world") -> str:
        return f"hello {name}"
"""


def json_of(argv: list[str], cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """The JSON a photonpack command printed; a failure stops the benchmark."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def du(*paths: Path) -> int:
    """Bytes on disk under ``paths``, a file hard-linked twice counted once (``du``)."""
    found = [str(p) for p in paths if p.exists()]
    if not found:
        return 0
    out = subprocess.run(["du", "-sbc", *found], capture_output=True, text=True, check=True)
    return int(out.stdout.splitlines()[-1].split()[0])


def disk(work: Path, venv_bytes: int | None) -> None:
    """The run's store (blobs, unpacked wheels, environments) against pip's venv."""
    home = work / "home"
    parts = {area: du(home / area) for area in ("blobs", "installed", "envs", "work")}
    together = du(*(home / area for area in parts))
    shown = ", ".join(f"{area} {size / 1e9:.2f} GB" for area, size in parts.items())
    print(f"store after build + run: {together / 1e9:.2f} GB ({shown}; hard links counted once)")
    if venv_bytes is not None:
        print(
            f"  pip's venv of the same wheels: {venv_bytes / 1e9:.2f} GB "
            f"(store / venv {together / venv_bytes:.2f}x)"
        )


def shell(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=3.0, help="wheel bytes in all (GB)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-pip", action="store_true", help="skip the pip install peer")
    args = parser.parse_args()
    header("scale: a torch-sized photon, every stage, time and peak RSS (issue 19)")
    work = Path(tempfile.mkdtemp(prefix="pp-bench-scale-", dir=args.workdir))
    try:
        run(work, int(args.gb * 1e9), pip=not args.no_pip)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, total: int, *, pip: bool) -> None:
    project = work / "project"
    requirements = wheels(project / "wheels", total)
    (project / "big.py").write_text(textwrap.dedent(SOURCE).format(requirements=requirements))
    (work / "no-index").mkdir()
    wheel_bytes = sum(p.stat().st_size for p in (project / "wheels").iterdir())
    print(f"wheels: {len(list((project / 'wheels').iterdir()))} files, {wheel_bytes / 1e9:.2f} GB")
    env = clean_env(work / "cache")
    env["PHOTONPACK_HOME"] = str(work / "home")
    pp = str(BIN / "photonpack")
    archive = work / "big.photon"
    index = ["--index-url", (work / "no-index").as_uri(), "--find-links", "wheels"]
    build = [pp, "build", "-m", "big.py", *index, "-o", str(archive)]
    rows: list[tuple[str, float, float, str, float]] = []
    print(f"{'stage':28s} {'time (s)':>9s} {'peak RSS':>9s}  {'peer':24s} {'peer (s)':>9s} ratio")

    def row(stage: str, seconds: float, rss: float, name: str, other: float) -> None:
        rows.append((stage, seconds, rss, name, other))
        print(
            f"{stage:28s} {seconds:9.2f} {rss:7.0f} MB  {name:24s} {other:9.2f} "
            f"{seconds / other:5.2f}x  RSS <= {RSS_LIMIT_MB} MB: {verdict(rss <= RSS_LIMIT_MB)}",
            flush=True,
        )

    cold, cold_rss = measured(build, project, env)
    size = archive.stat().st_size
    print(f"archive {size / 1e9:.2f} GB", flush=True)
    cp = shell(f"cp {archive} {work / 'copy.photon'}")
    row("build, cold", cold, cold_rss, "cp of the archive", cp)
    warm, warm_rss = measured(build, project, env)
    row("build, warm", warm, warm_rss, "cp of the archive", cp)
    verify, verify_rss = measured([pp, "verify", str(archive)], project, env)
    zstd = shell(f"zstd -dc {archive} | sha256sum")
    row("verify FILE", verify, verify_rss, "zstd -dc | sha256sum", zstd)

    port = free_port()
    rss_file = work / "run.rss"
    serve = peak(rss_file, [pp, "run", str(archive), "--port", str(port)])
    server, first = start_server(serve, cwd=project, port=port, env=env)
    stop_server(server)
    run_rss = read_peak(rss_file)
    peer = float("nan")
    venv_bytes: int | None = None
    if pip:
        venv = work / "pip-venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip_argv = [str(venv / "bin" / "pip"), "install", "--no-index", "--find-links", "wheels"]
        peer, _ = measured([*pip_argv, *requirements], project, env)
        venv_bytes = du(venv)
    row("run, cold (to first 200)", first, run_rss, "pip install --no-index", peer)

    registry = start_registry(work / "registry")
    try:
        ref = f"{registry.host}/scale/big:v1"
        push, push_rss = measured([pp, "push", str(archive), ref], project, env)
        pull_env = {**env, "PHOTONPACK_HOME": str(work / "home-pull")}
        pulled = work / "pulled.photon"
        pull, pull_rss = measured([pp, "pull", ref, "-o", str(pulled)], project, pull_env)
        # A sibling: the same wheels, a new handler. Only its own blobs should move.
        (project / "big.py").write_text(
            textwrap.dedent(SOURCE).format(requirements=requirements) + SIBLING
        )
        sibling = work / "sibling.photon"
        built = json_of([*build[:-1], str(sibling), "--json"], project, env)
        pushed = json_of([pp, "push", str(sibling), f"{ref[:-3]}:v2", "--json"], project, env)
        moved = json_of(
            [pp, "pull", f"{ref[:-3]}:v2", "-o", str(work / "sibling-pulled.photon"), "--json"],
            project,
            pull_env,
        )
    finally:
        registry.stop()
    row("push, cold", push, push_rss, "cp of the archive", cp)
    row("pull, cold", pull, pull_rss, "cp of the archive", cp)
    print(f"sibling {built['digest']} ({int(built['size']) / 1e9:.2f} GB archive):")
    port = free_port()
    server, sibling_first = start_server(
        [pp, "run", str(sibling), "--port", str(port)], cwd=project, port=port, env=env
    )
    stop_server(server)
    print(f"  first run to the first 200: {sibling_first:.2f} s (its environment is the first's)")
    for verb, sent, of in (
        ("push", pushed["uploaded_bytes"], pushed["total_bytes"]),
        ("pull", moved["downloaded_bytes"], moved["total_bytes"]),
    ):
        share = 100 * sent / of
        print(
            f"  {verb}: {sent:,} of {of:,} bytes ({share:.4f} %; target < 0.1 %: "
            f"{verdict(share < 0.1)})"
        )
    disk(work, venv_bytes)

    worst = max(rss for _, _, rss, _, _ in rows)
    print(f"\narchive {size / 1e9:.2f} GB for {wheel_bytes / 1e9:.2f} GB of wheels")
    met = verdict(worst <= RSS_LIMIT_MB)
    print(f"highest peak RSS {worst:.0f} MB (target <= {RSS_LIMIT_MB} MB: {met})")


if __name__ == "__main__":
    main()
