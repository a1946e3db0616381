"""Client code written for Lepton's ``leptonai.client`` runs unchanged, against real servers.

The photon below is written for Lepton's SDK and served by ``photonpack run -m``;
a plain FastAPI app under uvicorn serves a path with both POST and GET.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from photonpack.serving.client import (
    Client,
    ClientArgumentError,
    ClientConnectionError,
    ClientHTTPError,
    ClientTimeoutError,
    ClientURLError,
    ClientWorkspaceError,
    current,
    local,
)
from photonpack.serving.lepton import install_leptonai_shim
from tests.support.serving import Served, start_server

PHOTON = '''
import threading
import time

from leptonai.photon import HTTPException, Photon, StreamingResponse


class Lepton(Photon):
    handler_max_concurrency = 5

    def init(self):
        self.meeting = threading.Barrier(5, timeout=10)

    @Photon.handler("run/with/slashes")
    def slashes(self) -> str:
        return "slashes"

    @Photon.handler("run/with-dashes")
    def dashes(self) -> str:
        return "dashes"

    @Photon.handler("")
    def home(self) -> str:
        return "home"

    @Photon.handler
    def meet(self) -> int:
        """Returns only when five calls are in it at once."""
        return self.meeting.wait()

    @Photon.handler
    def sleep(self, seconds: float) -> str:
        time.sleep(seconds)
        return "ok"

    @Photon.handler
    def generate(self, prompt: str, stream: bool = False):
        if stream:
            return StreamingResponse(iter([c.encode() for c in prompt]), media_type="text/plain")
        return prompt

    @Photon.handler
    def busy(self) -> None:
        raise HTTPException(status_code=429, detail="Too many requests")
'''

BOTH = """
from fastapi import FastAPI

app = FastAPI()


@app.post("/run")
def run_post() -> str:
    return "post"


@app.get("/run")
def run_get() -> str:
    return "get"
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("lepton")
    (directory / "lepton_photon.py").write_text(PHOTON)
    server = start_server("lepton_photon.py", directory / "log", cwd=directory)
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[Client]:
    with Client(served.url) as c:
        yield c


@pytest.fixture(scope="module")
def both_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("both")
    (directory / "both.py").write_text(BOTH)
    log = directory / "log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "both:app", "--host", "127.0.0.1", "--port", "0"],
            cwd=directory,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"running on (http://\S+)", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(15)


def test_keyword_segments_get_an_underscore_and_dashes_become_underscores(client: Client) -> None:
    assert client.run.with_.slashes() == "slashes"
    assert client.run.with_dashes() == "dashes"


def test_the_root_handler_is_the_client_itself(client: Client) -> None:
    assert client() == client.root() == "home"


def test_a_path_with_post_and_get_calls_post_unless_told(both_url: str) -> None:
    c = Client(both_url)
    assert (c.run(), c.run.post(), c.run.get()) == ("post", "post", "get")
    assert c.paths() == ["/run"]


def test_one_client_runs_calls_from_several_threads_at_once(client: Client) -> None:
    # Each call returns only once all five are inside the handler: a serialising client fails.
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(client.meet())) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 1, 2, 3, 4]


def test_there_is_no_timeout_by_default_as_in_lepton() -> None:
    assert inspect.signature(Client).parameters["timeout"].default is None


def test_a_timeout_is_a_timeout_error_and_httpx_read_timeout(served: Served) -> None:
    with pytest.raises(ClientTimeoutError) as info:
        Client(served.url, timeout=0.2).sleep(seconds=1)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, httpx.ReadTimeout)
    assert str(info.value) == (
        f"POST /sleep got no answer from {served.url} within 0.2 s; pass a larger timeout to "
        "Client(), or timeout=None to wait as long as the photon takes"
    )


def test_stream_in_the_constructor_streams_chunked_answers_and_decodes_json(
    served: Served,
) -> None:
    c = Client(served.url, stream=True, chunk_size=1)
    chunks = c.generate(prompt="abc", stream=True)
    assert list(chunks) == [b"a", b"b", b"c"]
    assert c.sleep(seconds=0) == "ok"


def test_a_handler_parameter_named_stream_goes_to_the_handler(client: Client) -> None:
    assert client.generate(prompt="abc", stream=True) == b"abc"
    assert client.generate(prompt="abc") == "abc"


def test_an_http_error_is_also_httpx_status_error_with_the_response(client: Client) -> None:
    with pytest.raises(httpx.HTTPStatusError) as info:
        client.busy()
    error = info.value
    assert isinstance(error, ClientHTTPError)
    assert (error.response.status_code, error.response.json()) == (
        429,
        {"error": "Too many requests"},
    )
    assert (error.request.method, str(error.request.url)) == ("POST", f"{client.url}/busy")
    assert str(error) == "POST /busy answered 429: Too many requests"


def test_without_httpx_imported_the_errors_do_not_import_it(served: Served) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from photonpack.serving.client import Client, ClientHTTPError
        try:
            Client({served.url!r}).busy()
        except ClientHTTPError as exc:
            print(type(exc).__mro__[1].__name__, exc.status, "httpx" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "ClientError 429 False"


def test_positional_arguments_are_a_runtime_error_as_in_lepton(client: Client) -> None:
    with pytest.raises(RuntimeError) as info:
        client.sleep(1)
    assert isinstance(info.value, ClientArgumentError | TypeError)
    assert str(info.value) == (
        "sleep() takes keyword arguments only, got 1 positional; call it as sleep(seconds=...)"
    )


def test_an_unreachable_photon_is_a_connection_error() -> None:
    with pytest.raises(ConnectionError) as info:
        Client("http://127.0.0.1:9")
    assert isinstance(info.value, ClientConnectionError | httpx.ConnectError)


def test_a_workspace_name_is_a_value_error_naming_the_url_form() -> None:
    with pytest.raises(ValueError) as info:
        Client("my-workspace")
    assert isinstance(info.value, ClientURLError)
    assert str(info.value) == (
        "invalid photon URL 'my-workspace' (a Lepton workspace?): "
        "expected http://host:port, e.g. http://localhost:8080"
    )


def test_a_workspace_and_an_unknown_deployment_is_a_value_error_naming_deploy(
    photonpack_home: Path,
) -> None:
    with pytest.raises(ValueError) as info:
        Client("my-workspace", "my-deployment")
    assert isinstance(info.value, ClientURLError)
    assert str(info.value) == (
        "no deployment named 'my-deployment' on this machine (no "
        f"{photonpack_home}/deployments/my-deployment.json); deploy it with 'photonpack deploy "
        "--name my-deployment ...', or pass the photon's URL: Client('http://host:port')"
    )


def test_current_workspace_is_a_runtime_error() -> None:
    with pytest.raises(RuntimeError) as info:
        Client.current()
    assert isinstance(info.value, ClientWorkspaceError)
    assert str(info.value) == (
        "photonpack has no Lepton workspaces, so there is no current one; pass the photon's "
        "URL instead: Client(local()) for this machine (http://localhost:8080), or "
        "Client('http://host:8080')"
    )
    assert Client.current is current


def test_client_local_openapi_and_healthz_are_lepton_s(client: Client, both_url: str) -> None:
    assert Client.local(port=9000) == local(port=9000) == "http://localhost:9000"
    assert client.openapi["info"]["title"] == "lepton"
    assert "/meet" in client.openapi["paths"]
    assert (client.healthz(), Client(both_url).healthz()) == (True, False)


def test_leptonai_client_is_this_client() -> None:
    install_leptonai_shim()
    import leptonai.client

    assert (leptonai.client.Client, leptonai.client.local) == (Client, local)


def test_the_example_client_snippet_runs_unchanged(served: Served, tmp_path: Path) -> None:
    port = served.port
    script = tmp_path / "snippet.py"
    script.write_text(
        "from photonpack.serving.lepton import install_leptonai_shim\n"
        "install_leptonai_shim()\n"
        "from leptonai.client import Client, local\n"
        f"c = Client(local(port={port}))\n"
        "print(c.run.with_.slashes(), c.generate(prompt='hi'), c.healthz())\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert done.stdout == "slashes hi True\n"
