"""Connection limits uvicorn does not have: a request head cap and deadlines.

uvicorn's httptools protocol reads a request head of any size (httptools joins
a long header in memory, piece by piece) and never closes a connection that
sends nothing, or one byte at a time: its keep-alive timer is armed only after
a response and is cancelled by any byte. :func:`protocol_class` gives the same
protocol with three limits:

- a request head (request line and headers) larger than ``max_head_bytes`` is
  answered 431 and the connection closed; no more than that is ever parsed;
- a head must arrive in full within ``head_timeout`` seconds of its first byte;
- a connection with no request under way (just opened, or after a response)
  is closed after ``idle_timeout`` seconds.

A connection that misses a deadline is closed without an answer, as nginx
does. Bodies and handlers are not timed here: the body limit and
``handler_timeout`` bound those.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from photonpack.serving.errors import ServeError

__all__ = ["ENVIRONMENT", "ConnectionLimits", "protocol_class"]

# The variables that set the limits (``photonpack run --env`` passes them on).
ENVIRONMENT = {
    "max_head_bytes": "PHOTONPACK_MAX_HEAD_BYTES",
    "head_timeout": "PHOTONPACK_HEAD_TIMEOUT",
    "idle_timeout": "PHOTONPACK_IDLE_TIMEOUT",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    """How large a request head may be and how long a connection may keep the server waiting."""

    max_head_bytes: int = 64 * 1024
    head_timeout: float = 10.0
    idle_timeout: float = 5.0  # uvicorn's keep-alive default, now from the first byte on too

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ServeError(
                    f"{field.name} must be a positive number, got {value!r}; "
                    f"set it with --{field.name.replace('_', '-')} or ${ENVIRONMENT[field.name]}"
                )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ConnectionLimits:
        """The defaults, overridden by the ``PHOTONPACK_*`` variables that are set."""
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            text = environ.get(variable)
            if text is None or not text.strip():
                continue
            try:
                values[name] = int(text) if name == "max_head_bytes" else float(text)
            except ValueError:
                raise ServeError(
                    f"${variable} must be a positive number, got {text!r}; "
                    "unset it to use the default"
                ) from None
        return cls(**values)


# After a 431, what is still read and dropped before the connection is closed.
_LINGER_S = 2.0
_LINGER_BYTES = 1 << 20


def protocol_class(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol held to ``limits``, for ``uvicorn.Config(http=...)``."""
    return type("LimitedHttpToolsProtocol", (_LimitedProtocol,), {"limits": limits})


class _LimitedProtocol(HttpToolsProtocol):
    limits: ClassVar[ConnectionLimits]

    _in_head = True  # reading a request head (or waiting for one), not a body
    _head_seen = 0  # bytes parsed since the current head began to be awaited
    # One timer per connection, moved lazily: arming and disarming only set
    # _deadline_at, so a request costs no timer of its own.
    _deadline_at: float | None = None
    _timer: asyncio.TimerHandle | None = None
    _draining = -1  # bytes dropped after a 431 (lingering close); -1: not draining

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline_at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._draining >= 0:  # answered 431: read and drop what the client still sends
            self._draining += len(data)
            if self._draining > _LINGER_BYTES:
                self.transport.close()
            return
        if not self._in_head:
            super().data_received(data)
            return
        limit = self.limits.max_head_bytes
        if self._head_seen + len(data) <= limit:
            self._head_seen += len(data)
            super().data_received(data)
            return
        # Parse no more of a head than the limit allows: httptools would
        # otherwise gather a header of any length in memory.
        view = memoryview(data)
        while view and self._in_head:
            room = limit - self._head_seen
            if room <= 0:
                self._refuse_head()
                return
            piece, view = view[:room], view[room:]
            self._head_seen += len(piece)
            super().data_received(piece)  # type: ignore[arg-type]
            if self.transport.is_closing():
                return
        if view:
            super().data_received(view)  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.limits.head_timeout)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._deadline_at = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_seen = True, 0

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and self._deadline_at is None and not self.transport.is_closing():
            self._arm(self.limits.idle_timeout)

    def _arm(self, seconds: float) -> None:
        self._deadline_at = at = self.loop.time() + seconds
        if self._timer is not None and self._timer.when() <= at:
            return  # it fires first and moves itself on to the deadline
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(at, self._check)

    def _check(self) -> None:
        self._timer = None
        at = self._deadline_at
        if at is None:
            return
        if self.loop.time() < at:
            self._timer = self.loop.call_at(at, self._check)
        elif not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        self._deadline_at = None
        if self.cycle is None or self.cycle.response_complete:  # no answer under way
            limit = self.limits.max_head_bytes
            body = json.dumps(
                {
                    "error": f"request head (request line and headers) is larger than the "
                    f"limit of {limit} bytes; send shorter headers"
                }
            ).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            # A lingering close, as nginx makes one: closing with the rest of the head
            # unread would send a reset that can destroy the answer before the client
            # reads it. Half-close, drop what still comes (bounded), then close.
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self._draining = 0
                self._arm(_LINGER_S)
                return
        self.transport.close()
