"""The Client against a real server of examples/showcase (started once for this module)."""

from __future__ import annotations

import inspect
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from photonpack import Client, File, local
from photonpack.errors import ClientError
from tests.support.serving import Served, start_server

SHOWCASE = Path(__file__).resolve().parent.parent / "examples" / "showcase"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start_server("showcase.py", tmp_path_factory.mktemp("showcase") / "log", cwd=SHOWCASE)
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[Client]:
    with Client(served.url, timeout=10) as c:
        yield c


def test_local_builds_the_localhost_url() -> None:
    assert local() == "http://localhost:8080"
    assert local(port=8081) == "http://localhost:8081"


def test_local_url_reaches_the_server(served: Served) -> None:
    assert Client(local(port=served.port)).greet() == "Hello, world!"


def test_paths_lists_the_handlers(client: Client) -> None:
    assert client.paths() == [
        "/count",
        "/divide",
        "/forget",
        "/greet",
        "/items/{item_id}",
        "/math/square",
        "/midpoint",
        "/pixel",
        "/size",
        "/word-count",
    ]


def test_healthz_says_whether_the_photon_is_healthy(client: Client) -> None:
    assert client.healthz() is True


def test_get_handlers_send_query_and_path_parameters(client: Client) -> None:
    assert client.greet(name="Ada") == "Hello, Ada!"
    assert client.greet() == "Hello, world!"
    assert client.items(item_id=7, detail=True) == {"id": 7, "detail": True}


def test_nested_paths_are_attributes_and_dashes_underscores(client: Client) -> None:
    assert client.math.square(n=3) == 9.0
    assert client.word_count(text="one two three") == 3


def test_models_and_files_travel_as_json(client: Client) -> None:
    assert client.midpoint(a={"x": 0, "y": 0}, b={"x": 2, "y": 4}) == {"x": 1.0, "y": 2.0}
    assert client.size(file=b"12345") == 5
    assert client.size(file=io.BytesIO(b"123")) == 3
    assert client.size(file=File(b"12")) == 2


def test_non_json_responses_are_bytes(client: Client) -> None:
    png = client.pixel()
    assert (png[:8], len(png)) == (b"\x89PNG\r\n\x1a\n", 67)


def test_stream_true_iterates_chunks(client: Client) -> None:
    with client.count(n=3, stream=True) as chunks:
        assert b"".join(chunks) == b"0\n1\n2\n"


def test_none_is_returned_for_204(client: Client) -> None:
    assert client.forget() is None


def test_http_error_carries_the_server_error_detail(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        client.divide(a=1, b=0)
    assert (info.value.status, info.value.detail) == (400, "b must not be zero")
    assert str(info.value) == "POST /divide answered 400: b must not be zero"


def test_positional_arguments_show_the_keyword_form(client: Client) -> None:
    with pytest.raises(ClientError) as info:
        client.divide(1, 2)
    assert str(info.value) == (
        "divide() takes keyword arguments only, got 2 positional; call it as divide(a=..., b=...)"
    )


def test_method_doc_and_signature_show_parameters(client: Client) -> None:
    assert client.divide.__doc__ == (
        "POST /divide(*, a: number, b: number)\n\n"
        "HTTPException keeps its status: dividing by zero answers 400."
    )
    assert str(inspect.signature(client.greet)) == "(*, name=None)"


def test_keep_alive_connection_survives_many_calls(client: Client) -> None:
    assert [client.math.square(n=i) for i in range(50)] == [float(i * i) for i in range(50)]


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(ClientError) as info:
        Client("http://127.0.0.1:9", timeout=5)
    assert str(info.value) == (
        "cannot reach the photon at http://127.0.0.1:9 (ConnectionRefusedError: "
        "[Errno 111] Connection refused); is it running? (photonpack run -m file.py)"
    )


def test_invalid_url_is_a_clear_error() -> None:
    with pytest.raises(ClientError, match=r"invalid photon URL 'localhost:8080'"):
        Client("localhost:8080")
