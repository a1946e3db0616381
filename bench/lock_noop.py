"""Benchmark: an up-to-date ``photonpack lock`` (plain and ``--from``) against an older photonpack.

Run by hand, offline: ``.venv/bin/python bench/lock_noop.py [--rounds N] [--base REV]``.
A project with a ``--find-links`` directory of stand-in wheels (the serving stack and
one dependency) is locked once by each side; then every round runs each side's no-op
``lock`` once, interleaved, as ``python -m photonpack`` with this venv's Python (the
base revision is exported with ``git archive`` and put first on ``PYTHONPATH``).
Wall time and CPU time (user + system of the child) are reported; on a shared
machine the CPU time is the steadier figure.
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
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.index import PackageIndex, add_serving_stack  # noqa: E402
from tests.support.wheels import build_wheel  # noqa: E402

SOURCE = """
from photonpack import Photon

class Svc(Photon):
    requirement_dependency = ["beta"]
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--base", default="d3396a2", help="the revision to compare with")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="photonpack-bench-noop-"))
    try:
        run(work, args.rounds, args.base)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, rounds: int, base: str) -> None:
    stack = PackageIndex(work / "stack")  # never started: only its files are used
    add_serving_stack(stack)
    build_wheel(stack.files_dir, "beta", "2.0")
    (work / "no-index").mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", base, "photonpack"], capture_output=True, check=True
    ).stdout
    (work / "base").mkdir()
    subprocess.run(["tar", "-x", "-C", str(work / "base")], input=archive, check=True)
    # Bytecode for both sides, as an installed package has it (PYTHONDONTWRITEBYTECODE
    # would otherwise make the exported side compile itself at every run).
    for tree in (work / "base", REPO / "photonpack"):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PHOTONPACK_HOME"] = str(work / "home")
    lock = ["lock", "-m", "svc.py", "--index-url", (work / "no-index").as_uri()]
    lock += ["--find-links", "wheels", "--target", "cp311-manylinux_2_28_x86_64"]
    a, b, c = (
        project(work / "a", stack),
        project(work / "b", stack),
        kept(project(work / "c", stack)),
    )
    sides = {
        f"photonpack {base} lock": (a, lock, {"PYTHONPATH": str(work / "base")}),
        "photonpack lock": (b, lock, {}),
        "photonpack lock --from": (c, [*lock, "--from", "pylock.toml"], {}),
    }
    python = [sys.executable, "-m", "photonpack"]
    for cwd, argv, extra in sides.values():
        subprocess.run(
            [*python, *argv], cwd=cwd, env={**env, **extra}, check=True, capture_output=True
        )
    wall: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, (cwd, argv, extra) in sides.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(
                [*python, *argv],
                cwd=cwd,
                env={**env, **extra},
                capture_output=True,
                text=True,
                check=False,
            )
            wall[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            assert "up to date" in done.stdout, done.stdout + done.stderr
    print(f"load average {os.getloadavg()[0]:.2f}, {rounds} rounds")
    peer = f"photonpack {base} lock"
    for name in sides:
        ratio = statistics.median(cpu[name]) / statistics.median(cpu[peer])
        print(
            f"{name:32s} wall median {statistics.median(wall[name]):.3f} s (min "
            f"{min(wall[name]):.3f})  CPU median {statistics.median(cpu[name]):.3f} s  "
            f"({ratio:.2f}x {base})"
        )


def project(directory: Path, stack: PackageIndex) -> Path:
    directory.mkdir()
    (directory / "svc.py").write_text(textwrap.dedent(SOURCE).lstrip())
    shutil.copytree(stack.files_dir, directory / "wheels")
    return directory


def kept(directory: Path) -> Path:
    """A uv-shaped pylock.toml that pins beta 2.0 by its path."""
    wheel = next((directory / "wheels").glob("beta-2.0-*.whl"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (directory / "pylock.toml").write_text(
        'lock-version = "1.0"\ncreated-by = "uv"\nrequires-python = ">=3.11"\n\n'
        '[[packages]]\nname = "beta"\nversion = "2.0"\n'
        f'wheels = [{{ path = "wheels/{wheel.name}", size = {wheel.stat().st_size}, '
        f'hashes = {{ sha256 = "{digest}" }} }}]\n'
    )
    return directory


if __name__ == "__main__":
    main()
