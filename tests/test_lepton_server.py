"""Lepton's server side (issue 14, items 3-9): real `run -m` servers, and the app in-process.

Mounts of every kind, deployment_template, **kwargs, cancel_on_disconnect,
batching, examples / include_in_schema, File URLs, and the operations a
deployment expects (/metrics, /livez, /queue-length, CORS, Lepton's token
variable, the liveness port).
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import socket
import subprocess
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from photonpack import Photon
from photonpack.serving.app import build_app, describe
from photonpack.serving.deployment import ENV_VAR_REQUIRED
from photonpack.serving.errors import PhotonDefinitionError
from photonpack.serving.photon import File, PhotonDefinitionWarning
from tests.support.serving import Served


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _post(url: str, body: object) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


MOUNTS = """\
    from fastapi import FastAPI
    from flask import Flask, request
    from leptonai.photon import Photon, StaticFiles

    api = FastAPI()

    @api.get("/ping")
    def ping():
        return "fastapi pong"

    site = Flask(__name__)

    @site.route("/hello", methods=["GET", "POST"])
    def hello():
        return f"flask hello {request.args.get('who', request.get_data(as_text=True))}"

    def plain_wsgi(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi at ", environ["SCRIPT_NAME"].encode()]

    class Inner(Photon):
        @Photon.handler
        def hi(self, who: str) -> str:
            return f"inner hi {who}"

    class Mounts(Photon):
        @Photon.handler(mount=True)
        def api(self):
            return api

        @Photon.handler("site", mount=True)
        def site(self):
            return site

        @Photon.handler("raw", mount=True)
        def raw(self):
            return plain_wsgi

        @Photon.handler("files", mount=True)
        def files(self):
            return StaticFiles(directory="static")

        @Photon.handler("inner", mount=True)
        def inner(self):
            return Inner()
"""


def test_every_kind_of_mount_is_served_by_run_m(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    _write(tmp_path, "mounts.py", MOUNTS)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.txt").write_text("static a")
    served = serve_photon("mounts.py:Mounts", cwd=tmp_path)
    assert _get(served.url + "/api/ping")[2] == b'"fastapi pong"'
    assert _get(served.url + "/site/hello?who=you")[2] == b"flask hello you"
    request = urllib.request.Request(served.url + "/site/hello", data=b"body", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read() == b"flask hello body"
    assert _get(served.url + "/raw/x")[2] == b"wsgi at /raw"
    assert _get(served.url + "/files/a.txt")[2] == b"static a"
    assert _post(served.url + "/inner/hi", {"who": "me"}) == (200, "inner hi me")
    openapi = json.loads(_get(served.url + "/openapi.json")[2])
    assert "/inner/hi" in openapi["paths"]


def test_a_mount_whose_package_is_missing_stops_with_the_fix(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    _write(
        tmp_path,
        "ui.py",
        """\
        from leptonai.photon import Photon

        class Ui(Photon):
            @Photon.handler(mount=True)
            def ui(self):
                import gradio_absent_here as gr
                return gr.Blocks()
        """,
    )
    served = serve_photon("ui.py", cwd=tmp_path, wait=False)
    assert served.process.wait(30) == 1
    assert (
        "error: mount handler Ui.ui failed at " in served.stderr()
        and "No module named 'gradio_absent_here'; add the package it imports to "
        "Ui.requirement_dependency"
        in served.stderr()
    )


class Templated(Photon):
    deployment_template = {
        "resource_shape": "cpu.small",
        "env": {"PP_TEST_MODEL": "tiny", "PP_TEST_SET": "default", "PP_TEST_KEY": ENV_VAR_REQUIRED},
        "secret": ["PP_TEST_SECRET"],
    }

    def init(self) -> None:
        self.model = os.environ["PP_TEST_MODEL"]
        self.preset = os.environ["PP_TEST_SET"]

    @Photon.handler
    def which(self) -> list[str]:
        return [self.model, self.preset]


def test_deployment_template_env_is_set_before_init_unless_already_set(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("PP_TEST_MODEL", "PP_TEST_KEY", "PP_TEST_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PP_TEST_SET", "mine")
    with caplog.at_level(logging.WARNING, "photonpack"):
        assert Templated().which() == ["tiny", "mine"]
    assert "PP_TEST_KEY" not in os.environ
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "Templated: environment variable PP_TEST_KEY is required by its deployment_template "
        "and is not set",
        "Templated: secret PP_TEST_SECRET named by its deployment_template is not in the "
        "environment",
    ]
    monkeypatch.delenv("PP_TEST_MODEL")  # set by the template: not for the other tests


def test_deployment_template_is_recorded_as_declared() -> None:
    assert describe(Templated)["photon"]["deployment_template"] == {
        "resource_shape": "cpu.small",
        "env": {"PP_TEST_MODEL": "tiny", "PP_TEST_SET": "default", "PP_TEST_KEY": ENV_VAR_REQUIRED},
        "secret": ["PP_TEST_SECRET"],
    }


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"envs": {}}, "Bad.deployment_template has unknown key(s) envs; its keys are"),
        ({"env": {"N": 1}}, "Bad.deployment_template.env['N'] must be a string"),
        ({"env": {"1N": "x"}}, "Bad.deployment_template.env: '1N' is not an environment"),
        ({"secret": "TOKEN"}, "Bad.deployment_template.secret must be a list of secret names"),
        ({"env": {"LEPTON_WORKSPACE_ID": "x"}}, "LEPTON_WORKSPACE_ID is reserved"),
    ],
)
def test_a_wrong_deployment_template_is_refused_at_class_definition(
    template: dict[str, Any], message: str
) -> None:
    with pytest.raises(PhotonDefinitionError) as info:

        class Bad(Photon):
            deployment_template = template

    assert message in str(info.value)


def test_an_unknown_resource_shape_warns_and_loads() -> None:
    with pytest.warns(PhotonDefinitionWarning, match="'gpu.b200' is not one of Lepton's shapes"):

        class Big(Photon):
            deployment_template = {"resource_shape": "gpu.b200"}

    assert describe(Big)["photon"]["deployment_template"]["resource_shape"] == "gpu.b200"


class Open(Photon):
    @Photon.handler
    def echo(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        return {"prompt": prompt, **kwargs}


def test_kwargs_handlers_receive_the_extra_json_fields() -> None:
    client = TestClient(build_app(Open()))
    answer = client.post("/echo", json={"prompt": "hi", "temperature": 0.5, "n": 2})
    assert answer.json() == {"prompt": "hi", "temperature": 0.5, "n": 2}
    assert client.post("/echo", json={"temperature": 0.5}).status_code == 422
    assert [p["name"] for p in describe(Open)["handlers"][0]["parameters"]] == ["prompt"]


def test_kwargs_on_a_get_handler_is_refused_with_the_fix() -> None:
    class Getter(Photon):
        @Photon.handler(method="GET")
        def look(self, **kwargs: Any) -> int:
            return 1

    with pytest.raises(PhotonDefinitionError, match="a GET handler has none; name each query"):
        build_app(Getter())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cancel_on_disconnect": 1, "use_raw_args": True}, "cannot be combined with use_raw"),
        ({"cancel_on_disconnect": -1}, "cancel_on_disconnect must be a positive float, got -1"),
        ({"max_batch_size": 4}, "batching needs both max_batch_size and max_wait_time"),
        ({"max_batch_size": 1, "max_wait_time": 0.1}, "max_batch_size must be greater than 1"),
        ({"max_batch_size": 2.5, "max_wait_time": 0.1}, "max_batch_size must be a positive int"),
        ({"batch": 2}, "@handler got unknown option(s) batch; the options are"),
    ],
)
def test_wrong_handler_options_are_refused_with_lepton_rules(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(PhotonDefinitionError) as info:
        Photon.handler("x", **options)(lambda self: None)
    assert message in str(info.value)


class Documented(Photon):
    @Photon.handler(examples=[{"x": 1}, {"x": 2}], use_router_if_possible=False)
    def shown(self, x: int) -> int:
        return x

    @Photon.handler(include_in_schema=False)
    def hidden(self) -> int:
        return 7


def test_examples_and_include_in_schema_shape_the_openapi_schema() -> None:
    client = TestClient(build_app(Documented()))
    paths = client.get("/openapi.json").json()["paths"]
    assert list(paths) == ["/shown"]
    examples = paths["/shown"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert examples == {"example 1": {"value": {"x": 1}}, "example 2": {"value": {"x": 2}}}
    assert client.post("/hidden").json() == 7


BATCHED = """\
    import threading
    from leptonai.photon import Photon

    class Batched(Photon):
        handler_max_concurrency = 8

        def init(self):
            self.sizes = []

        @Photon.handler(max_batch_size=4, max_wait_time=0.5)
        def double(self, x: int) -> int:
            self.sizes.append(len(x))
            return [v * 2 for v in x]

        @Photon.handler(max_batch_size=2, max_wait_time=0.05)
        def short(self, x: int) -> int:
            return [x[0]]

        @Photon.handler(method="GET")
        def sizes(self) -> list:
            return self.sizes
"""


def test_concurrent_calls_are_batched_and_each_gets_its_own_result(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon(str(_write(tmp_path, "batched.py", BATCHED)))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda x: _post(served.url + "/double", {"x": x}), range(4)))
    assert results == [(200, 0), (200, 2), (200, 4), (200, 6)]
    assert _post(served.url + "/double", {"x": 5}) == (200, 10)  # alone, after max_wait_time
    assert json.loads(_get(served.url + "/sizes")[2]) == [4, 1]
    with ThreadPoolExecutor(2) as pool:
        wrong = list(pool.map(lambda x: _post(served.url + "/short", {"x": x}), range(2)))
    error = (
        "BatchResultError: short is batched (max_batch_size) and must return a list with one "
        "result per call: 2 calls, got 1"
    )
    assert wrong == [(500, {"error": error})] * 2


CANCELLED = """\
    import asyncio
    from leptonai.photon import Photon

    class Cancelled(Photon):
        def init(self):
            self.seen = []

        @Photon.handler(cancel_on_disconnect=0.05)
        async def slow(self, tag: str) -> str:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                self.seen.append(f"cancelled {tag}")
                raise
            return "finished"

        @Photon.handler(cancel_on_disconnect=0.05)
        async def quick(self) -> str:
            await asyncio.sleep(0.2)
            return "done"

        @Photon.handler(method="GET")
        def log(self) -> list:
            return self.seen
"""


def test_cancel_on_disconnect_stops_the_call_when_the_client_goes_away(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon(str(_write(tmp_path, "cancelled.py", CANCELLED)))
    body = b'{"tag": "a"}'
    with socket.create_connection(("127.0.0.1", served.port)) as conn:
        conn.sendall(
            b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        time.sleep(0.3)  # the call is running
    deadline = time.monotonic() + 5
    while json.loads(_get(served.url + "/log")[2]) != ["cancelled a"]:
        assert time.monotonic() < deadline, served.stderr()
        time.sleep(0.05)
    # Log lines are written in batches from the event loop: the line may trail the call.
    while "slow: the client went away; the call was cancelled" not in served.stderr():
        assert time.monotonic() < deadline, served.stderr()
        time.sleep(0.05)
    assert _post(served.url + "/quick", {}) == (200, "done")  # a client that stays is answered


class Reader(Photon):
    @Photon.handler
    def size(self, file: File) -> list[Any]:
        return [file.url, len(file.get_content()), file.file.read(2).decode()]


@pytest.fixture(scope="module")
def file_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"bytes")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/file.bin"
    server.shutdown()


def test_a_file_sent_as_a_url_is_fetched_when_read(file_url: str) -> None:
    client = TestClient(build_app(Reader()))
    assert client.post("/size", json={"file": file_url}).json() == [file_url, 5, "by"]
    with File(b"abc").get_temp_file() as temp:
        assert temp.read() == b"abc"


def test_an_unreachable_file_url_is_a_400_naming_it() -> None:
    url = f"http://127.0.0.1:{_free_port()}/gone.png"
    answer = TestClient(build_app(Reader())).post("/size", json={"file": url})
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(
        f"cannot download the file content from {url}: [Errno 111] Connection refused; "
        "send the bytes (base64 or a data: URI) instead"
    )


OPERATED = """\
    from leptonai.photon import Photon

    class Operated(Photon):
        health_check_liveness_tcp_port = {live}

        @Photon.handler
        def add(self, x: int) -> int:
            return x + 1
"""


def test_operations_a_deployment_expects(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    live = _free_port()
    photon = _write(tmp_path, "operated.py", OPERATED.format(live=live))
    env = {"LEPTON_LOCAL_DEPLOYMENT_TOKEN": "s3cret", "LEPTON_ALLOW_ORIGINS": "https://a.example"}
    served = serve_photon(str(photon), env=env)
    auth = {"Authorization": "Bearer s3cret"}
    assert _get(served.url + "/queue-length")[0] == 401  # Lepton's token variable guards it
    assert _get(served.url + "/livez")[0] == 200  # probes need no token
    assert _get(served.url + "/queue-length", auth)[2] == b"0"
    request = urllib.request.Request(
        served.url + "/add",
        data=b'{"x": 1}',
        headers={**auth, "Origin": "https://a.example", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.read() == b"2"
        assert answer.headers["access-control-allow-origin"] == "https://a.example"
    status, headers, metrics = _get(served.url + "/metrics", auth)
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = metrics.decode().splitlines()
    assert 'http_requests_total{handler="/add",method="POST",status="2xx"} 1' in lines
    assert 'http_request_duration_seconds_count{handler="/add",method="POST"} 1' in lines
    assert "photon_queue_length 0" in lines
    _promtool_accepts(metrics)
    status, _, body = _get(f"http://127.0.0.1:{live}/anything")  # the liveness-only port
    assert (status, body) == (200, b'{"status":"ok"}')


def _promtool_accepts(metrics: bytes) -> None:
    """Prometheus' own linter (Debian's prometheus package) reads the exposition without a word."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=metrics, capture_output=True, check=False
    )
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")
