"""What the progress line costs ``photonpack verify``, by hand.

The same archive as ``bench/verify.py`` (built once, cached in --dir), in the
same run, interleaved, medians of --repeat rounds:

- ``zstd -dc FILE | sha256sum``: the peer pipeline;
- ``photonpack verify FILE`` on a pty: the progress line drawn (<= 10 redraws/s);
- ``photonpack -q verify FILE`` on a pty: the same terminal, nothing drawn;
- ``photonpack verify FILE`` into a pipe: no terminal, nothing drawn.

Target: the drawn line costs under 2 % against the undrawn one.

    .venv/bin/python bench/progress.py [--dir /tmp/pp-bench-verify] [--mb 320] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import header, verdict
from bench.verify import build

PYTHON = sys.executable


def on_pty(argv: list[str]) -> tuple[float, int]:
    """Wall time of ``argv`` with stdout and stderr on a pty, and the redraws it wrote."""
    leader, follower = pty.openpty()
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    code = child.wait()
    elapsed = time.perf_counter() - start
    os.close(leader)
    if code != 0:
        raise SystemExit(f"{argv} failed: {output.decode(errors='replace')}")
    return elapsed, output.count(b"\rverifying  ")


def piped(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pp-bench-verify"))
    parser.add_argument("--mb", type=int, default=320)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    archive = build(args.dir, args.mb)
    size = archive.stat().st_size
    header(f"progress: verify of a {size / 2**20:.0f} MiB archive, drawn vs not (warm page cache)")
    photonpack = [PYTHON, "-m", "photonpack"]
    times: dict[str, list[float]] = {"peer": [], "drawn": [], "quiet": [], "pipe": []}
    redraws: list[int] = []
    peer = f"zstd -dc {archive} | sha256sum > /dev/null"
    subprocess.run(peer, shell=True, check=True)  # warm the page cache
    for _ in range(args.repeat):
        start = time.perf_counter()
        subprocess.run(peer, shell=True, check=True)
        times["peer"].append(time.perf_counter() - start)
        drawn, count = on_pty([*photonpack, "verify", str(archive)])
        times["drawn"].append(drawn)
        redraws.append(count)
        times["quiet"].append(on_pty([*photonpack, "-q", "verify", str(archive)])[0])
        times["pipe"].append(piped([*photonpack, "verify", str(archive)]))
    median = {key: statistics.median(values) for key, values in times.items()}
    rows = [
        ("zstd -dc | sha256sum (peer)", "peer"),
        ("verify on a pty, line drawn", "drawn"),
        ("-q verify on a pty, nothing drawn", "quiet"),
        ("verify into a pipe, nothing drawn", "pipe"),
    ]
    for label, key in rows:
        rate = size / median[key] / 2**20
        print(f"   {label:<36} {median[key]:7.2f} s  {rate:7.1f} MiB/s")
    cost = median["drawn"] / median["quiet"] - 1
    per_second = statistics.median(redraws) / median["drawn"]
    print(f"\n   redraws: {statistics.median(redraws)} ({per_second:.1f}/s; at most 10/s)")
    print(f"   drawn / undrawn: {median['drawn'] / median['quiet']:.3f}x ({cost:+.1%})")
    print(f"   verify / peer throughput: {median['peer'] / median['drawn']:.2f}x")
    print(f"   target: the line costs < 2 %: {verdict(cost < 0.02)}")


if __name__ == "__main__":
    main()
