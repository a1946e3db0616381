"""Issue 19's table on the real torch photon: numpy + torch (CUDA build), every stage vs its peer.

A network run, by hand: torch 2.14.1 and most of its nvidia-* wheels come from a
local PEP 503 index (``--torch-index``, ``file:///opt/pypi-more/simple`` here),
everything else from PyPI; about 3 GB of wheels. Each tool gets a fresh cache
and none reads the machine's pip configuration. Stages, each with its peer in
the same run (sections: ``--only``, repeatable):

- ``lock``: cold ``photonpack lock`` against ``uv pip compile --generate-hashes``
  of the same requirements (the photon's and the serving stack) and indexes;
- ``build``: ``pip download --require-hashes`` of the locked wheels, then the
  cold build (downloads included, the lock already written) against it plus
  ``cp`` of the archive, and the warm build (nothing changed) against ``cp``;
- ``verify``: against ``zstd -dc | sha256sum`` (bench/run.py's code), peak RSS;
- ``start``: the first ``run`` (verify, unpack, install what build left out, serve) to the
  first 200 (its peak RSS is the server's, torch imported), then
  warm starts of the photon, whose ``init()`` imports torch, against a FastAPI
  app importing torch under uvicorn from a ready venv (the photon's environment);
- ``disk``: the store after build and the first run (blobs, environments; hard links counted
  once) against a venv that ``pip install --require-hashes`` (bytecode) made of the same wheels;
- ``registry``: push / pull against oras-py moving the same blobs (bench/registry.py's
  code), then a sibling photon (a new handler, the same wheels): the bytes its push
  uploads and its pull downloads into a store holding the first;
- ``install``: bench/run.py's install section on the downloaded wheels (one round):
  photonpack's first run's environment against pip (bytecode) and uv (cold cache,
  bytecode); a new environment from wheels the store holds against uv's warm cache;
- ``soak``: bench/soak.py (the counter, c=100, 60 s, against the hand-written app).

    .venv/bin/python bench/torch_photon.py [--workdir /var/tmp/torchbench] [--only SECTION]

Needs about 45 GB free under ``--workdir`` (kept until the end: see bench/run.py's
PROBE_FILES), ``zstd``, ``sha256sum``, ``docker-registry``, ``wrk`` (soak) and the
``oras`` dev dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import registry as registry_bench
from bench._common import (
    BIN,
    REPO,
    clean_env,
    compile_bytecode,
    free_port,
    header,
    start_server,
    stop_server,
    target,
    timed,
    tool_venv,
    verdict,
)
from bench.run import UV_WARM, bare_venv, bench_install, bench_start, bench_verify
from bench.scale import disk, du, measured, peak, read_peak, shell
from bench.serve import HANDWRITTEN
from photonpack.archive import read_manifest
from photonpack.lock.pylock import load_toml
from photonpack.serving.requirements import SERVING_REQUIREMENTS
from photonpack.store import Store
from tests.support.registry import start_registry

TORCH_INDEX = "file:///opt/pypi-more/simple"
PYPI = "https://pypi.org/simple"
REQUIREMENTS = ["numpy", "torch==2.14.1"]
SECTIONS = ["lock", "build", "verify", "start", "disk", "registry", "install", "soak"]
RSS_LIMIT_MB = 200

SOURCE = """
from photonpack import Photon


class Torchsvc(Photon):
    requirement_dependency = {requirements!r}

    def init(self) -> None:
        import torch

        self.torch = torch
        self.counter = 0

    @Photon.handler
    def add(self, x: int) -> int:
        self.counter += x
        return self.counter
"""

SIBLING = """
    @Photon.handler
    def zeros(self, n: int = 3) -> list[float]:
        return self.torch.zeros(n).tolist()
"""

# The photon's peer: bench/serve.py's counter, importing torch as the photon's init() does.
APP = "import torch\n" + HANDWRITTEN % ""


def rss(mb: float) -> str:
    return (
        f"peak RSS {mb:.0f} MB (<= {RSS_LIMIT_MB} MB: {'met' if mb <= RSS_LIMIT_MB else 'NOT met'})"
    )


class Bench:
    """One run's work directory, photon project, store and tools."""

    def __init__(self, work: Path, index: str) -> None:
        self.work = work
        self.index = index
        self.project = work / "project"
        self.project.mkdir(parents=True, exist_ok=True)
        self.write_source(sibling=False)
        self.home = work / "home"
        self.env = clean_env(work / "cache")
        self.env["PHOTONPACK_HOME"] = str(self.home)
        self.archive = work / "torchsvc.photon"
        self.downloads = work / "downloads"
        self.indexes = ["--index-url", PYPI, "--extra-index-url", index]
        self._uv: Path | None = None
        self.cold_only = False  # the install section's cold variants only (--cold-install-only)

    def write_source(self, *, sibling: bool) -> None:
        source = textwrap.dedent(SOURCE).format(requirements=REQUIREMENTS)
        (self.project / "torchsvc.py").write_text(source + (SIBLING if sibling else ""))

    def photonpack(self, verb: str, *args: str) -> list[str]:
        return [str(BIN / "photonpack"), verb, "-m", "torchsvc.py", *self.indexes, *args]

    @property
    def uv(self) -> Path | None:
        if self._uv is None and (tools := tool_venv(self.work, "uv")) is not None:
            self._uv = tools / "uv"
        return self._uv

    def locked_wheels(self) -> list[str]:
        """``name==version --hash=…`` lines of every wheel of the photon's lock."""
        path = self.project / "pylock.torchsvc.toml"
        lock = load_toml(path.read_text(), path=path)
        lines = []
        for package in lock["packages"]:
            hashes = " ".join(f"--hash=sha256:{w['hashes']['sha256']}" for w in package["wheels"])
            lines.append(f"{package['name']}=={package['version']} {hashes}")
        return lines


def section_lock(b: Bench) -> None:
    requirements = b.work / "requirements.in"
    requirements.write_text("\n".join([*REQUIREMENTS, *SERVING_REQUIREMENTS]) + "\n")
    env = {**b.env, "PHOTONPACK_HOME": str(b.work / "home-lock")}
    env["XDG_CACHE_HOME"] = str(b.work / "cache-lock")
    compile_bytecode(b.work)  # as bench/lock.py: a cold HTTP cache, not compiling pip
    ours = timed(b.photonpack("lock"), b.project, env)
    print(f"cold lock, {len(b.locked_wheels())} packages:", flush=True)
    print(f"  photonpack lock                      {ours:7.2f} s")
    if b.uv is None:
        return
    uv = [str(b.uv), "pip", "compile", "--quiet", "--generate-hashes", "--no-config"]
    uv += [*b.indexes, "--index-strategy", "unsafe-best-match", "--python", sys.executable]
    uv += ["--cache-dir", str(b.work / "cache-uv-lock"), "-o", "uv.txt", str(requirements)]
    peer = timed(uv, b.work, b.env)
    print(f"  uv pip compile (cold cache)          {peer:7.2f} s")
    print(target("photonpack / uv", ours / peer, 2.0), flush=True)


def download(b: Bench) -> float:
    """``pip download --require-hashes`` of the locked wheels (cold cache); its seconds."""
    if not (b.project / "pylock.torchsvc.toml").exists():
        timed(b.photonpack("lock"), b.project, b.env)
    hashed = b.work / "hashed.txt"
    hashed.write_text("\n".join(b.locked_wheels()) + "\n")
    pip = [sys.executable, "-m", "pip", "download", "-q", "--require-hashes", "--no-deps"]
    pip += ["--only-binary", ":all:", *b.indexes, "-d", str(b.downloads), "-r", str(hashed)]
    pip_env = {**b.env, "XDG_CACHE_HOME": str(b.work / "cache-pip-download")}
    seconds = timed(pip, b.work, pip_env)
    wheel_bytes = sum(p.stat().st_size for p in b.downloads.iterdir())
    print(f"pip download --require-hashes: {wheel_bytes / 1e9:.2f} GB in {seconds:.2f} s")
    return seconds


def section_build(b: Bench) -> None:
    pip_download = download(b)
    build = b.photonpack("build", "-o", str(b.archive))
    cold, cold_rss = measured(build, b.project, b.env)
    cp = shell(f"cp {b.archive} {b.work / 'copy.photon'}")
    (b.work / "copy.photon").unlink()
    warm, warm_rss = measured(build, b.project, b.env)
    size = b.archive.stat().st_size
    print(f"build, archive {size / 1e9:.2f} GB; cp of it {cp:.2f} s", flush=True)
    print(f"  cold (downloads, lock written)       {cold:7.2f} s  {rss(cold_rss)}")
    print(f"  warm (nothing changed)               {warm:7.2f} s  {rss(warm_rss)}")
    print(target("cold / (pip download + cp)", cold / (pip_download + cp), 1.1))
    print(target("warm / cp", warm / cp, 1.5), flush=True)


def section_verify(b: Bench) -> None:
    _, verify_rss = measured([str(BIN / "photonpack"), "verify", str(b.archive)], b.work, b.env)
    bench_verify(b.archive, 2)
    print(f"  photonpack verify (CLI): {rss(verify_rss)}", flush=True)


def environment_python(home: Path) -> Path:
    """The Python of the photon's environment, after its first run: the one holding torch.

    (``build`` describes the photon in an environment without torch, also in ``home``.)
    """
    found = sorted(home.glob("envs/*/lib/python*/site-packages/torch"))
    if len(found) != 1:
        raise SystemExit(f"expected one environment with torch under {home}/envs: {found}")
    return found[0].parents[3] / "bin" / "python"


def section_start(b: Bench) -> None:
    port = free_port()
    with tempfile.NamedTemporaryFile() as rss_file:
        argv = peak(Path(rss_file.name), [str(BIN / "photonpack"), "run", str(b.archive)])
        server, first = start_server([*argv, "--port", str(port)], cwd=b.work, port=port, env=b.env)
        stop_server(server)
        run_rss = read_peak(Path(rss_file.name))
    print(f"first run (verify, unpack, install torch, serve; init imports torch) to the "
          f"first 200: {first:.2f} s, {rss(run_rss)}, the server's", flush=True)  # fmt: skip
    bench_start(b.archive, b.env, 5, app=APP, python=environment_python(b.home), limit=1.2)


def section_registry(b: Bench) -> None:
    b.write_source(sibling=True)
    sibling = b.work / "sibling.photon"
    timed(b.photonpack("build", "-o", str(sibling)), b.project, b.env)
    b.write_source(sibling=False)
    blob_path = Store(b.home).blob_path
    samples = [
        registry_bench.Sample(archive=path, manifest=read_manifest(path), blob_path=blob_path)
        for path in (b.archive, sibling)
    ]
    root = b.work / "registry-run"
    root.mkdir()
    registry = start_registry(root / "registry")
    try:
        registry_bench.run(root, registry.host, *samples)
        # The sibling pulled into the store registry.run pulled the first into.
        env = {**b.env, "PHOTONPACK_HOME": str(root / "pull-store")}
        ref = f"{registry.host}/bench/counter:b"
        out = str(root / "sibling-pulled.photon")
        start = time.perf_counter()
        moved = subprocess.run(
            [str(BIN / "photonpack"), "pull", ref, "-o", out, "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
    finally:
        registry.stop()
    pulled = json.loads(moved.stdout)
    share = 100 * pulled["downloaded_bytes"] / pulled["total_bytes"]
    print(
        f"pull sibling         {seconds:6.2f} s  downloaded {pulled['downloaded_bytes']:,} of "
        f"{pulled['total_bytes']:,} bytes ({share:.4f} %; target < 0.1 %: "
        f"{verdict(share < 0.1)})",
        flush=True,
    )
    shutil.rmtree(root)


def section_install(b: Bench) -> None:
    if not b.downloads.is_dir():
        download(b)
    # Tens of GB follow (every tree is kept until the end): what is measured already goes first.
    if b.home.exists():
        disk(b.work, None)
    for done in (b.home, b.archive, b.work / "sibling.photon"):
        if done.is_dir():
            shutil.rmtree(done)
        else:
            done.unlink(missing_ok=True)
    only = ["photonpack run, empty store", "pip (bytecode)", "uv cold (bytecode)"]
    if not b.cold_only:  # the warm variants: 14 GB more disk
        only += ["photonpack, store has wheels", UV_WARM]
    bench_install(b.downloads, b.uv, 1, b.work, only=only, uv_cold_limit=0.8)


def section_disk(b: Bench) -> None:
    """The store after build + first run against a plain ``pip install`` of the same wheels."""
    if not b.downloads.is_dir():
        download(b)
    venv = b.work / "pip-venv"
    shutil.rmtree(venv, ignore_errors=True)
    hashed = b.work / "hashed.txt"
    pip = [sys.executable, "-m", "pip", "--python", str(bare_venv(venv)), "install", "-q"]
    pip += ["--no-index", "--require-hashes", "--no-deps", "--find-links", str(b.downloads)]
    seconds = timed([*pip, "-r", str(hashed)], b.work, b.env)
    print(f"pip install (bytecode) into a venv: {seconds:.2f} s", flush=True)
    disk(b.work, du(venv))
    shutil.rmtree(venv)


def section_soak(_: Bench) -> None:
    soak = [sys.executable, str(REPO / "bench" / "soak.py"), "--rounds", "1"]
    done = subprocess.run(soak, check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:  # it printed why (a target not met is its exit 1 too)
        print(f"bench/soak.py exited {done.returncode}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="[default: system temp]")
    parser.add_argument("--torch-index", default=TORCH_INDEX, help=f"[default: {TORCH_INDEX}]")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="sections to run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--cold-install-only", action="store_true", help="install: skip the warm variants"
    )
    parser.add_argument("--reuse", type=Path, help="a work directory kept by --keep (implies it)")
    args = parser.parse_args()
    header("torch: the numpy + torch photon, issue 19's table (a network run)")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = args.reuse or Path(tempfile.mkdtemp(prefix="pp-bench-torch-", dir=args.workdir))
    print(f"work directory {work}", flush=True)
    wanted = args.only or SECTIONS
    try:
        b = Bench(work, args.torch_index)
        b.cold_only = args.cold_install_only
        for name in SECTIONS:
            if name not in wanted:
                continue
            if name in ("verify", "start", "disk", "registry") and not b.archive.exists():
                print("-- build (the archive the next sections need)", flush=True)
                section_build(b)
            print(f"-- {name}", flush=True)
            SECTION[name](b)
        if b.home.exists() and "disk" not in wanted:
            disk(work, None)  # (the install section prints it earlier, then frees the space)
    finally:
        if not (args.keep or args.reuse):
            shutil.rmtree(work, ignore_errors=True)


SECTION = {
    "lock": section_lock,
    "build": section_build,
    "verify": section_verify,
    "start": section_start,
    "disk": section_disk,
    "registry": section_registry,
    "install": section_install,
    "soak": section_soak,
}

if __name__ == "__main__":
    main()
