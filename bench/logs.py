"""Logs: the per-request CPU cost of request ids and access lines, against uvicorn's access log.

Run by hand: ``.venv/bin/python bench/logs.py [--requests 20000] [--rounds 7]``.
No sockets, no wrk: the counter app is driven in process through photonpack's
own protocol (as ``bench/soak.py`` does), and CPU time per request is what a
busy machine barely moves. Variants, each run once per round in a rotated order:

- ``bare``: the app as photonpack served it before the logs (no middleware,
  no access log): the baseline;
- ``ids``: behind :class:`~photonpack.serving.logs.RequestLog` with
  ``--no-access-log`` (an id per request, returned in a header). Target: a
  throughput ratio to ``bare`` of at least 0.97, i.e. no measurable cost;
- ``text`` / ``json``: with the access line, written to ``/dev/null``;
- ``uvicorn``: the peer, the bare app with uvicorn's own access log (its
  ``AccessFormatter``, to ``/dev/null``): what the access line costs there.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO, header, verdict

COUNTER = REPO / "examples" / "counter"
MIN_RATIO = 0.97
REQUEST = (
    b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    b'Content-Length: 8\r\n\r\n{"x": 1}'
)


class _Transport(asyncio.Transport):
    """Enough of a socket transport for uvicorn's protocol: writes are dropped."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8080) if name in ("peername", "sockname") else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def close(self) -> None: ...


async def _drive(app: Any, requests: int, *, access_log: bool) -> float:
    """CPU seconds for ``requests`` keep-alive requests through photonpack's protocol."""
    import uvicorn
    from uvicorn.server import ServerState

    from photonpack.serving.limits import ConnectionLimits, protocol_class

    protocol_cls: Any = protocol_class(ConnectionLimits())
    config = uvicorn.Config(
        app, http=protocol_cls, log_config=None, log_level="info", access_log=access_log
    )
    config.load()
    protocol = protocol_cls(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(_Transport())
    began = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        while not protocol.cycle.response_complete:
            await asyncio.sleep(0)
    elapsed = time.process_time() - began
    protocol.connection_lost(None)
    return elapsed


def _variants(null: Any) -> dict[str, Callable[[], tuple[Any, bool]]]:
    """Each variant: set logging up, return (the ASGI app, uvicorn's access_log)."""
    from uvicorn.logging import AccessFormatter

    from photonpack.serving.app import build_app
    from photonpack.serving.loader import load_photon
    from photonpack.serving.logs import LogSettings, RequestLog, configure

    app = build_app(load_photon(str(COUNTER / "counter.py"))())

    def ours(form: str, access_log: bool) -> Callable[[], tuple[Any, bool]]:
        def setup() -> tuple[Any, bool]:
            configure(LogSettings(format=form, access_log=access_log), stream=null)
            return RequestLog(app, access_log=access_log), False

        return setup

    def bare() -> tuple[Any, bool]:
        configure(LogSettings(), stream=null)
        return app, False

    def uvicorn_access() -> tuple[Any, bool]:
        configure(LogSettings(), stream=null)
        handler = logging.StreamHandler(null)
        handler.setFormatter(
            AccessFormatter('%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s')
        )
        access = logging.getLogger("uvicorn.access")
        access.handlers, access.propagate = [handler], False
        return app, True

    return {
        "bare": bare,
        "ids": ours("text", False),
        "text": ours("text", True),
        "json": ours("json", True),
        "uvicorn": uvicorn_access,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per run")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    header("logs: request ids and access lines, CPU per request (issue 18 item 2)")
    import uvloop

    with Path("/dev/null").open("w") as null:
        variants = _variants(null)
        best = dict.fromkeys(variants, float("inf"))
        names = list(variants)
        for rnd in range(args.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in order:
                app, access_log = variants[name]()
                cpu = uvloop.run(_drive(app, args.requests, access_log=access_log))
                best[name] = min(best[name], cpu)
    per = {name: best[name] / args.requests * 1e6 for name in names}
    for name in names:
        print(
            f"{name:8} {per[name]:6.1f} us/request  "
            f"(+{per[name] - per['bare']:5.1f} us, throughput ratio {per['bare'] / per[name]:.3f})"
        )
    ratio = per["bare"] / per["ids"]
    print(
        f"request ids without access lines: ratio {ratio:.3f} "
        f"(target >= {MIN_RATIO}: {verdict(ratio >= MIN_RATIO)}); access line: text "
        f"{per['text'] - per['ids']:.1f} us, json {per['json'] - per['ids']:.1f} us, "
        f"uvicorn's {per['uvicorn'] - per['bare']:.1f} us"
    )


if __name__ == "__main__":
    main()
