"""Proxies for tests: an HTTP CONNECT proxy, and a reverse proxy that records each request."""

from __future__ import annotations

import http.client
import http.server
import select
import socket
import threading
from typing import Any

__all__ = ["ConnectProxy", "RecordingProxy"]


class _ConnectServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    tunnels: list[str]


class _ConnectHandler(http.server.BaseHTTPRequestHandler):
    server: _ConnectServer

    def log_message(self, *_args: object) -> None:
        pass

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        self.server.tunnels.append(self.path)
        upstream = socket.create_connection((host, int(port)), timeout=30)
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        try:
            while True:
                ready, _, _ = select.select(sockets, [], [], 30)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()


class ConnectProxy:
    """``HTTPS_PROXY``/``HTTP_PROXY`` for tests: tunnels CONNECTs; ``tunnels`` lists each target."""

    def __init__(self) -> None:
        self.server = _ConnectServer(("127.0.0.1", 0), _ConnectHandler)
        self.server.tunnels = []
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def tunnels(self) -> list[str]:
        return self.server.tunnels

    def __enter__(self) -> ConnectProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _RecordingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    upstream: str
    seen: list[tuple[str, str]]


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: _RecordingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _forward(self) -> None:
        self.server.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(self.server.upstream, timeout=30)
        # The Host header is kept, so the registry's Location headers name this proxy.
        headers: dict[str, Any] = {
            k: v for k, v in self.headers.items() if k.lower() != "connection"
        }
        conn.request(self.command, self.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


class RecordingProxy:
    """A reverse proxy in front of a registry; ``seen`` lists (method, path) of every request."""

    def __init__(self, upstream: str) -> None:
        self.server = _RecordingServer(("127.0.0.1", 0), _RecordingHandler)
        self.server.upstream = upstream
        self.server.seen = []
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def seen(self) -> list[tuple[str, str]]:
        return self.server.seen

    def __enter__(self) -> RecordingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
