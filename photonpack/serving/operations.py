"""What a deployment asks of a photon's server besides its handlers (Lepton's operations).

``/livez`` (alive, even while busy), ``/queue-length`` (calls in flight),
``/metrics`` (Prometheus text: requests by handler, method and status class,
and their latency, under the names of the FastAPI instrumentator Lepton used),
CORS from ``LEPTON_ALLOW_ORIGINS``, and a second port answering liveness only
(``health_check_liveness_tcp_port``).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from photonpack.serving.guard import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ALLOW_ORIGINS_ENV",
    "LATENCY_BUCKETS",
    "Metrics",
    "Queue",
    "allowed_origins",
    "serve_liveness",
]

ALLOW_ORIGINS_ENV = "LEPTON_ALLOW_ORIGINS"  # comma-separated, as Lepton read it
# The instrumentator's default buckets for http_request_duration_seconds.
LATENCY_BUCKETS = (0.1, 0.5, 1.0)
_TEXT = b"text/plain; version=0.0.4; charset=utf-8"


class Queue:
    """The number of handler calls in flight: what ``/queue-length`` answers."""

    def __init__(self) -> None:
        self.length = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        """Count one call for as long as it runs (the event loop's thread only)."""
        self.length += 1
        try:
            yield
        finally:
            self.length -= 1


def allowed_origins() -> list[str] | None:
    """The origins ``LEPTON_ALLOW_ORIGINS`` names, or None when it is unset (no CORS)."""
    raw = os.environ.get(ALLOW_ORIGINS_ENV)
    if raw is None:
        return None
    return [origin.strip() for origin in raw.split(",") if origin.strip()]


class Metrics:
    """ASGI middleware counting every HTTP request; renders them as Prometheus text."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[str], queue: Queue) -> None:
        self.app = app
        self._routes = sorted(routes, key=len, reverse=True)  # the longest prefix wins
        self._queue = queue
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._latency: dict[tuple[str, str], list[float]] = {}  # bucket counts, then sum, count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/metrics":
            await self._answer(send)
            return
        status = 500
        start = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self._record(scope, status, time.perf_counter() - start)

    def _route(self, path: str) -> str:
        for route in self._routes:
            if path == route or (route != "/" and path.startswith(route.rstrip("/") + "/")):
                return route
        return "none"  # the instrumentator's label for paths that are no route

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        handler, method = self._route(scope["path"]), scope["method"]
        with self._lock:
            key = (handler, method, f"{status // 100}xx")
            self._requests[key] = self._requests.get(key, 0) + 1
            counts = self._latency.setdefault((handler, method), [0.0] * (len(LATENCY_BUCKETS) + 3))
            counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            counts[-2] += seconds
            counts[-1] += 1

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format."""
        lines = [
            "# HELP http_requests_total Total number of requests by method, status and handler.",
            "# TYPE http_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self._requests.items())
            latency = sorted((key, list(counts)) for key, counts in self._latency.items())
        for (handler, method, status), count in requests:
            labels = f'handler="{handler}",method="{method}",status="{status}"'
            lines.append(f"http_requests_total{{{labels}}} {count}")
        lines += [
            "# HELP http_request_duration_seconds Latency of requests by method and handler.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        for (handler, method), buckets in latency:
            labels = f'handler="{handler}",method="{method}"'
            running = 0.0
            for bound, seen in zip((*LATENCY_BUCKETS, float("inf")), buckets, strict=False):
                running += seen
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(
                    f'http_request_duration_seconds_bucket{{{labels},le="{le}"}} {running:g}'
                )
            lines.append(f"http_request_duration_seconds_sum{{{labels}}} {buckets[-2]!r}")
            lines.append(f"http_request_duration_seconds_count{{{labels}}} {buckets[-1]:g}")
        lines += [
            "# HELP photon_queue_length Handler calls in flight.",
            "# TYPE photon_queue_length gauge",
            f"photon_queue_length {self._queue.length}",
        ]
        return "\n".join(lines) + "\n"

    async def _answer(self, send: Send) -> None:
        body = self.render().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", _TEXT), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def serve_liveness(host: str, port: int) -> Any:
    """A thread answering ``200 ok`` to any HTTP request on ``port``; ``.shutdown()`` stops it.

    Lepton's ``health_check_liveness_tcp_port``: a probe that reaches the
    process while every handler slot is busy.
    """
    import http.server
    import socketserver

    class Live(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status":"ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would flood the log

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((host, port), Live)
    threading.Thread(target=server.serve_forever, name="photon-liveness", daemon=True).start()
    return server
