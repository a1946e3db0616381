"""Benchmark of `photonpack deploy --engine podman` against `podman kube play` by hand.

    .venv/bin/python bench/deploy.py ARCHIVE --base oci:DIR:TAG [--rounds 3] [--status 10]

Needs root, podman, runc and catatonit (CONTAINERS.md); the base must run the
archive's Python (the tests' Debian 12 base: tests/support/images.py). Podman
runs with private configuration and storage (overlay by default; ``--storage-driver
vfs`` is what the tests use, and copies every layer on load). Same photon,
same base, same run:

- deploy: ``photonpack deploy ARCHIVE --engine podman`` with the image not yet
  in podman's storage (it is built, loaded, played) to the first 200 of
  ``/healthz`` on the endpoint (median of ``--rounds``);
- by hand: the image build alone (``photonpack image --oci-layout``), plus
  ``podman kube play`` of the same manifest (``deploy --dry-run``) with the
  image already loaded, to the first 200 (medians);
- ``deployment status`` latency (median of ``--status`` calls).

Targets (issue 17): deploy-to-ready <= 1.2x (build + hand-run kube play);
status under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import header

PHOTONPACK = str(Path(sys.executable).with_name("photonpack"))


def _run(*argv: str, env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{done.stderr}")
    return done.stdout


def _first_200(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} never answered 200")


def _environment(root: Path, driver: str) -> dict[str, str]:
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "{driver}"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    (root / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\nruntime = "runc"\n'
    )
    env = dict(os.environ)
    env["CONTAINERS_STORAGE_CONF"] = str(root / "storage.conf")
    env["CONTAINERS_CONF"] = str(root / "containers.conf")
    env["PHOTONPACK_HOME"] = str(root / "home")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--base", required=True, help="oci:DIR:TAG of a base that runs it")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--status", type=int, default=10)
    parser.add_argument(
        "--storage-driver",
        default="overlay",
        help="podman's storage driver: overlay (what servers use) or vfs (what the tests use)",
    )
    args = parser.parse_args()
    header("photonpack deploy --engine podman vs podman kube play by hand")
    print(f"   podman storage driver: {args.storage_driver}")
    deploys, builds, plays, statuses = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        env = _environment(Path(tmp), args.storage_driver)
        deploy = [PHOTONPACK, "deploy", str(args.archive), "--engine", "podman",
                  "--base", args.base, "--host-port", "18431"]  # fmt: skip
        for _ in range(args.rounds):
            started = time.monotonic()
            url = _run(*deploy, env=env).strip()
            _first_200(url)
            deploys.append(time.monotonic() - started)
            for _ in range(args.status):
                begun = time.monotonic()
                _run(PHOTONPACK, "deployment", "status", "-n", "counter", env=env)
                statuses.append(time.monotonic() - begun)
            hand = [*deploy[:-1], "18432", "--dry-run"]
            ref = _run(*hand, env=env)
            _run(PHOTONPACK, "deployment", "remove", "-n", "counter", env=env)
            manifest = Path(tmp) / "hand.yaml"
            manifest.write_text(ref)
            started = time.monotonic()
            _run("podman", "kube", "play", str(manifest), env=env)
            _first_200("http://127.0.0.1:18432")
            plays.append(time.monotonic() - started)
            _run("podman", "kube", "down", str(manifest), env=env)
            layout = Path(tmp) / "layout"
            started = time.monotonic()
            _run(PHOTONPACK, "image", str(args.archive), "--base", args.base,
                 "--oci-layout", str(layout), env=env)  # fmt: skip
            builds.append(time.monotonic() - started)
            subprocess.run(["rm", "-rf", str(layout)], check=True)
            images = _run("podman", "images", "-q", "--filter", "reference=localhost/counter",
                          env=env).split()  # fmt: skip
            if images:
                _run("podman", "rmi", "-f", *sorted(set(images)), env=env)
    deploy_s, build_s, play_s = map(statistics.median, (deploys, builds, plays))
    status_s = statistics.median(statuses)
    print(f"deploy to first 200 (build, load, play): {deploy_s:6.2f} s  (rounds {deploys})")
    print(f"by hand: image build {build_s:6.2f} s + kube play to first 200 {play_s:6.2f} s")
    ratio = deploy_s / (build_s + play_s)
    print(f"ratio {ratio:.2f}x (target <= 1.2x): {'met' if ratio <= 1.2 else 'NOT met'}")
    print(f"deployment status: median {status_s * 1000:.0f} ms (target < 500 ms): "
          f"{'met' if status_s < 0.5 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
