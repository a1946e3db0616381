"""The served app through TestClient: requests, responses, errors, limits, auth, describe()."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Response, UploadFile
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from pydantic import BaseModel

from photonpack import (
    HTTPException,
    JPEGResponse,
    Photon,
    PNGResponse,
    StreamingResponse,
    WAVResponse,
)
from photonpack.serving.app import build_app, describe


class Pair(BaseModel):
    a: int
    b: int


class Kitchen(Photon):
    """A photon with one handler per behaviour."""

    def init(self) -> None:
        self.ready = True

    @Photon.handler
    def add(self, x: int, y: int = 1) -> int:
        """Add two numbers."""
        return x + y

    @Photon.handler
    def nothing_required(self, word: str = "hi") -> str:
        return word

    @Photon.handler
    def no_args(self) -> bool:
        return self.ready

    @Photon.handler
    def pair(self, a: int, b: int) -> tuple[int, int]:
        return (a, b)

    @Photon.handler("model")
    def as_model(self, a: int) -> Pair:
        return Pair(a=a, b=a * 2)

    @Photon.handler
    def nothing(self) -> None:
        return None

    @Photon.handler
    def text(self) -> PlainTextResponse:
        return PlainTextResponse("plain")

    @Photon.handler
    def stream(self) -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b"]), media_type="text/plain")

    @Photon.handler
    def teapot(self) -> int:
        raise HTTPException(418, "I am a teapot")

    @Photon.handler
    def boom(self) -> int:
        raise ValueError("boom")

    @Photon.handler("q", method="GET")
    def query(self, name: str, times: int = 1) -> str:
        return name * times

    @Photon.handler("users/{user_id}/score", method="GET")
    def score(self, user_id: int, bonus: int = 0) -> int:
        return user_id * 10 + bonus

    @Photon.handler(example={"x": 7})
    def example(self, x: int) -> int:
        return x

    @Photon.handler(use_raw_args=True)
    async def upload(self, file: UploadFile) -> dict[str, object]:
        return {"name": file.filename, "size": len(await file.read())}

    @Photon.handler
    def images(self, kind: str) -> Response:
        cls: type[Response] = {"png": PNGResponse, "jpeg": JPEGResponse, "wav": WAVResponse}[kind]
        return cls(b"\x00\x01")


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_app(Kitchen()), raise_server_exceptions=False) as c:
        yield c


def test_post_body_is_one_json_object_keyed_by_parameter(client: TestClient) -> None:
    r = client.post("/add", json={"x": 3})
    assert (r.status_code, r.json()) == (200, 4)
    assert client.post("/add", json={"x": 3, "y": 5}).json() == 8


def test_missing_and_wrong_fields_give_422_naming_the_field(client: TestClient) -> None:
    r = client.post("/add", json={"x": "three", "z": 1})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == (
        "invalid request: x: Input should be a valid integer, unable to parse string as an "
        "integer; z: Extra inputs are not permitted"
    )
    assert [e["loc"] for e in body["detail"]] == [["body", "x"], ["body", "z"]]
    missing = client.post("/add", json={})
    assert (missing.status_code, missing.json()["error"]) == (
        422,
        "invalid request: x: Field required",
    )


def test_handler_without_parameters_accepts_an_empty_body(client: TestClient) -> None:
    assert client.post("/no_args").json() is True
    assert client.post("/no_args", json={}).json() is True
    assert client.post("/nothing_required").json() == "hi"
    assert client.post("/nothing_required", json={"word": "yo"}).json() == "yo"


def test_return_values_become_json(client: TestClient) -> None:
    assert client.post("/pair", json={"a": 1, "b": 2}).json() == [1, 2]
    assert client.post("/model", json={"a": 2}).json() == {"a": 2, "b": 4}


def test_none_gives_204(client: TestClient) -> None:
    r = client.post("/nothing")
    assert (r.status_code, r.content) == (204, b"")


def test_responses_pass_through(client: TestClient) -> None:
    r = client.post("/text")
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        200,
        "plain",
        "text/plain; charset=utf-8",
    )
    assert client.post("/stream").content == b"ab"
    for kind, media in [("png", "image/png"), ("jpeg", "image/jpeg"), ("wav", "audio/wav")]:
        r = client.post("/images", json={"kind": kind})
        assert (r.headers["content-type"], r.content) == (media, b"\x00\x01")


def test_http_exception_keeps_status_with_error_body(client: TestClient) -> None:
    r = client.post("/teapot")
    assert (r.status_code, r.json()) == (418, {"error": "I am a teapot"})


def test_other_exceptions_give_500_without_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="photonpack"):
        r = client.post("/boom")
    assert (r.status_code, r.json()) == (500, {"error": "ValueError: boom"})
    assert "Traceback" not in r.text
    assert caplog.records[-1].getMessage() == "handler boom failed"
    assert caplog.records[-1].exc_info is not None


def test_get_handlers_take_query_and_path_parameters(client: TestClient) -> None:
    assert client.get("/q", params={"name": "ab", "times": 3}).json() == "ababab"
    assert client.get("/users/4/score", params={"bonus": 2}).json() == 42
    r = client.get("/q")
    assert r.status_code == 422
    assert r.json()["error"] == "invalid request: query.name: Field required"
    assert client.post("/q").status_code == 405


def test_example_lands_in_the_openapi_request(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/example"]["post"]
    examples = op["requestBody"]["content"]["application/json"]["examples"]
    assert examples == {"example": {"value": {"x": 7}}}


def test_use_raw_args_accepts_multipart_uploads(client: TestClient) -> None:
    r = client.post("/upload", files={"file": ("a.bin", b"12345")})
    assert r.json() == {"name": "a.bin", "size": 5}


def test_openapi_has_name_docstrings_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "kitchen"
    assert spec["info"]["description"] == "A photon with one handler per behaviour."
    assert spec["paths"]["/add"]["post"]["description"] == "Add two numbers."
    assert spec["paths"]["/add"]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ] == {"type": "integer", "title": "Response Add Add Post"}
    assert client.get("/docs").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}


def test_unknown_path_is_404_with_error_body(client: TestClient) -> None:
    r = client.post("/nope")
    assert (r.status_code, r.json()) == (404, {"error": "Not Found"})


def test_user_healthz_handler_overrides_the_builtin() -> None:
    class Custom(Photon):
        @Photon.handler(method="GET")
        def healthz(self) -> dict[str, str]:
            return {"status": "custom"}

    assert TestClient(build_app(Custom())).get("/healthz").json() == {"status": "custom"}


def test_init_runs_before_the_app_is_built() -> None:
    events: list[str] = []

    class Eager(Photon):
        def init(self) -> None:
            events.append("init")

        @Photon.handler
        def ping(self) -> str:
            return "pong"

    build_app(Eager())
    assert events == ["init"]


def test_token_is_required_everywhere_but_healthz() -> None:
    client = TestClient(build_app(Kitchen(), token="s3cret"))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        r = client.post("/add", json={"x": 1}, headers=headers)
        assert (r.status_code, r.headers["www-authenticate"]) == (401, "Bearer")
        assert r.json() == {
            "error": "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
        }
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/healthz").status_code == 200
    ok = client.post("/add", json={"x": 1}, headers={"Authorization": "Bearer s3cret"})
    assert ok.json() == 2


def test_body_over_the_limit_is_413_by_length_and_by_stream() -> None:
    client = TestClient(build_app(Kitchen(), max_body_bytes=16))
    big = json.dumps({"word": "x" * 40}).encode()
    r = client.post("/nothing_required", content=big, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (
        413,
        {"error": "request body is larger than the limit of 16 bytes"},
    )
    chunks = iter([big[:10], big[10:]])  # no Content-Length: chunked transfer
    r = client.post(
        "/nothing_required", content=chunks, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    small = client.post("/nothing_required", json={"word": "ok"})
    assert small.json() == "ok"


def test_default_body_limit_is_64_mib() -> None:
    client = TestClient(build_app(Kitchen()))
    r = client.post("/no_args", headers={"content-length": str(64 * 1024 * 1024 + 1)}, content=b"")
    assert r.status_code == 413


def test_mounts_serve_apps_static_files_and_photons(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("static hi")
    inner = FastAPI()

    @inner.get("/ping")
    def ping() -> str:
        return "inner pong"

    class Sub(Photon):
        @Photon.handler
        def hi(self) -> str:
            return "sub hi"

    class Host(Photon):
        @Photon.handler(mount=True)
        def api(self) -> FastAPI:
            return inner

        @Photon.handler("files", mount=True)
        def files(self) -> StaticFiles:
            return StaticFiles(directory=tmp_path)

        @Photon.handler("sub/photon", mount=True)
        def sub(self) -> Photon:
            return Sub()

    client = TestClient(build_app(Host()))
    assert client.get("/api/ping").json() == "inner pong"
    assert client.get("/files/hello.txt").text == "static hi"
    assert client.post("/sub/photon/hi").json() == "sub hi"


class Timed(Photon):
    handler_timeout = 0.2

    @Photon.handler
    async def slow(self) -> str:
        await asyncio.sleep(30)
        return "late"

    @Photon.handler
    def slow_sync(self) -> str:
        time.sleep(1)
        return "late"

    @Photon.handler
    def fast(self) -> str:
        return "on time"


def test_handler_timeout_gives_504() -> None:
    client = TestClient(build_app(Timed()))
    for path in ("/slow", "/slow_sync"):
        r = client.post(path)
        name = path.lstrip("/")
        assert (r.status_code, r.json()) == (
            504,
            {"error": f"{name} did not finish within 0.2 s (handler_timeout)"},
        )
    assert client.post("/fast").json() == "on time"


def _max_concurrency(photon: Photon, path: str, requests: int) -> int:
    async def drive() -> None:
        transport = httpx.ASGITransport(app=build_app(photon))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            responses = await asyncio.gather(*(c.post(path) for _ in range(requests)))
        assert [r.status_code for r in responses] == [204] * requests

    asyncio.run(drive())
    return photon.peak  # type: ignore[attr-defined, no-any-return]


def _gauge_photon(limit: int) -> Photon:
    class Gauge(Photon):
        handler_max_concurrency = limit

        def init(self) -> None:
            self.lock = threading.Lock()
            self.active = self.peak = 0

        def enter(self) -> None:
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)

        def leave(self) -> None:
            with self.lock:
                self.active -= 1

        @Photon.handler
        def sync(self) -> None:
            self.enter()
            time.sleep(0.05)
            self.leave()

        @Photon.handler("async")
        async def async_(self) -> None:
            self.enter()
            await asyncio.sleep(0.05)
            self.leave()

    return Gauge()


@pytest.mark.parametrize("path", ["/sync", "/async"])
def test_handler_max_concurrency_caps_calls(path: str) -> None:
    assert _max_concurrency(_gauge_photon(1), path, 4) == 1
    assert _max_concurrency(_gauge_photon(3), path, 6) == 3


def test_describe_captures_the_contract_without_running_init() -> None:
    class Counter(Photon):
        """Counts."""

        requirement_dependency = ["numpy"]
        handler_timeout = 5

        def init(self) -> None:
            raise AssertionError("describe must not run init()")

        @Photon.handler
        def add(self, x: int, step: int = 1) -> int:
            """Add x."""
            return x

        @Photon.handler("get/it", method="GET")
        def get(self) -> None: ...

    contract = describe(Counter)
    assert contract["name"] == "counter"
    assert contract["description"] == "Counts."
    assert contract["photon"] == {
        "requirement_dependency": ["numpy"],
        "system_dependency": [],
        "image": None,
        "handler_max_concurrency": 1,
        "handler_timeout": 5,
        "description": "Counts.",
    }
    assert contract["handlers"] == [
        {
            "name": "add",
            "path": "/add",
            "method": "POST",
            "mount": False,
            "description": "Add x.",
            "parameters": [
                {"name": "x", "required": True, "schema": {"type": "integer"}},
                {"name": "step", "required": False, "schema": {"type": "integer"}},
            ],
            "returns": {"type": "integer"},
        },
        {
            "name": "get",
            "path": "/get/it",
            "method": "GET",
            "mount": False,
            "description": None,
            "parameters": [],
            "returns": {"type": "null"},
        },
    ]
    assert sorted(contract["openapi"]["paths"]) == ["/add", "/get/it"]
    assert json.dumps(describe(Counter), sort_keys=True) == json.dumps(contract, sort_keys=True)


def test_an_undecorated_override_keeps_the_route_and_serves_the_subclass() -> None:
    class Base(Photon):
        @Photon.handler("greet")
        def greet(self, name: str) -> str:
            return f"hello {name}"

    class Polite(Base):
        def greet(self, name: str) -> str:  # no decorator: still the /greet handler
            return f"good morning {name}"

    client = TestClient(build_app(Polite()))
    assert client.post("/greet", json={"name": "ada"}).json() == "good morning ada"
    assert TestClient(build_app(Base())).post("/greet", json={"name": "ada"}).json() == (
        "hello ada"
    )


def test_a_long_input_is_echoed_cut_in_the_422(client: TestClient) -> None:
    long = "7" * (10 * 1024 * 1024)
    r = client.post("/add", json={"x": long + "x"})
    assert r.status_code == 422
    assert len(r.content) < 2000
    assert r.json()["detail"][0]["input"] == "7" * 1000 + "... (cut: 10485761 characters)"
    missing = client.post("/add", json={"y": long}).json()["detail"][0]  # the whole body echoed
    assert missing["input"] == '{"y": "' + "7" * 993 + "... (cut: 10485769 characters)"
    short = client.post("/add", json={"x": "three"}).json()["detail"][0]
    assert short["input"] == "three"


class Unencodable(Photon):
    @Photon.handler
    def thing(self) -> object:
        return object()

    @Photon.handler
    def not_a_number(self) -> float:
        return float("nan")

    @Photon.handler(mount=True)
    def broken(self) -> Callable[..., Awaitable[None]]:
        async def app(scope: object, receive: object, send: object) -> None:
            raise RuntimeError("broken inside")

        return app


def test_a_return_value_that_is_not_json_gives_the_json_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = TestClient(build_app(Unencodable()), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="photonpack"):
        r = client.post("/thing")
    assert (r.status_code, r.json()) == (
        500,
        {
            "error": "thing returned 'object', which cannot be encoded as JSON; "
            "return JSON data, a pydantic model or a Response"
        },
    )
    assert caplog.records[-1].getMessage() == "handler thing returned a value that is not JSON"
    nan = client.post("/not_a_number")
    assert (nan.status_code, nan.json()["error"]) == (
        500,
        "not_a_number returned 'float', which cannot be encoded as JSON; "
        "return JSON data, a pydantic model or a Response",
    )


def test_an_error_outside_any_handler_gives_a_json_500() -> None:
    client = TestClient(build_app(Unencodable()), raise_server_exceptions=False)
    r = client.get("/broken/anything")
    assert (r.status_code, r.json()) == (500, {"error": "internal error: RuntimeError"})


class Hanging(Photon):
    handler_timeout = 0.2

    def init(self) -> None:
        self.release = threading.Event()

    @Photon.handler
    def hang(self) -> str:
        self.release.wait()
        return "released"


def test_timed_out_sync_calls_keep_their_slot_until_their_thread_returns() -> None:
    photon = Hanging()
    app = build_app(photon)

    async def drive() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = await asyncio.gather(*(c.post("/hang") for _ in range(10)))
            threads = {t.name for t in threading.enumerate() if t.name.startswith("photon-hang-")}
            assert threads == {"photon-hang-1"}  # one thread: the other nine waited for its slot
            photon.release.set()
            await asyncio.sleep(0.1)
            second = await c.post("/hang")  # the slot is free again
        return [r.status_code for r in first] + [second.status_code]

    assert asyncio.run(drive()) == [504] * 10 + [200]
