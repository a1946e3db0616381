"""Benchmark of `photonpack deploy --engine podman` against `podman kube play` by hand.

    .venv/bin/python bench/deploy.py ARCHIVE --base oci:DIR:TAG [--changed ARCHIVE2]
                                     [--rounds 3] [--status 10]

Needs root, podman, runc, catatonit and skopeo (CONTAINERS.md); the base must
run the archive's Python (the tests' Debian 12 base: tests/support/images.py).
Podman runs with private configuration and storage (overlay by default;
``--storage-driver vfs`` is what the tests use, and copies every layer on
load). Same photon, same base, same run:

- deploy, cold host: ``photonpack deploy ARCHIVE --engine podman`` with
  nothing of the image in podman's storage (it is built, loaded, played) to
  the first 200 of ``/healthz`` on the endpoint (median of ``--rounds``);
- deploy, warm host: the same with the base's layers in podman's storage (as
  after any earlier deploy on that base), the photon's own layers not;
- by hand: the image build alone (``photonpack image --oci-layout``), plus
  ``podman kube play`` of the same manifest (``deploy --dry-run``) with the
  image already loaded, to the first 200 (medians);
- ``deployment status`` latency (median of ``--status`` calls);
- with ``--changed``: a redeploy of the changed photon under the same name
  while ``/healthz`` is asked every 10 ms: the longest time it did not answer
  200, against ``podman kube play --replace`` of the changed manifest by hand
  (the image loaded), which is what the engine did before rollouts.

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
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import header

PHOTONPACK = str(Path(sys.executable).with_name("photonpack"))
PORT, HAND_PORT = 18431, 18432


def _run(*argv: str, env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{done.stderr}")
    return done.stdout


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _first_200(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ok(url):
            return
        time.sleep(0.05)
    raise SystemExit(f"{url} never answered 200")


class Gaps:
    """Ask ``url/healthz`` every 10 ms in a thread; the longest run of answers that were not 200."""

    def __init__(self, url: str) -> None:
        self.url, self.longest, self.failed = url, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        down_since = None
        while not self._stop.is_set():
            now = time.monotonic()
            if _ok(self.url):
                if down_since is not None:
                    self.longest = max(self.longest, now - down_since)
                down_since = None
            else:
                self.failed += 1
                down_since = now if down_since is None else down_since
            time.sleep(0.01)
        if down_since is not None:
            self.longest = float("inf")  # never came back

    def __enter__(self) -> Gaps:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        _first_200(self.url)
        time.sleep(0.1)
        self._stop.set()
        self._thread.join()


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


def _drop_images(env: dict[str, str], keep_base: bool) -> None:
    images = _run("podman", "images", "-q", "--filter", "reference=localhost/counter", env=env)
    if images.split():
        _run("podman", "rmi", "-f", *sorted(set(images.split())), env=env)
    if not keep_base:
        _run("podman", "rmi", "-f", "--ignore", "localhost/bench-base:latest", env=env)


def _deploy_round(
    tmp: Path, env: dict[str, str], deploy: list[str], args: argparse.Namespace
) -> tuple[float, float, float, list[float]]:
    """(deploy, kube play by hand, image build, status latencies) of one round."""
    started = time.monotonic()
    url = _run(*deploy, env=env).strip()
    _first_200(url)
    deployed = time.monotonic() - started
    statuses = []
    for _ in range(args.status):
        begun = time.monotonic()
        _run(PHOTONPACK, "deployment", "status", "-n", "counter", env=env)
        statuses.append(time.monotonic() - begun)
    hand = [*deploy[:-1], str(HAND_PORT), "--dry-run"]
    manifest = tmp / "hand.yaml"
    manifest.write_text(_run(*hand, env=env))
    _run(PHOTONPACK, "deployment", "remove", "-n", "counter", env=env)
    started = time.monotonic()
    _run("podman", "kube", "play", str(manifest), env=env)
    _first_200(f"http://127.0.0.1:{HAND_PORT}")
    played = time.monotonic() - started
    _run("podman", "kube", "down", str(manifest), env=env)
    layout = tmp / "layout"
    started = time.monotonic()
    _run(PHOTONPACK, "image", str(args.archive), "--base", args.base,
         "--oci-layout", str(layout), env=env)  # fmt: skip
    built = time.monotonic() - started
    subprocess.run(["rm", "-rf", str(layout)], check=True)
    return deployed, played, built, statuses


def _redeploy(
    tmp: Path, env: dict[str, str], deploy: list[str], changed: Path
) -> tuple[float, float]:
    """(longest gap of a photonpack redeploy, of kube play --replace by hand), in seconds."""
    url = f"http://127.0.0.1:{PORT}"
    _run(*deploy, env=env)
    second = [deploy[0], deploy[1], str(changed), *deploy[3:]]
    with Gaps(url) as ours:
        _run(*second, env=env)
    first_manifest, changed_manifest = tmp / "first.yaml", tmp / "changed.yaml"
    hand = [*deploy[:-1], str(HAND_PORT)]
    first_manifest.write_text(_run(*hand, "--dry-run", env=env))
    changed_manifest.write_text(_run(*[*second[:-1], str(HAND_PORT)], "--dry-run", env=env))
    _run(PHOTONPACK, "deployment", "remove", "-n", "counter", env=env)
    _run("podman", "kube", "play", str(first_manifest), env=env)
    _first_200(f"http://127.0.0.1:{HAND_PORT}")
    with Gaps(f"http://127.0.0.1:{HAND_PORT}") as theirs:
        _run("podman", "kube", "play", "--replace", str(changed_manifest), env=env)
    _run("podman", "kube", "down", str(changed_manifest), env=env)
    return ours.longest, theirs.longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--base", required=True, help="oci:DIR:TAG of a base that runs it")
    parser.add_argument("--changed", type=Path, help="a changed photon of the same name")
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
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp_name:
        tmp = Path(tmp_name)
        env = _environment(tmp, args.storage_driver)
        deploy = [PHOTONPACK, "deploy", str(args.archive), "--engine", "podman",
                  "--base", args.base, "--host-port", str(PORT)]  # fmt: skip
        figures: dict[str, list[tuple[float, float, float, list[float]]]] = {"cold": [], "warm": []}
        for _ in range(args.rounds):
            for host in ("cold", "warm"):
                if host == "warm":
                    _run("skopeo", "copy", "-q", args.base,
                         "containers-storage:localhost/bench-base:latest", env=env)  # fmt: skip
                figures[host].append(_deploy_round(tmp, env, deploy, args))
                done = figures[host][-1]
                print(f"   {host}: deploy {done[0]:.2f} s, kube play {done[1]:.2f} s, "
                      f"build {done[2]:.2f} s", flush=True)  # fmt: skip
                _drop_images(env, keep_base=False)
        gaps = _redeploy(tmp, env, deploy, args.changed) if args.changed else None
    for host, rounds in figures.items():
        deploy_s = statistics.median(r[0] for r in rounds)
        play_s = statistics.median(r[1] for r in rounds)
        build_s = statistics.median(r[2] for r in rounds)
        ratio = deploy_s / (build_s + play_s)
        print(f"{host} host: deploy to first 200 {deploy_s:6.2f} s "
              f"(rounds {', '.join(f'{r[0]:.2f}' for r in rounds)}); by hand: image build "
              f"{build_s:.2f} s + kube play to first 200 {play_s:.2f} s; ratio {ratio:.2f}x "
              f"(target <= 1.2x): {'met' if ratio <= 1.2 else 'NOT met'}")  # fmt: skip
    status_s = statistics.median(s for rounds in figures.values() for r in rounds for s in r[3])
    print(f"deployment status: median {status_s * 1000:.0f} ms (target < 500 ms): "
          f"{'met' if status_s < 0.5 else 'NOT met'}")  # fmt: skip
    if gaps is not None:
        print(f"redeploy of a changed photon, longest time /healthz did not answer 200: "
              f"photonpack {gaps[0]:.2f} s, "
              f"kube play --replace by hand {gaps[1]:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
