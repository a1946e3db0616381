"""Benchmark of `photonpack image` against `podman build` of the equivalent Containerfile.

    .venv/bin/python bench/image.py [--requirements fastapi,numpy,...] [--rounds 3] [--starts 5]

Needs root, podman, runc, skopeo, mmdebstrap, docker-registry and the public
package index. Same photon, same wheels, same base, same run:

- the realistic photon (issue 3's requirement set) and a sibling with the same
  requirements are built; the base is Debian 12 with CPython 3.11 from
  ``mmdebstrap`` (cached under /var/tmp/photonpack-test-base/, as the tests do);
- build time: ``photonpack image --oci-layout`` against ``podman build --no-cache``
  (the store holds the environment ``build`` installed to describe the photon, as
  on the machine that built it; also with a cold store, where every wheel is
  installed and compiled afresh, with gzip and with ``--compression zstd`` layers)
  of a Containerfile that COPYs the same wheels, ``pip install --no-index
  --require-hashes`` into the same venv path, adds a ``lepton`` user and
  ``WORKDIR /home/lepton`` (median of ``--rounds``);
- image size: compressed (the manifest's blobs) and uncompressed (``podman
  image inspect``), each image pushed to a local registry;
- the sibling's pushed bytes after the first photon's image is in the registry;
- start to first 200 of ``/healthz``: ``podman run --network=host`` of the image
  against a warm ``photonpack run`` of the archive (median of ``--starts``).

Targets (issue 16): build <= 0.3x podman build; size <= 1.05x podman's; a
sibling pushes < 5 % of the first image's bytes; start-up <= 1.2x warm run.
Podman uses the overlay driver by default here (``--storage-driver vfs`` is what
the tests use, CONTAINERS.md; it copies every layer for each container and
each build step, so it slows both podman build and podman run several-fold).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    BIN,
    REQUIREMENTS,
    PhotonBuild,
    free_port,
    header,
    photon_build,
    start_server,
    stop_server,
    target,
    verdict,
)
from photonpack.archive import read_manifest
from tests.support.images import MMDEBSTRAP, _rootfs
from tests.support.registry import start_registry

PYBASE = "localhost/photonpack-bench-base:bookworm"


def podman_env(root: Path, driver: str) -> dict[str, str]:
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "{driver}"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    (root / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\nruntime = "runc"\n'
    )
    (root / "auth.json").write_text('{"auths": {}}')
    return {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "REGISTRY_AUTH_FILE": str(root / "auth.json"),
    }


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


CPU: dict[str, list[float]] = {}  # user + system seconds of photonpack's timed commands


def seconds(
    argv: list[str], env: dict[str, str], cwd: Path | None = None, *, cpu: str = ""
) -> float:
    """Wall seconds of the command; with ``cpu``, its CPU seconds go to ``CPU[cpu]`` (under
    load, wall time is mostly waiting for a core: CPU time is the steadier figure)."""
    subprocess.run(["sync"], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    run(argv, env, cwd)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu:
        used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        CPU.setdefault(cpu, []).append(used)
    return wall


def containerfile_context(archive: Path, home: Path, context: Path) -> None:
    """The same wheels, runtime files and photon files as the archive, for podman build."""
    manifest = read_manifest(archive)
    blobs = home / "blobs" / "sha256"
    target = next(t for t in manifest.targets if "x86_64" in t or "aarch64" in t)
    (context / "wheels").mkdir(parents=True)
    lines = []
    for wheel in manifest.wheels:
        if target in wheel.targets:
            shutil.copyfile(blobs / wheel.sha256, context / "wheels" / wheel.filename)
            lines.append(f"{wheel.name}=={wheel.version} --hash=sha256:{wheel.sha256}")
    (context / "requirements.txt").write_text("\n".join(lines) + "\n")
    for folder, entries in (("runtime", manifest.runtime), ("home", manifest.files)):
        for entry in entries:
            path = context / folder / entry.path
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blobs / entry.sha256, path)
    site = "/opt/photon/env/lib/python3.11/site-packages"
    entrypoint = json.dumps(
        ["/opt/photon/env/bin/python", "-I", "-m", "photonpack.serving.serve",
         "--entry", manifest.entry, "--host", "0.0.0.0", "--port", "8080"]
    )  # fmt: skip
    (context / "Containerfile").write_text(
        f"FROM {PYBASE}\n"
        "COPY wheels/ /wheels/\nCOPY requirements.txt /wheels/\n"
        "RUN python3 -m venv /opt/photon/env && /opt/photon/env/bin/pip install --no-index "
        "--require-hashes --no-deps --find-links /wheels -r /wheels/requirements.txt "
        "&& rm -rf /wheels\n"
        f"COPY runtime/ {site}/\n"
        "RUN echo 'lepton:x:1000:1000:lepton:/home/lepton:/bin/sh' >> /etc/passwd "
        "&& echo 'lepton:x:1000:' >> /etc/group && mkdir -p /home/lepton "
        "&& chown 1000:1000 /home/lepton\n"
        "COPY --chown=1000:1000 home/ /home/lepton/\n"
        "USER 1000:1000\nWORKDIR /home/lepton\n"
        f"ENTRYPOINT {entrypoint}\n"
    )


def compressed_size(reference: str, env: dict[str, str]) -> int:
    raw = json.loads(
        run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"], env)
    )
    return int(raw["config"]["size"]) + sum(int(layer["size"]) for layer in raw["layers"])


def start_median(
    argv: list[str], *, port: int, starts: int, cwd: Path, env: dict[str, str]
) -> float:
    times = []
    for _ in range(starts):
        process, elapsed = start_server(argv, cwd=cwd, port=port, env=env)
        stop_server(process)
        times.append(elapsed)
    return statistics.median(times)


def image_cmd(archive: Path, base: Path, *extra: str) -> list[str]:
    return [str(BIN / "photonpack"), "image", str(archive), "--base", f"oci:{base}:b", *extra]


def build_section(
    first: PhotonBuild, base: Path, work: Path, env: dict[str, str], rounds: int
) -> None:
    ours, cold, cold_zstd, theirs = [], [], [], []
    for index in range(rounds):
        layout = work / f"layout-{index}"
        ours.append(
            seconds(image_cmd(first.archive, base, "--oci-layout", str(layout)), env, cpu="warm")
        )
        # A store that never ran the photon: every wheel installed and compiled afresh; with
        # gzip layers (the default) and zstd ones, in turn first (the one after a podman
        # build pays for some of its disk writes).
        cold_env = {**env, "PHOTONPACK_HOME": str(work / f"cold-home-{index}")}
        cold_layout = str(work / f"cold-layout-{index}")
        cold_cmd = image_cmd(first.archive, base, "--oci-layout", cold_layout)
        zstd_env = {**env, "PHOTONPACK_HOME": str(work / f"cold-zstd-home-{index}")}
        zstd_layout = str(work / f"cold-zstd-layout-{index}")
        zstd_cmd = image_cmd(first.archive, base, "--compression", "zstd", "--oci-layout")
        zstd_cmd.append(zstd_layout)
        for which in ("cold", "cold zstd") if index % 2 == 0 else ("cold zstd", "cold"):
            if which == "cold":
                cold.append(seconds(cold_cmd, cold_env, cpu="cold"))
            else:
                cold_zstd.append(seconds(zstd_cmd, zstd_env, cpu="cold zstd"))
        context = work / f"context-{index}"
        containerfile_context(first.archive, first.home, context)
        tag = f"localhost/svc-podman:{index}"
        theirs.append(
            seconds(
                ["podman", "build", "-q", "--no-cache", "--network=none", "-t", tag, str(context)],
                env,
            )
        )
    mine, peer = statistics.median(ours), statistics.median(theirs)
    print(f"build      photonpack image {mine:6.2f} s   podman build {peer:6.2f} s")
    print(target("build time", mine / peer, 0.3))
    chilly = statistics.median(cold)
    print(f"           photonpack image, cold store (nothing installed yet) {chilly:6.2f} s")
    print(target("build time, cold store", chilly / peer, 0.3))
    zstd = statistics.median(cold_zstd)
    print(f"           photonpack image, cold store, --compression zstd {zstd:6.2f} s")
    print(target("build time, cold store, zstd layers", zstd / peer))
    for label, times in (
        ("warm", ours),
        ("cold", cold),
        ("cold zstd", cold_zstd),
        ("podman", theirs),
    ):
        cpu = CPU.get(label, [])
        spent = f" (CPU {', '.join(f'{t:.2f}' for t in cpu)} s)" if cpu else ""
        print(f"           rounds, {label}: {', '.join(f'{t:.2f}' for t in times)} s{spent}")


def size_section(
    first: PhotonBuild, sibling: PhotonBuild, base: Path, registry: str, env: dict[str, str]
) -> None:
    ours_ref, podman_ref = f"{registry}/svc/photonpack:1", f"{registry}/svc/podman:1"
    pushed = json.loads(run(image_cmd(first.archive, base, "--push", ours_ref, "--json"), env))
    run(["podman", "push", "-q", "--tls-verify=false", "localhost/svc-podman:0", podman_ref], env)
    run(["podman", "pull", "-q", "--tls-verify=false", ours_ref], env)
    inspect = ["podman", "image", "inspect", "--format", "{{.Size}}"]
    mine, peer = pushed["size"], compressed_size(podman_ref, env)
    raw_mine = int(run([*inspect, ours_ref], env))
    raw_peer = int(run([*inspect, "localhost/svc-podman:0"], env))
    print(f"size       compressed {mine / 1e6:7.1f} MB vs {peer / 1e6:7.1f} MB (podman build)")
    print(f"           uncompressed {raw_mine / 1e6:7.1f} MB vs {raw_peer / 1e6:7.1f} MB")
    print(target("image size (compressed)", mine / peer, 1.05))
    print(target("image size (uncompressed)", raw_mine / raw_peer, 1.05))
    sibling_ref = f"{registry}/svc/photonpack:sibling"
    second = json.loads(run(image_cmd(sibling.archive, base, "--push", sibling_ref, "--json"), env))
    sent, total = second["push"]["uploaded_bytes"], pushed["push"]["uploaded_bytes"]
    share = sent / total
    print(f"sibling    pushed {sent / 1e3:.1f} kB after the first image's {total / 1e6:.1f} MB")
    met = verdict(share < 0.05)
    print(f"  {'sibling pushed bytes':36s} {share * 100:6.2f} %  (target < 5.00 %: {met})")


def start_section(first: PhotonBuild, registry: str, env: dict[str, str], starts: int) -> None:
    port = free_port()
    warm = [str(BIN / "photonpack"), "run", str(first.archive), "--host", "127.0.0.1"]
    warm += ["--port", str(port)]
    start_median(warm, port=port, starts=1, cwd=first.cwd, env=first.env)  # installs: now warm
    run_start = start_median(warm, port=port, starts=starts, cwd=first.cwd, env=first.env)
    podman = ["podman", "run", "--rm", "--network=host", f"{registry}/svc/photonpack:1"]
    podman += ["--host", "127.0.0.1", "--port", str(port)]
    image_start = start_median(podman, port=port, starts=starts, cwd=first.cwd, env=env)
    print(f"start      podman run {image_start:6.2f} s   warm photonpack run {run_start:6.2f} s")
    print(target("start to first 200", image_start / run_start, 1.2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", default=",".join(REQUIREMENTS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--storage-driver",
        default="overlay",
        help="podman's storage driver: overlay (what servers use) or vfs (what the tests use)",
    )
    args = parser.parse_args()
    requirements = [r for r in args.requirements.split(",") if r]
    header(f"photonpack image vs podman build ({', '.join(requirements)})")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pp-bench-image-"))
    work.mkdir(parents=True, exist_ok=True)
    env = podman_env(work, args.storage_driver)
    print(f"   podman storage driver: {args.storage_driver}; base: {' '.join(MMDEBSTRAP)}")
    first = photon_build(work, name="svc", requirements=requirements)
    first.run()
    sibling = photon_build(work, name="sibling", requirements=requirements)
    sibling.run()
    both = {**first.env, **env}
    change = ["--change", "ENV=PATH=/usr/local/bin:/usr/bin:/bin"]
    run(["podman", "import", *change, str(_rootfs()), PYBASE], env)
    run(["podman", "save", "--format", "docker-archive", "-o", str(work / "base.tar"), PYBASE], env)
    run(
        ["skopeo", "copy", "-q", f"docker-archive:{work / 'base.tar'}", f"oci:{work / 'base'}:b"],
        env,
    )
    registry = start_registry(work / "registry")
    try:
        build_section(first, work / "base", work, both, args.rounds)
        size_section(first, sibling, work / "base", registry.host, both)
        start_section(first, registry.host, env, args.starts)
    finally:
        registry.stop()
        print(f"   work directory (remove it when done): {work}")


if __name__ == "__main__":
    main()
