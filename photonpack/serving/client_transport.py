"""HTTP for the client: a pool of keep-alive connections, safe to share between threads.

Each request takes an idle connection (or opens one), and gives it back once
the response has been read, so calls made from several threads at once run at
once, each on its own connection. Standard library only.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Callable, Iterator

__all__ = ["Pool", "Stream"]

_CHUNK = 64 * 1024
# Idle connections kept for reuse; more may be open while calls are in flight.
_MAX_IDLE = 16
# The server closed an idle keep-alive connection: a new one is tried, once.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Pool:
    """Keep-alive connections to one photon (``url`` is already checked to be http(s))."""

    def __init__(self, url: str, timeout: float | None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.base_path = parts.path.rstrip("/")
        self.timeout = timeout
        self._scheme = parts.scheme
        self._host = parts.hostname or ""
        self._port = parts.port
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout), False

    def release(self, conn: http.client.HTTPConnection) -> None:
        """Give back a connection whose last response was read to the end."""
        with self._lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], *, stream: bool
    ) -> tuple[http.client.HTTPResponse, bytes | None, http.client.HTTPConnection]:
        """Send one request; its body is read unless ``stream`` (then it is ``None``).

        Without ``stream`` the connection is already back in the pool; with it,
        the caller hands the response to :class:`Stream`, which gives it back.
        """
        target = self.base_path + path
        while True:
            conn, reused = self._take()
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                data = None if stream else response.read()
            except _STALE:
                conn.close()
                if reused:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if not stream:
                self.finish(conn, response)
            return response, data, conn

    def finish(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        """Give back the connection of a response that was read to the end."""
        if response.will_close:
            conn.close()
        else:
            self.release(conn)

    def close(self) -> None:
        """Close the idle connections; those in use close when their response is done."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Stream:
    """The chunks of a streamed response; iterate it, or use it as a context manager."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        conn: http.client.HTTPConnection,
        pool: Pool,
        *,
        chunk_size: int | None,
        fail: Callable[[Exception], Exception],
    ) -> None:
        self._response = response
        self._conn: http.client.HTTPConnection | None = conn
        self._pool = pool
        self._chunk = chunk_size or _CHUNK
        self._fail = fail  # turns a socket error while reading into the client's error

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = self._response.read1(self._chunk)
                except (OSError, http.client.HTTPException) as exc:
                    raise self._fail(exc) from exc
                if not chunk:
                    break
                yield chunk
            self._done(complete=True)
        finally:
            self.close()

    def _done(self, *, complete: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if complete and not self._response.will_close:
            self._pool.release(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Stop reading; a connection left mid-response is closed, not reused."""
        self._done(complete=False)
        self._response.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
