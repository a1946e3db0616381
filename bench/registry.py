"""Push / pull of a realistic photon through a local registry, against ORAS (oras-py).

Run by hand: ``.venv/bin/python bench/registry.py [--synthetic]``.
Needs Debian's ``docker-registry`` and the ``oras`` dev dependency.

By default the photon is the realistic one of the lock benchmark, built with
real PyPI downloads; its sibling declares one more requirement (``six``), so
it shares every wheel but that one (its source file and lock differ too).
``--synthetic`` uses, offline, a staged photon with the wheel sizes of a
typical serving stack (incompressible payloads) and a sibling with one wheel
changed. Figures: cold push, warm re-push (nothing to upload), the push of the
sibling (bytes uploaded vs total), and pull (download + verify + rebuild of
the byte-identical archive); ORAS pushes and pulls the same blobs as plain
files in the same run.

``--scale N`` (synthetic) or ``--archive X.photon --home DIR`` (a built photon,
e.g. the torch one) runs alternated rounds instead: each row a cold push (of the
.photon; of the blob files, as from the store) or pull (into the store; to a
.photon), by the code of ``--other`` ("main") and of this checkout ("new"), each
timed in a child process, and oras-py; with each row's CPU seconds and the
registry's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import oras.client

from bench._common import REQUIREMENTS, header, photon_build
from photonpack.admit import pull_reference, push_archive
from photonpack.archive import read_manifest, write_archive
from photonpack.archive.manifest import Manifest
from photonpack.oci.client import RegistryClient
from photonpack.oci.reference import Reference, parse_reference
from photonpack.registry import PushResult, push_photon
from photonpack.store import Store
from tests.support.registry import Registry, StagedPhoton, stage_photon, start_registry

T = TypeVar("T")

# (project, version, payload KiB): roughly the wheels of fastapi + uvicorn[standard] + numpy.
STACK = [
    ("numpy", "2.1.0", 16_000),
    ("pydantic-core", "2.23.0", 2_000),
    ("uvloop", "0.21.0", 3_900),
    ("httptools", "0.6.1", 340),
    ("watchfiles", "0.24.0", 420),
    ("websockets", "13.0", 160),
    ("pydantic", "2.9.0", 430),
    ("starlette", "0.38.0", 70),
    ("fastapi", "0.115.0", 90),
    ("uvicorn", "0.30.0", 60),
    ("pyyaml", "6.0.2", 750),
    ("anyio", "4.4.0", 90),
]


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One photon to move: its archive, manifest, and where each of its blobs is."""

    archive: Path
    manifest: Manifest
    blob_path: Callable[[str], Path]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", action="store_true", help="staged wheels, no downloads")
    parser.add_argument(
        "--scale",
        type=int,
        default=0,
        help="with --synthetic: payloads times this (40: ~1 GB); alternated cold push and pull "
        "rounds, the code of --other against this code and oras-py",
    )
    parser.add_argument(
        "--archive",
        type=Path,
        help="with --home: alternated rounds (as --scale) on this built .photon (the torch "
        "photon of bench/torch_photon.py --keep), whose blobs are in --home's store",
    )
    parser.add_argument("--home", type=Path, help="the PHOTONPACK_HOME that built --archive")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--other",
        type=Path,
        default=Path("/work/main"),
        help="with --scale: the checkout whose code the 'main' rounds run",
    )
    args = parser.parse_args()
    header("registry: push / pull through a local OCI registry vs oras-py (issue 7)")
    with tempfile.TemporaryDirectory(prefix="pp-bench-registry-", dir="/work") as tmp:
        root = Path(tmp)
        if args.archive:
            manifest = read_manifest(args.archive)
            blob_path = Store(args.home).blob_path
            samples = (Sample(archive=args.archive, manifest=manifest, blob_path=blob_path),) * 2
        elif args.synthetic:
            samples = synthetic(root, args.scale or 1)
        else:
            samples = realistic(root)
        registry = start_registry(root / "registry")
        try:
            if args.scale or args.archive:
                rounds(root, registry, samples[0], args.rounds, args.other)
            else:
                run(root, registry.host, *samples)
        finally:
            registry.stop()


def realistic(root: Path) -> tuple[Sample, Sample]:
    """The realistic photon and its one-wheel-more sibling, built with real downloads."""
    built = []
    for name, extra in (("svc", []), ("svc-b", ["six"])):
        job = photon_build(root, name=name, requirements=[*REQUIREMENTS, *extra])
        seconds = job.run()
        print(f"built {job.archive.name} in {seconds:.1f} s", flush=True)
        manifest = read_manifest(job.archive)
        built.append(
            Sample(archive=job.archive, manifest=manifest, blob_path=Store(job.home).blob_path)
        )
    return built[0], built[1]


def synthetic(root: Path, scale: int = 1) -> tuple[Sample, Sample]:
    samples = []
    for label, changed in (("a", None), ("b", "uvloop")):
        if scale > 1 and changed:
            break  # the scaled rounds move one photon
        staged = _photon(root / label, changed, scale)
        path = root / f"{label}.photon"
        with path.open("wb") as out:
            write_archive(out, staged.manifest, staged.blob_path)
        samples.append(Sample(archive=path, manifest=staged.manifest, blob_path=staged.blob_path))
    return samples[0], samples[-1]


def run(root: Path, host: str, first: Sample, second: Sample) -> None:
    a, b = first.archive, second.archive
    total = first.manifest.total_size
    size = _mib(a.stat().st_size)
    print(f"photon: {len(first.manifest.wheels)} wheels, {_mib(total)} payload, archive {size}")

    def moved(result: PushResult) -> str:
        share = 100 * result.uploaded_bytes / result.total_bytes
        return (
            f"uploaded {len(result.uploaded)}/{result.total_blobs} blobs, "
            f"{_mib(result.uploaded_bytes)} of {_mib(result.total_bytes)} ({share:.1f}%)"
        )

    push_store = Store(root / "push-store")

    def push_file(archive: Path, tag: str) -> PushResult:
        # What `photonpack push X.photon` does: one read of the file, each missing blob
        # uploaded while it is hashed (a file the store knows is pushed from its blobs).
        return push_archive(archive, _ref(host, tag), push_store, client=client).result

    with RegistryClient(host) as client:
        t_cold, cold = _timed(lambda: push_file(a, "counter:a"))
        t_warm, warm = _timed(lambda: push_file(a, "counter:a"))
        t_delta, delta = _timed(lambda: push_file(b, "counter:b"))
        t_blobs, _ = _timed(
            lambda: push_photon(
                first.manifest, first.blob_path, _ref(host, "blobs:a"), client=client
            )
        )
        out = root / "pulled.photon"
        pull_store = Store(root / "pull-store")

        # What `photonpack pull` does, into an empty store: the blobs (what `run REF`
        # needs, and what ORAS writes); with -o, the archive written as they download.
        t_fetch, _ = _timed(
            lambda: pull_reference(_ref(host, "counter:a"), pull_store, client=client)
        )
        t_pull, _ = _timed(
            lambda: pull_reference(
                _ref(host, "counter:a"),
                Store(root / "pull-file-store"),
                client=client,
                output=lambda _m: out,
            )
        )
    same = out.read_bytes() == a.read_bytes()

    files = sorted(str(first.blob_path(hex_)) for hex_ in first.manifest.blobs())
    oras_client = oras.client.OrasClient(hostname=host, insecure=True)
    t_oras_push, _ = _timed(
        lambda: oras_client.push(
            files=files, target=f"{host}/bench/oras:a", disable_path_validation=True
        )
    )
    t_oras_pull, _ = _timed(
        lambda: oras_client.pull(target=f"{host}/bench/oras:a", outdir=str(root / "oras-out"))
    )

    print(f"push .photon cold    {t_cold:6.2f} s  {moved(cold)}  (one read of the file)")
    print(f"push .photon again   {t_warm:6.2f} s  {moved(warm)}")
    print(f"push sibling photon  {t_delta:6.2f} s  {moved(delta)}")
    print(f"push blobs only      {t_blobs:6.2f} s  (push_photon from unpacked blobs, new repo)")
    print(f"pull into the store  {t_fetch:6.2f} s  (every blob verified; what `run REF` does)")
    print(f"pull to .photon      {t_pull:6.2f} s  byte-identical archive: {same}")
    print(f"oras-py push         {t_oras_push:6.2f} s  same blobs as plain files")
    print(f"oras-py pull         {t_oras_pull:6.2f} s")
    print(
        f"ratios photonpack/oras: push blobs {t_blobs / t_oras_push:.2f}x, "
        f"push .photon {t_cold / t_oras_push:.2f}x, pull into the store "
        f"{t_fetch / t_oras_pull:.2f}x, pull to .photon {t_pull / t_oras_pull:.2f}x "
        "(pull to .photon also writes the zstd archive, as the blobs download)"
    )


# One step, timed in a child process whose PYTHONPATH is the checkout under test, so the
# rows of --other ("main") and of this checkout ("new") run the very same calls.
_STEP = """
import sys, time
from pathlib import Path
from photonpack.admit import pull_reference, push_archive
from photonpack.archive import read_manifest
from photonpack.oci.client import RegistryClient
from photonpack.oci.reference import parse_reference
from photonpack.registry import push_photon
from photonpack.store import Store
how, home, host, ref, archive, blobs = sys.argv[1:7]
store, reference = Store(Path(home)), parse_reference(ref)
start, cpu0 = time.perf_counter(), time.process_time()
with RegistryClient(host) as client:
    if how == "push":
        push_archive(Path(archive), reference, store, client=client)
    elif how == "push-store":
        manifest = read_manifest(Path(archive))
        push_photon(manifest, lambda hex_: Path(blobs) / hex_, reference, client=client)
    else:
        output = (lambda _m: Path(archive)) if how == "pull-file" else None
        pull_reference(reference, store, client=client, output=output)
import resource
usage = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - start, usage.ru_utime + usage.ru_stime - cpu0)
"""


def rounds(root: Path, registry: Registry, sample: Sample, count: int, other: Path) -> None:
    """Cold pushes and pulls of one photon, alternated: ``other``'s code, this code, oras-py.

    Each row prints its wall time, the CPU seconds of the process that moved the bytes,
    and the registry's CPU seconds in that time: on a loaded machine the CPU figures
    swing far less than the wall times.
    """
    host = registry.host
    print(f"photon: {_mib(sample.manifest.total_size)} payload, archive "
          f"{_mib(sample.archive.stat().st_size)}; load {os.getloadavg()[0]:.2f}; "
          f"'main' is the code of {other}")  # fmt: skip
    blobs = root / "blob-files"  # what push-store reads: the blobs as plain files, named by hex
    blobs.mkdir()
    for hex_ in sample.manifest.blobs():
        os.link(sample.blob_path(hex_), blobs / hex_)
    steps = ["push", "push-store", "pull-store", "pull-file"]
    peers = {"push": "push oras-py", "push-store": "push oras-py"}
    times: dict[str, list[float]] = {
        f"{step} {who}": [] for step in steps for who in ("main", "new")
    }
    times["push oras-py"], times["pull-file oras-py"] = [], []
    cpus: dict[str, list[tuple[float, float]]] = {label: [] for label in times}
    with RegistryClient(host) as client:
        push_archive(sample.archive, _ref(host, "src:a"), Store(root / "src-store"), client=client)
    for i in range(count):
        # Every other round new goes before main: a row pays for the dirty pages the row
        # before it left (the registry's writes), so neither side always comes second.
        swap = {"main": "new", "new": "main"} if i % 2 else {}
        order = [" ".join((s, swap.get(w, w))) for s, w in (label.split() for label in times)]
        for label in order:
            values = times[label]
            step, who = label.split()
            home = root / f"{label.replace(' ', '-')}-{i}"
            before = _process_cpu(registry.process.pid)
            seconds, cpu = _once(home, host, sample, step, who, other, blobs)
            served = _process_cpu(registry.process.pid) - before
            values.append(seconds)
            cpus[label].append((cpu, served))
            print(f"round {i + 1} {label:20} {seconds:6.2f} s  cpu {cpu:5.2f} s, registry "
                  f"{served:5.2f} s  load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    for label, pairs in cpus.items():
        ours, theirs = (statistics.median(p[k] for p in pairs) for k in (0, 1))
        print(f"median cpu {label:20} {ours:5.2f} s, registry {theirs:5.2f} s")
    best = {label: min(values) for label, values in times.items()}
    for step in steps:
        oras_s = best[peers.get(step, "pull-file oras-py")]
        print(
            f"best of {count}, {step}: main {best[f'{step} main']:.2f} s "
            f"({best[f'{step} main'] / oras_s:.2f}x oras-py), new {best[f'{step} new']:.2f} s "
            f"({best[f'{step} new'] / oras_s:.2f}x), oras-py {oras_s:.2f} s"
        )


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _once(
    home: Path, host: str, sample: Sample, step: str, who: str, other: Path, blobs: Path
) -> tuple[float, float]:
    """One cold ``step`` of ``sample`` by ``who``, from an empty store, into a new repository."""
    out = home.with_suffix(".photon")
    ref = _ref(host, f"{home.name}:a" if step.startswith("push") else "src:a")
    files = sorted(str(blobs / hex_) for hex_ in sample.manifest.blobs())
    oras_client = oras.client.OrasClient(hostname=host, insecure=True)
    start, cpu0 = time.perf_counter(), time.process_time()
    if who in ("main", "new"):
        archive = sample.archive if step.startswith("push") else out
        argv = [sys.executable, "-c", _STEP, step, str(home), host, str(ref), str(archive)]
        checkout = other if who == "main" else Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        argv.append(str(blobs))
        done = subprocess.run(argv, env=env, check=True, capture_output=True).stdout.split()
        seconds, cpu = float(done[0]), float(done[1])
    elif step == "push":
        oras_client.push(
            files=files, target=f"{host}/{ref.repository}:a", disable_path_validation=True
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    else:
        oras_client.pull(target=f"{host}/{ref.repository}:a", outdir=str(home))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    shutil.rmtree(home, ignore_errors=True)
    out.unlink(missing_ok=True)
    return seconds, cpu


def _timed(func: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def _ref(host: str, name: str) -> Reference:
    return parse_reference(f"{host}/bench/{name}")


def _photon(root: Path, changed: str | None, scale: int = 1) -> StagedPhoton:
    """STACK as one photon; ``changed`` gets another version, hence other wheel bytes."""
    wheels = [(p, v + (".post1" if p == changed else "")) for p, v, _ in STACK]
    payloads = {p: kib * 1024 * scale for p, _, kib in STACK}
    return stage_photon(root, "counter", wheels, wheel_payload=payloads)


if __name__ == "__main__":
    main()
