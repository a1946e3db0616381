"""Real servers: `photonpack run -m` in a subprocess, driven by the Client and plain HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack import Client
from photonpack.cli import cli
from photonpack.errors import ClientError
from tests.support.serving import Served

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def post(url: str, body: object, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data: bytes = response.read()
        return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_photon(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("example", ["counter", "lepton_counter"])
def test_seed_example_served_by_the_cli_gives_3_8_6(
    example: str, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon("counter.py", cwd=EXAMPLES / example)
    assert served.name == "counter"
    assert post(served.url + "/add", {"x": 3}) == b"3"
    client = Client(served.url)
    assert [client.add(x=5), client.sub(x=2)] == [8, 6]
    assert served.stop() == 0
    assert "Traceback" not in served.stderr()


def test_cli_prints_the_url_and_a_client_snippet(serve_photon: Callable[..., Served]) -> None:
    served = serve_photon(str(EXAMPLES / "counter" / "counter.py:Counter"), args=("--port", "0"))
    assert served.stderr().startswith(
        f"serving {EXAMPLES}/counter/counter.py:Counter on http://127.0.0.1:0; call it with:\n\n"
        "    from photonpack import Client, local\n"
        "    c = Client(local(port=0))\n"
        "    c.paths()\n"
    )


def test_sigterm_drains_in_flight_requests_then_exits_0(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    marker = tmp_path / "started"
    write_photon(
        tmp_path,
        "slow.py",
        f"""
        import time
        from pathlib import Path
        from photonpack import Photon

        class Slow(Photon):
            @Photon.handler
            def work(self) -> str:
                Path({str(marker)!r}).touch()
                time.sleep(1)
                return "done"
        """,
    )
    served = serve_photon("slow.py", cwd=tmp_path)
    answers: list[bytes] = []
    caller = threading.Thread(target=lambda: answers.append(post(served.url + "/work", {})))
    caller.start()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists()
    assert served.stop() == 0
    caller.join(10)
    assert answers == [b'"done"']


def test_init_runs_before_the_port_opens(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    marker = tmp_path / "in-init"
    write_photon(
        tmp_path,
        "late.py",
        f"""
        import time
        from pathlib import Path
        from photonpack import Photon

        class Late(Photon):
            def init(self) -> None:
                Path({str(marker)!r}).touch()
                time.sleep(0.5)
                self.value = "initialized"

            @Photon.handler
            def value_of(self) -> str:
                return self.value
        """,
    )
    port = free_port()
    served = serve_photon("late.py", cwd=tmp_path, args=("--port", str(port)), wait=False)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
    while "photonpack: serving late" not in served.stderr() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert post(f"http://127.0.0.1:{port}/value_of", {}) == b'"initialized"'
    assert served.stop() == 0


def test_sigterm_during_a_slow_init_exits_0_at_once_after_its_finally(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    started, cleaned = tmp_path / "in-init", tmp_path / "cleaned"
    write_photon(
        tmp_path,
        "sleepy.py",
        f"""
        import time
        from pathlib import Path
        from photonpack import Photon

        class Sleepy(Photon):
            def init(self) -> None:
                Path({str(started)!r}).touch()
                try:
                    time.sleep(60)
                finally:
                    Path({str(cleaned)!r}).touch()
        """,
    )
    served = serve_photon("sleepy.py", cwd=tmp_path, wait=False)
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started.exists()
    assert served.stop(timeout=30) == 0  # long before init()'s 60 s
    assert cleaned.exists()
    assert served.stderr().endswith(" photonpack: SIGTERM before the server was up: stopped\n")
    assert "Traceback" not in served.stderr()


def test_sigterm_while_the_serving_stack_is_imported_exits_0(tmp_path: Path) -> None:
    # The entry point as an image runs it, stopped as soon as it has a handler:
    # sys.modules is watched from a thread of the same process via -c.
    watch = (
        "import os, signal, sys, threading, time, runpy\n"
        "def stop():\n"
        "    while 'photonpack.serving.early_stop' not in sys.modules: time.sleep(0.001)\n"
        "    while 'uvicorn' not in sys.modules: time.sleep(0.001)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "threading.Thread(target=stop, daemon=True).start()\n"
        "sys.argv = ['serve', '--entry', 'counter.py', '--port', '0']\n"
        "runpy.run_module('photonpack.serving.serve', run_name='__main__', alter_sys=True)\n"
        "sys.exit(5)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", watch],
        cwd=EXAMPLES / "counter",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "photonpack",
                "run",
                "-m",
                "counter.py",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=EXAMPLES / "counter",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.endswith(
        f"error: port {port} on 127.0.0.1 is already in use; stop the process using it "
        "or choose another port with --port\n"
    )
    assert "Traceback" not in done.stderr


def test_failing_init_is_a_clear_error(tmp_path: Path) -> None:
    path = write_photon(
        tmp_path,
        "broken.py",
        """
        from photonpack import Photon

        class Broken(Photon):
            def init(self) -> None:
                raise RuntimeError("weights missing")
        """,
    )
    done = subprocess.run(
        [sys.executable, "-m", "photonpack.serving.serve", "--entry", "broken.py", "--port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        1,
        f"error: Broken.init() failed at {path}:6: RuntimeError: weights missing\n",
    )


def test_token_from_option_and_environment(serve_photon: Callable[..., Served]) -> None:
    for kwargs in ({"args": ("--token", "s3cret")}, {"env": {"PHOTONPACK_TOKEN": "s3cret"}}):
        served = serve_photon("counter.py", cwd=EXAMPLES / "counter", **kwargs)
        with pytest.raises(ClientError) as info:
            Client(served.url)
        assert info.value.status == 401
        assert str(info.value) == (
            "GET /openapi.json answered 401: missing or wrong bearer token: "
            "send 'Authorization: Bearer <token>'"
        )
        assert Client(served.url, token="s3cret").add(x=1) == 1
        served.stop()


def test_describe_entry_prints_the_contract_as_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "photonpack.serving.describe", "--entry", "counter.py"],
        cwd=EXAMPLES / "lepton_counter",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    contract = json.loads(done.stdout)
    assert [(h["name"], h["path"]) for h in contract["handlers"]] == [
        ("add", "/add"),
        ("sub", "/sub"),
    ]
    assert contract["openapi"]["info"]["title"] == "counter"


def test_launch_serves_the_photon(tmp_path: Path) -> None:
    port = free_port()
    script = write_photon(
        tmp_path,
        "main.py",
        f"""
        import sys
        sys.path.insert(0, {str(EXAMPLES / "counter")!r})
        from counter import Counter
        Counter().launch(host="127.0.0.1", port={port})
        """,
    )
    log = tmp_path / "launch.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, str(script)], stderr=stderr)
    served = Served(url="", name="", process=process, log=log)
    try:
        deadline = time.monotonic() + 30
        while f"photonpack: serving counter on http://127.0.0.1:{port}" not in served.stderr():
            assert time.monotonic() < deadline and process.poll() is None, served.stderr()
            time.sleep(0.02)
        assert post(f"http://127.0.0.1:{port}/add", {"x": 3}) == b"3"
    finally:
        assert served.stop() == 0


ONE_PHOTON = (
    "error: photonpack run needs exactly one photon: ARCHIVE, -n NAME, or -m file.py[:Class]\n"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [],
            ONE_PHOTON,
        ),
        (
            ["-m", "a.py", "-n", "x"],
            ONE_PHOTON,
        ),
        (
            ["-m", "counter.py", "--env", "NOEQUALS"],
            "error: --env expects KEY=VALUE, got 'NOEQUALS'\n",
        ),
    ],
)
def test_run_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["run", *args])
    assert (result.exit_code, result.output) == (2, message)


def test_serve_entry_imports_only_the_serving_stack() -> None:
    code = (
        "import sys, photonpack.serving.serve, photonpack.serving.describe;"
        "from photonpack.serving.loader import load_photon;"
        f"load_photon({str(EXAMPLES / 'lepton_counter' / 'counter.py')!r});"
        # click is not listed: uvicorn itself imports it (it is in the locked environment).
        "bad = [m for m in ('photonpack.cli', 'photonpack.lock.lockfile', 'photonpack.archive',"
        " 'zstandard', 'pip', 'piptools', 'packaging', 'tomli_w') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_client_imports_neither_fastapi_nor_httpx() -> None:
    code = (
        "import sys, photonpack.serving.client;"
        "bad = [m for m in ('fastapi', 'starlette', 'pydantic', 'uvicorn', 'httpx', 'click')"
        " if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
