"""Benchmark of ``photonpack verify`` and ``inspect`` against ``zstd -dc | sha256sum``, by hand.

Builds (once, cached in --dir) an archive of incompressible and compressible
blobs with ``write_archive``, then, in the same run:

- ``zstd -dc FILE | sha256sum``: the peer pipeline (decompress + hash once);
- ``verify_archive`` in a fresh process: wall time and peak RSS (wait4);
- the same with hashing on the reading thread (what the 2-thread pipeline buys);
- ``photonpack inspect`` as a command, and ``read_manifest`` in-process.

Targets (issue 6): verify >= 1.5x the pipeline's throughput, peak RSS <= 100 MB,
inspect <= 0.3 s.

    .venv/bin/python bench/verify.py [--dir /tmp/pp-bench-verify] [--mb 320] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO as ROOT
from bench._common import header, verdict
from photonpack.archive import read_manifest
from tests.support.archives import make_archive

PYTHON = sys.executable
CHUNK = 32 << 20


def build(directory: Path, total_mb: int) -> Path:
    path = directory / "bench.photon"
    if path.exists():
        return path
    rng = random.Random(42)
    random_mb = total_mb * 2 // 3
    extra: dict[str, bytes] = {}
    for i in range(random_mb * (1 << 20) // CHUNK):
        extra[f"weights/random-{i}.bin"] = rng.randbytes(CHUNK)
    words = [rng.randbytes(6).hex() for _ in range(5000)]
    text_parts = []
    size = 0
    while size < (total_mb - random_mb) << 20:
        line = " ".join(rng.choice(words) for _ in range(12)) + "\n"
        text_parts.append(line)
        size += len(line)
    text = "".join(text_parts).encode()
    for i in range(0, len(text), CHUNK):
        extra[f"data/corpus-{i // CHUNK}.txt"] = text[i : i + CHUNK]
    archive = make_archive(directory, name="bench", extra_files=extra)
    return archive.path


def timed_shell(command: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


# The child's own high-water mark: ru_maxrss from wait4 also counts the memory of
# the (forked) parent before exec, so a big parent would inflate it.
PEAK = """
import pathlib as _p, sys as _s
_hwm = [l for l in _p.Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")]
_s.stderr.write(f"\\npeak-rss-kb {_hwm[0].split()[1]}\\n" if _hwm else "")
"""


def timed_child(code: str, repeat: int) -> tuple[float, float]:
    """Best wall time (s) and the peak RSS (MB) of a fresh Python running ``code``."""
    best, peak = float("inf"), 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        child = subprocess.Popen([PYTHON, "-c", code + PEAK], cwd=ROOT, stderr=subprocess.PIPE)
        _, err = child.communicate()
        elapsed = time.perf_counter() - start
        if child.returncode != 0:
            raise SystemExit(f"child failed: {code}\n{err.decode(errors='replace')}")
        best = min(best, elapsed)
        kb = [line.split()[1] for line in err.decode().splitlines() if line.startswith("peak-rss")]
        peak = max(peak, int(kb[-1]) / 1024 if kb else float("nan"))
    return best, peak


VERIFY = """
from pathlib import Path
from photonpack.verify import verify_archive
result = verify_archive(Path({path!r}))
assert result.ok, result.problems
"""

SINGLE_THREAD = """
import hashlib
from photonpack.archive import reader as scan

class Inline:
    def __init__(self): self._h = hashlib.sha256()
    def update(self, data): self._h.update(data)
    def hexdigest(self):
        out, self._h = self._h.hexdigest(), hashlib.sha256()
        return out
    def close(self): pass

scan._Hasher = Inline
"""

STARTUP = "import photonpack.verify"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pp-bench-verify"))
    parser.add_argument("--mb", type=int, default=320, help="uncompressed payload size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.build_only:
        build(args.dir, args.mb)
        return
    header("verify / inspect: photonpack verify vs zstd -dc | sha256sum (issue 6)")
    # Built in a child: a parent holding the blobs in memory would inflate the
    # peak RSS that forked children report.
    argv = [PYTHON, __file__, "--build-only", "--dir", str(args.dir), "--mb", str(args.mb)]
    subprocess.run(argv, check=True)
    path = args.dir / "bench.photon"
    manifest = read_manifest(path)
    payload = manifest.total_size
    size = path.stat().st_size
    print(f"archive {path}: {size / 1e6:.0f} MB on disk, {payload / 1e6:.0f} MB payload")

    peer = timed_shell(f"zstd -dc {path} | sha256sum", args.repeat)
    startup, _ = timed_child(STARTUP, args.repeat)
    verify, rss = timed_child(VERIFY.format(path=str(path)), args.repeat)
    single, rss1 = timed_child(SINGLE_THREAD + VERIFY.format(path=str(path)), args.repeat)
    inspect_cmd = timed_shell(f"{Path(PYTHON).parent / 'photonpack'} inspect {path}", args.repeat)
    start = time.perf_counter()
    for _ in range(5):
        read_manifest(path)
    inspect_lib = (time.perf_counter() - start) / 5

    def rate(seconds: float) -> str:
        return f"{payload / seconds / 1e6:7.0f} MB/s"

    print(f"zstd -dc | sha256sum         {peer:6.2f} s  {rate(peer)}  (1.00x)")
    print(
        f"verify (2 threads)           {verify:6.2f} s  {rate(verify)}  ({peer / verify:.2f}x)"
        f"  peak RSS {rss:.0f} MB  (incl. {startup:.2f} s start-up)"
    )
    print(
        f"verify (hash inline)         {single:6.2f} s  {rate(single)}  ({peer / single:.2f}x)"
        f"  peak RSS {rss1:.0f} MB"
    )
    print(f"photonpack inspect (command) {inspect_cmd:6.3f} s")
    print(f"read_manifest (in process)   {inspect_lib:6.4f} s")
    print()
    r = peer / verify
    print(f"verify / pipeline throughput {r:.2f}x  (target >= 1.50: {verdict(r >= 1.5)})")
    print(f"verify peak RSS {rss:.0f} MB  (target <= 100 MB: {verdict(rss <= 100)})")
    print(f"inspect {inspect_cmd:.3f} s  (target <= 0.3 s: {verdict(inspect_cmd <= 0.3)})")


if __name__ == "__main__":
    main()
