"""Offline ``/docs`` and ``/redoc``: photonpack vs fastapi-offline's own app, same uvicorn.

Run by hand: ``.venv/bin/python bench/docs.py [--rounds 30] [--renders 5]``.
The peer is a hand-written FastAPI app made with ``fastapi_offline.FastAPIOffline``
(the same bundles, served by the package's own routes) under ``uvicorn``; photonpack
serves ``examples/counter`` with ``run -m``. Both listen on 127.0.0.1 only, both
without a token. For each page it prints:

- a page load over HTTP: the page, every asset it references and ``/openapi.json``,
  fetched one after another on one keep-alive connection (median of ``--rounds``);
- a render: Debian's headless Chromium loading the page until it is idle and dumping
  the DOM (median of ``--renders``; checked to hold the handlers), when installed.

Targets: photonpack / peer <= 1.2 for both. FastAPI's default pages are not a peer:
with no network they never render.
"""

from __future__ import annotations

import argparse
import http.client
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, free_port, header, ratio, start_server, stop_server, verdict

COUNTER = REPO / "examples" / "counter"

PEER = """
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

app = FastAPIOffline(title="counter")
state = {"counter": 0}


class AddIn(BaseModel):
    x: int


@app.post("/add", summary="add")
def add(body: AddIn) -> int:
    state["counter"] += body.x
    return state["counter"]


@app.post("/sub", summary="sub")
def sub(body: AddIn) -> int:
    state["counter"] -= body.x
    return state["counter"]


@app.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}
"""

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=20000",
]  # fmt: skip

TARGET = 1.2


def references(page: str) -> list[str]:
    """The URLs a page loads: ``src``/``href``/``spec-url`` attributes, Swagger's ``url:``."""
    found = re.findall(r'(?:src|href|spec-url)="([^"]+)"', page)
    return [*found, *re.findall(r"url: '([^']*)'", page)]


def page_load(port: int, page: str) -> tuple[float, int]:
    """Seconds and bytes to fetch ``page`` and everything it references, on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = time.perf_counter()
    conn.request("GET", page)
    reply = conn.getresponse()
    html = reply.read()
    assert reply.status == 200, (page, reply.status)
    total = len(html)
    for url in dict.fromkeys(references(html.decode())):
        conn.request("GET", url)
        reply = conn.getresponse()
        body = reply.read()
        assert reply.status == 200, (url, reply.status)
        total += len(body)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, total


def render(chromium: str, port: int, page: str, profile: Path) -> float:
    """Seconds for headless Chromium to load ``page`` until idle and dump its DOM."""
    start = time.perf_counter()
    done = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
         f"http://127.0.0.1:{port}{page}"],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    marker = "opblock-summary-description" if page == "/docs" else "operation-type post"
    assert done.stdout.count(marker) >= 2, f"{page} did not render its handlers"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="page loads per page and server")
    parser.add_argument("--renders", type=int, default=5, help="Chromium renders per page")
    args = parser.parse_args()
    header("offline /docs and /redoc: photonpack run -m vs FastAPIOffline under uvicorn")
    chromium = shutil.which("chromium")
    with tempfile.TemporaryDirectory(prefix="bench-docs-") as tmp:
        work = Path(tmp)
        (work / "peer.py").write_text(PEER)
        servers = {
            "photonpack": (
                [sys.executable, "-m", "photonpack", "run", "-m", str(COUNTER / "counter.py"),
                 "--host", "127.0.0.1"],
                COUNTER,
            ),
            "fastapi-offline": (
                [sys.executable, "-m", "uvicorn", "peer:app", "--host", "127.0.0.1",
                 "--no-access-log"],
                work,
            ),
        }  # fmt: skip
        loads: dict[tuple[str, str], list[float]] = {}
        sizes: dict[tuple[str, str], int] = {}
        renders: dict[tuple[str, str], list[float]] = {}
        started: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        for name, (argv, cwd) in servers.items():
            port = free_port()
            process, _ = start_server([*argv, "--port", str(port)], cwd=cwd, port=port)
            started[name] = (process, port)
        try:
            # Rounds alternate between the servers, so both see the same moments of load.
            for page in ("/docs", "/redoc"):
                for _ in range(args.rounds):
                    for name, (_process, port) in started.items():
                        seconds, size = page_load(port, page)
                        loads.setdefault((name, page), []).append(seconds)
                        sizes[(name, page)] = size
                for i in range(args.renders if chromium else 0):
                    for name, (_process, port) in started.items():
                        assert chromium is not None
                        profile = work / f"profile-{name}-{page.strip('/')}-{i}"
                        renders.setdefault((name, page), []).append(
                            render(chromium, port, page, profile)
                        )
        finally:
            for process, _port in started.values():
                stop_server(process)

    print(f"{'page':8s} {'server':16s} {'load ms (median)':>17s} {'KiB':>7s} {'render s':>9s}")
    for page in ("/docs", "/redoc"):
        for name in servers:
            load = statistics.median(loads[(name, page)]) * 1000
            shown = renders.get((name, page))
            rendered = f"{statistics.median(shown):9.2f}" if shown else "      n/a"
            print(f"{page:8s} {name:16s} {load:17.1f} {sizes[(name, page)] / 1024:7.0f} {rendered}")
    print()
    for page in ("/docs", "/redoc"):
        ours = statistics.median(loads[("photonpack", page)])
        peer = statistics.median(loads[("fastapi-offline", page)])
        line = f"  {page} page load photonpack / peer: {ratio(ours, peer)}"
        print(f"{line}  (target <= {TARGET}: {verdict(ours / peer <= TARGET)})")
        if renders:
            ours = statistics.median(renders[("photonpack", page)])
            peer = statistics.median(renders[("fastapi-offline", page)])
            line = f"  {page} render    photonpack / peer: {ratio(ours, peer)}"
            print(f"{line}  (target <= {TARGET}: {verdict(ours / peer <= TARGET)})")
    if not chromium:
        print("  (no chromium: renders not measured; apt-get install chromium)")


if __name__ == "__main__":
    main()
