"""Benchmark: a photon with a git, a local-project and an archive-URL dependency (issue 15).

Run by hand (needs the public index for the realistic set and hatchling):
``.venv/bin/python bench/vcs_sources.py [--rounds N]``.

The photon declares the realistic requirement set plus three hatchling
projects made here: ``vcsa @ git+file://…@main``, ``./localb`` beside the
photon, and ``archc @ file://…/archc-1.0.tar.gz``. Measured in the same run,
each in a fresh ``$PHOTONPACK_HOME``/cache:

- cold: ``photonpack build`` of that photon (lock with metadata prepared from
  the three source archives, three hermetic builds) against ``pip wheel
  --no-deps`` of the same three sources plus photonpack's regular cold build of
  the photon without them. Target: <= 1.2x.
- warm: the same photon built again (the lock fresh, the trees digested, the
  wheels from the store's build cache) against the warm build of the photon
  without them (median of ``--rounds``). Target: within 10 %.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, REQUIREMENTS, clean_env, header, photon_build, timed, verdict

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.org",
    "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def project(root: Path, name: str) -> Path:
    """A small hatchling project ``name`` at ``root``."""
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        f'[project]\nname = "{name}"\nversion = "1.0"\n'
    )
    (root / name / "__init__.py").write_text("VALUE = 1\n")
    return root


def git_repository(root: Path) -> str:
    project(root, "vcsa")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=root, env=GIT_ENV, check=True, capture_output=True)
    return f"git+{root.as_uri()}@main"


def archive(root: Path, work: Path) -> Path:
    project(root, "archc")
    path = work / "archc-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(root, arcname="archc-1.0")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="warm builds per photon (median)")
    args = parser.parse_args()
    header("vcs_sources: a photon with git, local-project and archive-URL dependencies")
    work = Path(tempfile.mkdtemp(prefix="pp-bench-vcs-"))
    try:
        git_url = git_repository(work / "repo-vcsa")
        tarball = archive(work / "tree-archc", work)
        lines = [f"vcsa @ {git_url}", "./localb", f"archc @ {tarball.as_uri()}"]
        plain = photon_build(work / "plain", name="plain")
        cold_plain = plain.run()
        print(f"   photonpack build, no sources: cold {cold_plain:.1f} s", flush=True)
        sources = photon_build(work / "sources", name="sources", requirements=REQUIREMENTS + lines)
        local = project(sources.cwd / "localb", "localb")
        wheel_dir = work / "pip-wheels"
        pip = [str(BIN / "python"), "-m", "pip", "wheel", "--no-deps", "-w", str(wheel_dir)]
        peers = [git_url, str(local), str(tarball)]
        cold_pip = timed([*pip, *peers], work, clean_env(work / "pip-cache"))
        print(f"   pip wheel --no-deps of the three sources: cold {cold_pip:.1f} s", flush=True)
        cold_sources = sources.run()
        print(f"   photonpack build, with the sources: cold {cold_sources:.1f} s", flush=True)
        first = sources.archive.read_bytes()
        warm_sources = statistics.median(sources.run() for _ in range(max(1, args.rounds)))
        same = sources.archive.read_bytes() == first
        warm_plain = statistics.median(plain.run() for _ in range(max(1, args.rounds)))
        print()
        print(f"{'':44}{'cold s':>9}{'warm s':>9}")
        print(f"{'photonpack build, with 3 sources':44}{cold_sources:9.2f}{warm_sources:9.2f}")
        print(f"{'photonpack build, without them':44}{cold_plain:9.2f}{warm_plain:9.2f}")
        print(f"{'pip wheel --no-deps (3 sources)':44}{cold_pip:9.2f}")
        print()
        cold = cold_sources / (cold_pip + cold_plain)
        warm = warm_sources / warm_plain
        met_cold, met_warm = verdict(cold <= 1.2), verdict(warm <= 1.1)
        print(f"cold / (pip wheel + regular build)  {cold:.3f}x  (target <= 1.20: {met_cold})")
        print(f"warm / warm without sources         {warm:.3f}x  (target <= 1.10: {met_warm})")
        print(f"warm rebuild byte-identical: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
