"""Operator logs of real servers: levels, text and JSON lines, access lines, ids, NO_COLOR."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import logging
import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from calendar import timegm
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.errors import ServeError
from photonpack.serving.logs import (
    BATCH_SECONDS,
    JsonFormatter,
    LogSettings,
    LoopBatchedStream,
    TextFormatter,
    colour_wanted,
    json_line,
)
from tests.support.archives import make_archive
from tests.support.serving import Served

CHATTY = """
import logging
from photonpack import Photon

log = logging.getLogger("chatty")


async def broken(scope, receive, send):
    raise RuntimeError("broken mount")

class Chatty(Photon):
    @Photon.handler
    def hello(self, name: str) -> str:
        log.debug("debug for %s", name)
        log.info("hello %s", name)
        log.warning("careful %s", name)
        print("printed", name, flush=True)
        return f"hello {name}"

    @Photon.handler
    def boom(self) -> str:
        raise ValueError("no such thing")

    @Photon.handler("broken", mount=True)
    def broken_app(self):
        return broken
"""

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
ACCESS_FIELDS = {
    "time",
    "level",
    "logger",
    "message",
    "method",
    "path",
    "status",
    "duration_ms",
    "request_id",
    "client",
}


@pytest.fixture
def chatty(tmp_path: Path) -> Path:
    path = tmp_path / "chatty.py"
    path.write_text(textwrap.dedent(CHATTY))
    return path


def call(
    served: Served, path: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` as JSON; the status, the headers (lower-case names) and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        connection.request(
            "POST",
            path,
            json.dumps(body),
            {"Content-Type": "application/json", **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (fails on the first line that is not one)."""
    records = []
    for line in text.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    return records


def access(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["logger"] == "photonpack.access"]


def test_json_lines_carry_time_level_logger_message_and_the_access_fields(
    chatty: Path, tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    began = time.time()
    stdout = tmp_path / "stdout"
    served = serve_photon(
        "chatty.py", cwd=chatty.parent, args=("--log-format", "json"), stdout=stdout
    )
    given = call(served, "/hello", {"name": "ada"}, {"X-Request-ID": "caller-id-1"})
    made = call(served, "/hello", {"name": "bob"})
    assert served.stop() == 0
    ended = time.time()

    assert given[:1] == made[:1] == (200,)
    assert given[1]["x-request-id"] == "caller-id-1"
    generated = made[1]["x-request-id"]
    assert uuid.UUID(hex=generated).version == 4
    assert uuid.UUID(hex=generated).hex == generated

    records = json_lines(served.stderr())  # every line of stderr is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
        assert TIME.fullmatch(record["time"]), record
        stamp = timegm(time.strptime(record["time"][:19], "%Y-%m-%dT%H:%M:%S"))
        assert int(began) <= stamp <= ended
    first, second = access(records)
    assert set(first) == ACCESS_FIELDS
    assert re.fullmatch(r"127\.0\.0\.1:\d+", first["client"])
    assert isinstance(first["duration_ms"], float)
    assert first["duration_ms"] >= 0
    assert {k: first[k] for k in ("level", "method", "path", "status", "request_id")} == {
        "level": "info",
        "method": "POST",
        "path": "/hello",
        "status": 200,
        "request_id": "caller-id-1",
    }
    assert first["message"] == (
        f'{first["client"]} - "POST /hello HTTP/1.1" 200 {first["duration_ms"]:.1f} ms caller-id-1'
    )
    assert second["request_id"] == generated

    # The photon's own logging calls: the same format, tagged with their request.
    mine = [
        {k: r[k] for k in ("level", "message", "request_id")}
        for r in records
        if r["logger"] == "chatty"
    ]
    assert mine == [
        {"level": "info", "message": "hello ada", "request_id": "caller-id-1"},
        {"level": "warning", "message": "careful ada", "request_id": "caller-id-1"},
        {"level": "info", "message": "hello bob", "request_id": generated},
        {"level": "warning", "message": "careful bob", "request_id": generated},
    ]
    messages = [(r["logger"], r["message"]) for r in records]
    assert ("photonpack", f"photonpack: serving chatty on {served.url}") in messages
    assert ("photonpack.run", "serving chatty.py on http://127.0.0.1:0") in messages
    assert ("uvicorn.error", "Application startup complete.") in messages
    # print() is the photon's stdout, untouched: stderr stays a log stream.
    assert stdout.read_text() == "printed ada\nprinted bob\n"


def test_an_exception_is_logged_once_with_its_traceback_and_the_body_has_none(
    chatty: Path, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon("chatty.py", cwd=chatty.parent, args=("--log-format", "json"))
    status, headers, body = call(served, "/boom", {}, {"X-Request-ID": "boom-1"})
    # An exception no handler catches (a mounted ASGI app's): uvicorn logs it, once.
    mounted = call(served, "/broken/x", {}, {"X-Request-ID": "broken-1"})
    assert served.stop() == 0

    assert (status, headers["x-request-id"]) == (500, "boom-1")
    assert json.loads(body) == {"error": "ValueError: no such thing"}
    assert (mounted[0], mounted[1]["x-request-id"]) == (500, "broken-1")
    assert json.loads(mounted[2]) == {"error": "internal error: RuntimeError"}
    records = json_lines(served.stderr())
    failed = [r for r in records if "exception" in r]
    assert [set(r) for r in failed] == [
        {"time", "level", "logger", "message", "request_id", "exception"}
    ] * 2
    assert [{k: r[k] for k in ("level", "logger", "message", "request_id")} for r in failed] == [
        {
            "level": "error",
            "logger": "photonpack",
            "message": "handler boom failed",
            "request_id": "boom-1",
        },
        {
            "level": "error",
            "logger": "uvicorn.error",
            "message": "Exception in ASGI application",
            "request_id": "broken-1",
        },
    ]
    for record, line, error in zip(
        failed,
        ['raise ValueError("no such thing")', 'raise RuntimeError("broken mount")'],
        ["ValueError: no such thing", "RuntimeError: broken mount"],
        strict=True,
    ):
        assert record["exception"].startswith("Traceback (most recent call last):\n")
        assert line in record["exception"]
        assert record["exception"].endswith(error)
    assert served.stderr().count("Traceback") == 2
    assert [(r["status"], r["request_id"]) for r in access(records)] == [
        (500, "boom-1"),
        (500, "broken-1"),
    ]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("a" * 128, True),
        ("trace-00f3:span/7", True),
        ("a" * 129, False),
        ("two words", False),
        ("caf\xe9", False),
        ("", False),
    ],
)
def test_a_request_id_is_kept_only_when_short_and_printable(
    sent: str, kept: bool, chatty: Path, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon("chatty.py", cwd=chatty.parent, args=("--log-format", "json"))
    _, headers, _ = call(served, "/hello", {"name": "x"}, {"X-Request-ID": sent})
    assert served.stop() == 0
    returned = headers["x-request-id"]
    if kept:
        assert returned == sent
    else:
        assert uuid.UUID(hex=returned).version == 4
    [line] = access(json_lines(served.stderr()))
    assert line["request_id"] == returned


def test_text_lines_name_the_level_and_logger_and_access_lines_the_request(
    chatty: Path, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon("chatty.py", cwd=chatty.parent)
    call(served, "/hello", {"name": "ada"}, {"X-Request-ID": "t-1"})
    assert served.stop() == 0
    lines = served.stderr().splitlines()
    assert "INFO:     chatty: hello ada" in lines
    assert "WARNING:  chatty: careful ada" in lines
    assert f"photonpack: serving chatty on {served.url}" in lines
    [line] = [x for x in lines if "photonpack.access" in x]
    assert re.fullmatch(
        r'INFO:     photonpack\.access: 127\.0\.0\.1:\d+ - "POST /hello HTTP/1\.1" 200 '
        r"\d+\.\d ms t-1",
        line,
    )
    assert "\x1b[" not in served.stderr()  # not a terminal: no colour


def test_no_access_log_writes_no_line_per_request_and_still_returns_the_id(
    chatty: Path, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon(
        "chatty.py", cwd=chatty.parent, args=("--log-format", "json", "--no-access-log")
    )
    _, headers, _ = call(served, "/hello", {"name": "ada"}, {"X-Request-ID": "quiet-1"})
    call(served, "/nowhere", {})
    assert served.stop() == 0
    assert headers["x-request-id"] == "quiet-1"
    records = json_lines(served.stderr())
    assert access(records) == []
    assert [r["message"] for r in records if r["logger"] == "chatty"] == [
        "hello ada",
        "careful ada",
    ]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("warning", [("chatty", "warning", "careful ada")]),
        (
            "debug",
            [
                ("chatty", "debug", "debug for ada"),
                ("chatty", "info", "hello ada"),
                ("chatty", "warning", "careful ada"),
            ],
        ),
    ],
)
def test_log_level_filters_every_logger(
    level: str,
    expected: list[tuple[str, str, str]],
    chatty: Path,
    serve_photon: Callable[..., Served],
) -> None:
    served = serve_photon(
        "chatty.py", cwd=chatty.parent, args=("--log-format", "json", "--log-level", level)
    )
    call(served, "/hello", {"name": "ada"})
    assert served.stop() == 0
    records = json_lines(served.stderr())
    assert [
        (r["logger"], r["level"], r["message"]) for r in records if r["logger"] == "chatty"
    ] == (expected)
    if level == "warning":
        # Not uvicorn's start-up lines, not the access line: only the ready line, always there.
        others = [r for r in records if r["logger"] not in ("photonpack.run", "chatty")]
        assert [(r["level"], r["message"]) for r in others] == [
            ("info", f"photonpack: serving chatty on {served.url}")
        ]
    else:
        assert len(access(records)) == 1


def _serve_on_a_terminal(chatty: Path, env: dict[str, str]) -> str:
    """Serve ``chatty`` with stderr on a pseudo-terminal; what it wrote up to its stop."""
    main, side = pty.openpty()
    argv = [sys.executable, "-m", "photonpack", "run", "-m", "chatty.py", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*argv, "--port", "0"],
        cwd=chatty.parent,
        stdout=subprocess.DEVNULL,
        stderr=side,
        env=env,
    )
    os.close(side)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the terminal's other side is closed: the server is gone
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while b"photonpack: serving chatty" not in b"".join(chunks):
            assert process.poll() is None, b"".join(chunks).decode()
            assert time.monotonic() < deadline, b"".join(chunks).decode()
            time.sleep(0.02)
    finally:
        process.terminate()
        assert process.wait(15) == 0
        reader.join(10)
        os.close(main)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("no_color", [None, "1"])
def test_no_color_turns_the_colours_of_a_terminal_off(no_color: str | None, chatty: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    shown = _serve_on_a_terminal(chatty, env)
    assert "uvicorn.error: Application startup complete." in shown
    if no_color is None:
        assert "\x1b[32mINFO\x1b[0m:     uvicorn.error: Application startup complete." in shown
    else:
        assert "\x1b[" not in shown


@pytest.mark.parametrize("no_color", [None, "1"])
def test_no_color_turns_the_colours_of_the_cli_off_on_a_terminal(
    no_color: str | None, tmp_path: Path
) -> None:
    old = make_archive(tmp_path / "old", packages=[("tinydep", "1.0")])
    new = make_archive(tmp_path / "new", packages=[("tinydep", "1.0"), ("newdep", "0.1")])
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    if no_color is not None:
        env["NO_COLOR"] = no_color
    main, side = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "photonpack", "diff", str(old.path), str(new.path)],
        stdout=side,
        stderr=subprocess.PIPE,
        env=env,
        timeout=60,
        check=False,
    )
    os.close(side)
    shown = os.read(main, 65536).decode()
    os.close(main)
    assert done.returncode == 0, done.stderr
    assert "newdep" in shown
    assert ("\x1b[" in shown) is (no_color is None)


def test_environment_variables_set_the_logs_of_an_archive_run_and_options_win(
    counter_archive: Path, tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    archive = Path(shutil.copy(counter_archive, tmp_path / "counter.photon"))
    env = {"PHOTONPACK_LOG_FORMAT": "json", "PHOTONPACK_ACCESS_LOG": "0"}
    quiet = serve_photon(str(archive), env=env)
    status, headers, _ = call(quiet, "/add", {"x": 3}, {"X-Request-ID": "env-1"})
    assert quiet.stop() == 0
    assert (status, headers["x-request-id"]) == (200, "env-1")
    records = json_lines(quiet.stderr())
    assert access(records) == []
    assert any(
        r["logger"] == "photonpack.run" and r["message"].startswith("verified counter sha256:")
        for r in records
    )

    loud = serve_photon(str(archive), env=env, args=("--access-log",))
    call(loud, "/add", {"x": 3}, {"X-Request-ID": "env-2"})
    assert loud.stop() == 0
    [line] = access(json_lines(loud.stderr()))
    assert (line["path"], line["request_id"]) == ("/add", "env-2")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "PHOTONPACK_LOG_LEVEL",
            "loud",
            "error: log level must be one of debug, info, warning, error, got 'loud'; "
            "set it with --log-level or $PHOTONPACK_LOG_LEVEL",
        ),
        (
            "PHOTONPACK_LOG_FORMAT",
            "xml",
            "error: log format must be one of text, json, got 'xml'; "
            "set it with --log-format or $PHOTONPACK_LOG_FORMAT",
        ),
        (
            "PHOTONPACK_ACCESS_LOG",
            "maybe",
            "error: $PHOTONPACK_ACCESS_LOG must be 1 or 0 (true/false, on/off), got 'maybe'; "
            "unset it to log every request",
        ),
    ],
)
def test_a_bad_log_variable_is_one_line_naming_it(
    variable: str, value: str, message: str, chatty: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "photonpack", "run", "-m", "chatty.py", "--port", "0"],
        cwd=chatty.parent,
        capture_output=True,
        text=True,
        env={**os.environ, variable: value},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == message
    assert "Traceback" not in done.stderr


def test_run_refuses_an_unknown_log_level_option() -> None:
    result = CliRunner().invoke(cli, ["run", "-m", "x.py", "--log-level", "loud"])
    assert result.exit_code == 2
    assert "'loud' is not one of 'debug', 'info', 'warning', 'error'" in result.output


# -- the pieces, without a server ----------------------------------------------


def test_options_win_over_variables_which_win_over_the_defaults() -> None:
    assert LogSettings.from_environment({}) == LogSettings(
        level="info", format="text", access_log=True
    )
    environ = {
        "PHOTONPACK_LOG_LEVEL": "WARNING",
        "PHOTONPACK_LOG_FORMAT": "json",
        "PHOTONPACK_ACCESS_LOG": "off",
    }
    assert LogSettings.from_environment(environ) == LogSettings(
        level="warning", format="json", access_log=False
    )
    assert LogSettings.from_environment(
        environ, level="debug", format=None, access_log=True
    ) == LogSettings(level="debug", format="json", access_log=True)
    with pytest.raises(ServeError, match="log level must be one of"):
        LogSettings(level="verbose")


def _record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("mine", logging.ERROR, __file__, 1, "x=%d", (3,), None)
    record.created = 1764684283.0625  # 2025-12-02T14:04:43.062Z
    record.__dict__.update(extra)
    return record


def test_json_formatter_writes_rfc3339_utc_and_the_traceback_in_a_field() -> None:
    try:
        raise KeyError("k")
    except KeyError:
        exc_info = sys.exc_info()
    out = json.loads(JsonFormatter().format(_record(exc_info=exc_info)))
    assert out.pop("exception").endswith("KeyError: 'k'")
    assert out == {
        "time": "2025-12-02T14:04:43.062Z",
        "level": "error",
        "logger": "mine",
        "message": "x=3",
    }
    assert json.loads(json_line("info", "photonpack.run", "hi"))["message"] == "hi"


def test_json_formatter_keeps_the_fields_a_photon_passes_in_extra() -> None:
    out = json.loads(JsonFormatter().format(_record(user="ada", tries=2, color_message="\x1b[")))
    assert out == {
        "time": "2025-12-02T14:04:43.062Z",
        "level": "error",
        "logger": "mine",
        "message": "x=3",
        "user": "ada",
        "tries": 2,
    }


def test_text_formatter_colours_the_level_only_when_asked() -> None:
    assert TextFormatter().format(_record()) == "ERROR:    mine: x=3"
    assert TextFormatter(colour=True).format(_record()) == "\x1b[31mERROR\x1b[0m:    mine: x=3"


class _Terminal:
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("environ", "wanted"), [({}, True), ({"NO_COLOR": ""}, True), ({"NO_COLOR": "1"}, False)]
)
def test_colour_is_for_terminals_unless_no_color_is_set(
    environ: dict[str, str], wanted: bool
) -> None:
    assert colour_wanted(_Terminal(), environ) is wanted  # type: ignore[arg-type]
    assert colour_wanted(io.StringIO(), environ) is False


def test_lines_logged_on_the_loop_are_written_in_batches_and_in_order() -> None:
    stream = io.StringIO()
    handler = LoopBatchedStream(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("photonpack.test.batched")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    seen: list[str] = []

    async def main() -> None:
        log.info("one")
        log.info("two")
        seen.append(stream.getvalue())  # buffered: nothing written yet
        await asyncio.to_thread(log.info, "three")  # another thread: the batch, then itself
        seen.append(stream.getvalue())
        log.info("four")
        # Both timers are the loop's: the batch's (20 ms) fires before this one.
        await asyncio.sleep(BATCH_SECONDS * 2)
        seen.append(stream.getvalue())
        log.info("five")  # the loop ends before its batch is due

    try:
        asyncio.run(main())
        handler.flush()  # logging.shutdown() at exit
    finally:
        log.removeHandler(handler)
    assert seen == ["", "one\ntwo\nthree\n", "one\ntwo\nthree\nfour\n"]
    assert stream.getvalue() == "one\ntwo\nthree\nfour\nfive\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("source", ["module", "archive"])
def test_quiet_run_says_nothing_on_stderr_and_still_serves(
    source: str, chatty: Path, counter_archive: Path, tmp_path: Path
) -> None:
    port = _free_port()
    what = ["-m", "chatty.py"] if source == "module" else [str(counter_archive)]
    address = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    log = tmp_path / "quiet.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "photonpack", "-q", "run", *what, *address],
            cwd=chatty.parent,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        served = Served(url=f"http://127.0.0.1:{port}", name="", process=process, log=log)
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                status, _, _ = call(served, "/healthz", {})
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
                continue
            break
        assert status in (200, 405)  # up: whatever /healthz answers a POST
        assert served.stop() == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    said = log.read_text()
    assert "photonpack: serving" not in said
    assert "verified" not in said and "serving chatty" not in said


def test_an_access_line_and_its_duration_field_agree_at_a_rounding_edge() -> None:
    import logging

    from photonpack.serving.logs import ACCESS_LOGGER, RequestLog

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    access = logging.getLogger(ACCESS_LOGGER)
    keep, level = Keep(), access.level
    access.addHandler(keep)
    access.setLevel(logging.INFO)
    try:
        scope = {"method": "POST", "path": "/hello", "client": ("127.0.0.1", 5), "type": "http"}
        RequestLog._log(scope, "rid", 200, 0.04996)  # 0.0 unrounded; 0.05 (just over) -> 0.1
    finally:
        access.removeHandler(keep)
        access.setLevel(level)
    (record,) = seen
    duration = record.photonpack_access["duration_ms"]  # type: ignore[attr-defined]
    assert record.getMessage().endswith(f" 200 {duration:.1f} ms rid")
