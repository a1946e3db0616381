"""Operator logs: a level, text or JSON lines on stderr, access lines and request ids.

The server owns the process's logging (:func:`configure`): one handler on the
root logger writes every record to stderr, photonpack's, uvicorn's and the
photon's own ``logging`` calls alike, in one of two formats:

- ``text``: ``LEVEL:    logger: message``, the level coloured on a terminal
  unless ``NO_COLOR`` is set (https://no-color.org);
- ``json``: one object a line with ``time`` (RFC 3339, UTC), ``level``,
  ``logger`` and ``message``; ``request_id`` when the record was made while
  serving a request; ``exception`` (the traceback) when it carries one. Access
  lines add ``method``, ``path``, ``status``, ``duration_ms`` and ``client``.

:class:`RequestLog` is a pure ASGI middleware around the whole app: it takes
the request's ``X-Request-ID`` when it is sane, else makes one, returns it in
the response, and writes the access line once the response is sent. What a
photon ``print``\\ s goes to stdout untouched: stderr stays a clean log stream.

Settings come from the serve entry point's options, over ``PHOTONPACK_LOG_*``
variables (so images and deployments set them with ``--env``), over the
defaults. This module imports only the standard library.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from random import getrandbits
from typing import Any, TextIO

from photonpack.serving.errors import ServeError

__all__ = [
    "ACCESS_LOGGER",
    "BATCH_SECONDS",
    "ENVIRONMENT",
    "FORMATS",
    "LEVELS",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "LogSettings",
    "LoopBatchedStream",
    "RequestLog",
    "TextFormatter",
    "colour_wanted",
    "configure",
    "current_request_id",
    "json_line",
    "ready",
    "request_id",
]

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
ENVIRONMENT = {
    "level": "PHOTONPACK_LOG_LEVEL",
    "format": "PHOTONPACK_LOG_FORMAT",
    "access_log": "PHOTONPACK_ACCESS_LOG",
}
ACCESS_LOGGER = "photonpack.access"
REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept when it is 1 to 128 visible ASCII characters (no
# spaces, no control characters: it is written into log lines and headers).
_SANE_ID = re.compile(rb"[\x21-\x7e]{1,128}")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")

_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "photonpack_request_id", default=None
)


def current_request_id() -> str | None:
    """The id of the request being served in this context (a handler's thread too), else None."""
    return _REQUEST_ID.get()


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogSettings:
    """What the server logs and how."""

    level: str = "info"
    format: str = "text"
    access_log: bool = True

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ServeError(
                f"log level must be one of {', '.join(LEVELS)}, got {self.level!r}; "
                f"set it with --log-level or ${ENVIRONMENT['level']}"
            )
        if self.format not in FORMATS:
            raise ServeError(
                f"log format must be one of {', '.join(FORMATS)}, got {self.format!r}; "
                f"set it with --log-format or ${ENVIRONMENT['format']}"
            )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, **given: Any) -> LogSettings:
        """``given`` (the options set; None: not set) over the environment, over the defaults."""
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            text = environ.get(variable, "").strip()
            if not text:
                continue
            if name != "access_log":
                values[name] = text.lower()
            elif text.lower() in _TRUE + _FALSE:
                values[name] = text.lower() in _TRUE
            else:
                raise ServeError(
                    f"${variable} must be 1 or 0 (true/false, on/off), got {text!r}; "
                    "unset it to log every request"
                )
        for name, value in given.items():
            if value is not None:
                values[name] = value.lower() if isinstance(value, str) else value
        return cls(**values)


def colour_wanted(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Colour for a terminal, unless ``NO_COLOR`` is set to anything but the empty string."""
    if environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# -- formats -------------------------------------------------------------------

_COLOURS = {"DEBUG": "36", "INFO": "32", "WARNING": "33", "ERROR": "31", "CRITICAL": "91"}


class TextFormatter(logging.Formatter):
    """``LEVEL:    logger: message`` (uvicorn's level column), then any traceback."""

    def __init__(self, *, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname
        prefix = f"{level}:".ljust(9)
        if self.colour and level in _COLOURS:
            prefix = f"\x1b[{_COLOURS[level]}m{level}\x1b[0m:" + " " * (8 - len(level))
        message = record.getMessage().rstrip("\n")  # uvicorn ends some with one
        text = f"{prefix} {record.name}: {message}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


_second: tuple[int, str] = (-1, "")  # the last second formatted: most lines share one


def _rfc3339(created: float) -> str:
    """``2026-12-02T14:04:43.123Z``: RFC 3339 in UTC, milliseconds."""
    global _second  # noqa: PLW0603 - a one-entry cache; a race only formats a second twice
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


def json_line(level: str, logger: str, message: str, **fields: Any) -> str:
    """One log line in the JSON format, for output made outside ``logging`` (the CLI's)."""
    return json.dumps(
        {
            "time": _rfc3339(time.time()),
            "level": level,
            "logger": logger,
            "message": message,
            **fields,
        },
        ensure_ascii=False,
    )


# What every LogRecord holds; anything else came in ``extra=`` (uvicorn's
# ``color_message`` is its text with colour codes: never a field).
_RECORD_ATTRIBUTES = frozenset(
    [*logging.makeLogRecord({}).__dict__, "message", "asctime", "color_message", "taskName"]
)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and what the record adds."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage().rstrip("\n"),  # uvicorn ends some with one
        }
        access = getattr(record, "photonpack_access", None)
        if access is not None:
            out.update(access)
        else:
            request_id = _REQUEST_ID.get()
            if request_id is not None:
                out["request_id"] = request_id
            # logger.info(..., extra={"user": u}): the photon's own fields, as they are.
            for key, value in record.__dict__.items():
                if key not in _RECORD_ATTRIBUTES and key not in out:
                    out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _encode(out)


# How long a line logged on the event loop may wait to be written with the next ones.
BATCH_SECONDS = 0.02


class LoopBatchedStream(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes the lines logged on the event loop in batches.

    A record logged on a running event loop's thread is buffered, and the
    buffer is written and flushed ``BATCH_SECONDS`` after its first line:
    under load the access lines of those 20 ms cost one write, not one each.
    A record from any other thread, or with no loop running, writes what is
    buffered and then itself, at once; :meth:`flush` (``logging.shutdown()``
    at exit, a drained shutdown too) writes the rest. So lines keep their
    order and none waits more than 20 ms, unless the process is killed.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # called holding self.lock
        try:
            self._lines.append(self.format(record) + self.terminator)
        except Exception:  # noqa: BLE001 - logging's own policy for a record it cannot format
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write()
            return
        if len(self._lines) == 1:  # the first line of a batch: write the batch in 20 ms
            loop.call_later(BATCH_SECONDS, self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr] # an RLock, created by Handler.__init__
            self._write()

    def _write(self) -> None:
        if not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        with contextlib.suppress(OSError, ValueError):  # stderr closed or broken: no one to tell
            self.stream.write(text)
            self.stream.flush()


# One encoder: json.dumps() with options builds a new one for every line.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
_active = LogSettings()


def configure(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Send every log record at ``settings.level`` or above to ``stream`` (stderr) in its format.

    The root logger's handlers are replaced: the server owns the process's
    logging, so a ``logging.basicConfig()`` in the photon's module changes nothing.
    """
    global _active  # noqa: PLW0603 - one process, one logging setup: ready() reads it
    stream = stream or sys.stderr
    handler = LoopBatchedStream(stream)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(colour=colour_wanted(stream)))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    # uvicorn's loggers keep no handlers of their own (the server passes
    # log_config=None); its access log is off: RequestLog writes that line.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    _active = settings


def ready(name: str, url: str) -> None:
    """The line that says the port is open: ``photonpack: serving NAME on URL``, in the format.

    It is written at every log level: whoever started the server waits for it.
    """
    message = f"photonpack: serving {name} on {url}"
    if _active.format == "json":
        logger = logging.getLogger("photonpack")
        # handle(), not info(): past the level check, through the handlers.
        logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, message, (), None))
        return
    sys.stderr.write(message + "\n")  # the contract line, the same in every version
    sys.stderr.flush()


# -- the middleware ------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADER = REQUEST_ID_HEADER.lower().encode()
_access = logging.getLogger(ACCESS_LOGGER)


# A uuid4's version and variant bits, set on 128 random bits (RFC 9562).
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def _new_id() -> str:
    """A uuid4 in hex, from ``random``: an id must be unique, not secret, and
    ``uuid.uuid4().hex`` (``os.urandom``: a system call) costs four times as much."""
    return f"{(getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"


def request_id(headers: list[tuple[bytes, bytes]] | Any) -> str:
    """The request's own ``X-Request-ID`` when it is sane, else a new uuid4 in hex."""
    for name, value in headers:
        if name == _HEADER:
            if _SANE_ID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return _new_id()


class RequestLog:
    """Gives each HTTP request an id (returned as ``X-Request-ID``) and writes its access line.

    Pure ASGI, so it costs a header scan, an id and two clock reads: no task,
    no stream wrapping. It wraps the whole app, so every answer (401, 413,
    422, a 500 from an exception) carries the id and gets an access line.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        rid = request_id(scope["headers"])
        # Each request is its own task (its own copy of the context) in uvicorn:
        # nothing to reset, and uvicorn's own "Exception in ASGI application"
        # record made after this call still carries the id.
        _REQUEST_ID.set(rid)
        header = (_HEADER, rid.encode())
        status = 500  # what uvicorn answers when the app fails before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _HEADER for name, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log and _access.isEnabledFor(logging.INFO):
                self._log(scope, rid, status, (time.perf_counter() - began) * 1000)

    @staticmethod
    def _log(scope: Scope, rid: str, status: int, ms: float) -> None:
        client = scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else "-"
        method, path = scope["method"], scope["path"]
        ms = round(ms, 3)  # one figure for the field and the message, which must agree
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": ms,
            "request_id": rid,
            "client": where if client else None,
        }
        version = scope.get("http_version", "1.1")
        record = logging.LogRecord(
            ACCESS_LOGGER,
            logging.INFO,
            __file__,
            0,
            '%s - "%s %s HTTP/%s" %d %.1f ms %s',
            (where, method, path, version, status, ms, rid),
            None,
        )
        record.photonpack_access = fields
        # handle(), not info(): the level is checked already, and the caller is
        # always this line; logging's search for it is a third of the cost.
        _access.handle(record)
