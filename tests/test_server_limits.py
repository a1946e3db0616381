"""The server's faults are bounded: real servers, real sockets, real signals.

Connection limits (head size, head and idle deadlines), threads left by hung
sync handlers, the time SIGTERM takes, and memory after refused chunked bodies.
Deadlines are set to about a second here; the bounds asserted are generous:
they check that a limit holds, not how fast anything is.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from photonpack import Photon
from photonpack.serving.errors import PhotonDefinitionError, ServeError
from photonpack.serving.limits import ConnectionLimits
from photonpack.serving.photon import PhotonDefinitionWarning
from photonpack.serving.shutdown import ShutdownPolicy
from tests.support.serving import Served

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
COUNTER = str(EXAMPLES / "counter" / "counter.py")
FAST = {"PHOTONPACK_HEAD_TIMEOUT": "1", "PHOTONPACK_IDLE_TIMEOUT": "1"}
_READY = re.compile(r"photonpack: serving \S+ on (http://\S+)")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``python -m photonpack.serving.serve --entry ENTRY`` on a free port."""
    started: list[Served] = []

    def start(entry: str, *args: str, env: dict[str, str] | None = None) -> Served:
        log = tmp_path / f"serve-{len(started)}.log"
        argv = [sys.executable, "-m", "photonpack.serving.serve", "--entry", entry]
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [*argv, "--port", "0", "--log-level", "warning", *args],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, **(env or {})},
            )
        served = Served(url="", name="", process=process, log=log)
        started.append(served)
        deadline = time.monotonic() + 30
        while not (match := _READY.search(log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        served.url = match.group(1)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()


def photon(tmp_path: Path, text: str) -> str:
    path = tmp_path / "photon.py"
    path.write_text(textwrap.dedent(text))
    return str(path)


def connect(served: Served) -> socket.socket:
    return socket.create_connection(("127.0.0.1", served.port), timeout=10)


def seconds_until_closed(sock: socket.socket, drip: bytes = b"", every: float = 0.2) -> float:
    """Wait for the server to close ``sock`` (sending ``drip`` each ``every`` s); the seconds."""
    started = time.monotonic()
    sock.settimeout(every)
    while time.monotonic() - started < 15:
        try:
            if sock.recv(65536) == b"":
                break
        except TimeoutError:
            pass
        except ConnectionResetError:
            break
        try:
            if drip:
                sock.send(drip)
        except OSError:
            break
    else:
        raise AssertionError("the server kept the connection open for 15 s")
    return time.monotonic() - started


def status(pid: int, field: str) -> int:
    """A number from /proc/PID/status (VmRSS in kB, Threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def post(url: str, body: object, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one request and read its whole response (Content-Length framed)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert match is not None, head
    length = int(match.group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n", 1)[0] + b" " + body


ADD = b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 8\r\n"


def test_a_head_sent_byte_by_byte_is_closed_at_the_head_deadline(
    serve: Callable[..., Served],
) -> None:
    served = serve(COUNTER, env=FAST)
    with connect(served) as sock:
        sock.send(b"POST /add HTTP/1.1\r\nX-Slow: ")
        elapsed = seconds_until_closed(sock, drip=b"a", every=0.2)  # slowloris
    assert 0.9 < elapsed < 5


def test_a_connection_that_sends_nothing_is_closed_at_the_idle_deadline(
    serve: Callable[..., Served],
) -> None:
    served = serve(COUNTER, env=FAST)
    with connect(served) as sock:
        assert 0.9 < seconds_until_closed(sock) < 5
    with connect(served) as sock:  # and once a response has been sent
        assert exchange(sock, ADD + b'\r\n{"x": 3}') == b"HTTP/1.1 200 OK 3"
        assert 0.9 < seconds_until_closed(sock) < 5


def test_legitimate_requests_keep_their_connection_and_large_headers(
    serve: Callable[..., Served],
) -> None:
    served = serve(COUNTER, env=FAST)
    header = b"X-Large: " + b"a" * (60 * 1024) + b"\r\n"
    with connect(served) as sock:
        answers = []
        for _ in range(3):
            answers.append(exchange(sock, ADD + header + b'\r\n{"x": 2}'))
            time.sleep(0.5)  # within the idle deadline: the connection stays
        answers.append(exchange(sock, (ADD + b'\r\n{"x": 1}') * 2))  # pipelined
    assert answers == [
        b"HTTP/1.1 200 OK 2",
        b"HTTP/1.1 200 OK 4",
        b"HTTP/1.1 200 OK 6",
        b"HTTP/1.1 200 OK 7",
    ]
    assert post(served.url + "/add", {"x": 0}) == (200, b"8")  # the pipelined one ran too


def test_a_head_over_64_kib_gets_431_and_the_connection_closes(
    serve: Callable[..., Served],
) -> None:
    served = serve(COUNTER)
    with connect(served) as sock:
        sock.sendall(ADD + b"X-Large: " + b"a" * (100 * 1024) + b"\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    error = (
        b'{"error": "request head (request line and headers) is larger than the limit of '
        b'65536 bytes; send shorter headers"}'
    )
    assert answer == (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(error), error)
    )


def test_the_head_limit_can_be_set_by_option(serve: Callable[..., Served]) -> None:
    served = serve(COUNTER, "--max-head-bytes", "1024")
    with connect(served) as sock:
        assert exchange(sock, ADD + b"X-A: " + b"a" * 2000 + b"\r\n\r\n").startswith(
            b"HTTP/1.1 431 Request Header Fields Too Large {"
        )


HUNG = """
    import threading
    from photonpack import Photon

    class Hung(Photon):
        handler_timeout = 0.2
        timeout_graceful_shutdown = 1

        @Photon.handler
        def hang(self) -> str:
            threading.Event().wait()
            return "never"
"""


def test_hung_sync_calls_hold_one_thread_and_sigterm_still_exits_0(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    served = serve(photon(tmp_path, HUNG))
    before = status(served.process.pid, "Threads")
    answers = [post(served.url + "/hang", {}) for _ in range(10)]
    assert (
        answers == [(504, b'{"error":"hang did not finish within 0.2 s (handler_timeout)"}')] * 10
    )
    assert status(served.process.pid, "Threads") == before + 1
    assert served.stop(timeout=10) == 0


def test_sigterm_with_a_hung_call_in_flight_exits_0_after_the_drain_timeout(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    source = """
        import threading
        from photonpack import Photon

        class Stuck(Photon):
            timeout_graceful_shutdown = 1

            @Photon.handler
            def stuck(self) -> str:
                # A non-daemon thread of its own, too: the process exits anyway.
                threading.Thread(target=threading.Event().wait).start()
                threading.Event().wait()
                return "never"
    """
    served = serve(photon(tmp_path, source))
    caller = threading.Thread(target=post, args=(served.url + "/stuck", {}, 30), daemon=True)
    caller.start()
    deadline = time.monotonic() + 10
    while status(served.process.pid, "Threads") < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=10) == 0
    assert 0.9 < time.monotonic() - started < 6  # the drain timeout (1 s), then out


def test_incoming_traffic_grace_period_keeps_serving_after_sigterm(
    tmp_path: Path, serve: Callable[..., Served]
) -> None:
    source = """
        from photonpack import Photon

        class Lingering(Photon):
            incoming_traffic_grace_period = 1

            @Photon.handler
            def ping(self) -> str:
                return "pong"
    """
    served = serve(photon(tmp_path, source))
    served.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert post(served.url + "/ping", {}) == (200, b'"pong"')  # a new connection, accepted
    assert served.process.wait(timeout=10) == 0


def _chunked_upload(served: Served, megabytes: int) -> bytes:
    """POST a chunked JSON body of ``megabytes`` MiB; the status line of the answer."""
    with connect(served) as sock:
        sock.sendall(
            b"POST /add HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * (1 << 20)
        try:
            for _ in range(megabytes):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed before the end: the point
        return sock.recv(65536).split(b"\r\n", 1)[0]


def test_refused_chunked_bodies_do_not_grow_memory(serve: Callable[..., Served]) -> None:
    served = serve(COUNTER, "--max-body-bytes", str(8 << 20))
    assert _chunked_upload(served, 12) == b"HTTP/1.1 413 Request Entity Too Large"
    before = status(served.process.pid, "VmRSS")
    answers = {_chunked_upload(served, 12) for _ in range(5)}
    grown = status(served.process.pid, "VmRSS") - before
    assert answers == {b"HTTP/1.1 413 Request Entity Too Large"}
    assert grown < 8 * 1024, f"RSS grew by {grown} kB over 5 refused bodies"  # was +8 MiB each
    assert post(served.url + "/add", {"x": 1}) == (200, b"1")


def test_limits_come_from_the_environment_and_bad_values_are_clear_errors() -> None:
    assert ConnectionLimits.from_environment({}) == ConnectionLimits(
        max_head_bytes=65536, head_timeout=10.0, idle_timeout=5.0
    )
    assert ConnectionLimits.from_environment(
        {"PHOTONPACK_HEAD_TIMEOUT": "1.5", "PHOTONPACK_MAX_HEAD_BYTES": "4096"}
    ) == ConnectionLimits(max_head_bytes=4096, head_timeout=1.5)
    with pytest.raises(ServeError) as bad:
        ConnectionLimits.from_environment({"PHOTONPACK_IDLE_TIMEOUT": "soon"})
    assert str(bad.value) == (
        "$PHOTONPACK_IDLE_TIMEOUT must be a positive number, got 'soon'; "
        "unset it to use the default"
    )
    with pytest.raises(ServeError) as negative:
        ConnectionLimits(head_timeout=0)
    assert str(negative.value) == (
        "head_timeout must be a positive number, got 0; "
        "set it with --head-timeout or $PHOTONPACK_HEAD_TIMEOUT"
    )


def test_the_serve_entry_reports_a_bad_limit_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "photonpack.serving.serve", "--entry", COUNTER, "--port", "0"],
        env={**os.environ, "PHOTONPACK_MAX_HEAD_BYTES": "lots"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        1,
        "error: $PHOTONPACK_MAX_HEAD_BYTES must be a positive number, got 'lots'; "
        "unset it to use the default\n",
    )


def test_the_shutdown_policy_reads_leptons_attributes() -> None:
    class Default(Photon):
        pass

    class Lepton(Photon):
        timeout_graceful_shutdown = 5
        incoming_traffic_grace_period = 0.5

    class Wrong(Photon):
        timeout_graceful_shutdown = "30s"

    assert ShutdownPolicy.of(Default) == ShutdownPolicy(
        incoming_traffic_grace_period=0.0, timeout_graceful_shutdown=30.0
    )
    assert ShutdownPolicy.of(Lepton).bound == 0.5 + 5 + 2
    with pytest.raises(PhotonDefinitionError) as bad:
        ShutdownPolicy.of(Wrong)
    assert str(bad.value) == (
        "Wrong.timeout_graceful_shutdown must be a number of seconds (0 or more) or None, got '30s'"
    )


def test_a_misspelt_shutdown_attribute_is_named_when_the_class_is_defined() -> None:
    with pytest.warns(PhotonDefinitionWarning) as typo:

        class Typo(Photon):
            timeout_gracefull_shutdown = 5

    assert [str(w.message) for w in typo] == [
        "Typo.timeout_gracefull_shutdown is not a photon attribute; did you mean "
        "timeout_graceful_shutdown? photonpack ignores it, as Lepton did; rename it to declare it"
    ]
