"""The Photon SDK in-process: init, handlers, declarations, inheritance, File."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable

import pytest

from photonpack import File, Photon, handler
from photonpack.errors import PhotonDefinitionError
from photonpack.serving.photon import PhotonDefinitionWarning, handler_specs


class Counter(Photon):
    def init(self) -> None:
        self.counter = 0

    @Photon.handler
    def add(self, x: int) -> int:
        self.counter += x
        return self.counter

    @Photon.handler("sub")
    def sub(self, x: int) -> int:
        return self.add(-x)


def test_seed_counter_gives_3_8_6_in_process() -> None:
    c = Counter()
    assert [c.add(x=3), c.add(x=5), c.sub(x=2)] == [3, 8, 6]


def test_init_runs_once_across_threads() -> None:
    calls: list[int] = []

    class Slow(Photon):
        def init(self) -> None:
            calls.append(1)
            time.sleep(0.05)  # widen the race window: every thread arrives during init

        @Photon.handler
        def ping(self) -> str:
            return "pong"

    photon = Slow()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(photon.ping())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
    assert results == ["pong"] * 8


def test_handler_called_from_init_does_not_deadlock() -> None:
    class Warm(Photon):
        def init(self) -> None:
            self.total = 0
            self.warmed = self.bump(by=10)

        @Photon.handler
        def bump(self, by: int) -> int:
            self.total += by
            return self.total

    photon = Warm()
    assert photon.bump(by=1) == 11
    assert photon.warmed == 10


def test_failed_init_is_retried_on_the_next_call() -> None:
    attempts: list[int] = []

    class Flaky(Photon):
        def init(self) -> None:
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("model not ready")

        @Photon.handler
        def ping(self) -> str:
            return "pong"

    photon = Flaky()
    with pytest.raises(RuntimeError, match="model not ready"):
        photon.ping()
    assert photon.ping() == "pong"
    assert attempts == [1, 1]


def test_init_without_super_init_gets_a_clear_error() -> None:
    class Bad(Photon):
        def __init__(self) -> None:
            self.model = "x"

        @Photon.handler
        def ping(self) -> str:
            return "pong"

    with pytest.raises(PhotonDefinitionError) as info:
        Bad().ping()
    assert str(info.value) == (
        "Bad.__init__ does not call super().__init__(); move the set-up into init(), "
        "which photonpack runs once before the first call"
    )


def test_handler_forms_give_paths_and_methods() -> None:
    class Forms(Photon):
        @Photon.handler
        def bare(self) -> None: ...

        @Photon.handler("named")
        def a(self) -> None: ...

        @handler(path="a/b", method="get")
        def nested(self) -> None: ...

        @Photon.handler("")
        def root(self) -> None: ...

        @Photon.handler(path="/slashes/", example={"x": 1}, use_raw_args=True)
        def slashes(self) -> None: ...

    specs = {s.name: s for s in handler_specs(Forms)}
    assert {n: (s.path, s.method) for n, s in specs.items()} == {
        "bare": ("/bare", "POST"),
        "a": ("/named", "POST"),
        "nested": ("/a/b", "GET"),
        "root": ("/", "POST"),
        "slashes": ("/slashes", "POST"),
    }
    assert specs["slashes"].example == {"x": 1}
    assert specs["slashes"].use_raw_args is True
    assert [s.path for s in handler_specs(Forms)] == ["/", "/a/b", "/bare", "/named", "/slashes"]


def test_handler_rejects_unknown_method() -> None:
    with pytest.raises(PhotonDefinitionError, match=r"method must be one of POST, GET, got 'PUT'"):

        class Bad(Photon):
            @Photon.handler(method="PUT")
            def x(self) -> None: ...


def test_async_handler_is_awaitable_in_process() -> None:
    import asyncio

    class Async(Photon):
        def init(self) -> None:
            self.base = 40

        @Photon.handler
        async def answer(self, plus: int) -> int:
            return self.base + plus

    assert asyncio.run(Async().answer(plus=2)) == 42


def test_dependencies_are_inherited_and_merged_in_order() -> None:
    class Base(Photon):
        requirement_dependency = ["numpy", "torch"]
        system_dependency = ["ffmpeg"]

        @Photon.handler
        def run(self) -> str:
            return "base"

        @Photon.handler
        def shared(self) -> str:
            return "base"

    class Child(Base):
        requirement_dependency = ["torch", "pillow"]

        @Photon.handler("shared")
        def mine(self) -> str:
            return "child"

    assert Child.requirement_dependency == ["numpy", "torch", "pillow"]
    assert Child.system_dependency == ["ffmpeg"]
    assert Base.requirement_dependency == ["numpy", "torch"]
    assert [(s.path, s.name) for s in handler_specs(Child)] == [
        ("/run", "run"),
        ("/shared", "mine"),
    ]


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        (
            "requirement_dependency",
            "numpy",
            "Bad.requirement_dependency must be a list of strings, got 'numpy'; "
            'write requirement_dependency = ["numpy"]',
        ),
        (
            "system_dependency",
            ["ffmpeg", 3],
            "Bad.system_dependency must hold non-empty strings, found 3",
        ),
        (
            "extra_files",
            {"a": 1},
            "Bad.extra_files must be a dict {'path/in/photon': 'local/path'} "
            "or a list of relative paths, got {'a': 1}",
        ),
        ("image", 3, "Bad.image must be an image name such as 'python:3.11-slim', got 3"),
        (
            "handler_max_concurrency",
            0,
            "Bad.handler_max_concurrency must be a positive integer, got 0",
        ),
        (
            "handler_timeout",
            "1s",
            "Bad.handler_timeout must be a positive number of seconds or None, got '1s'",
        ),
    ],
)
def test_declared_attributes_are_validated(attribute: str, value: object, message: str) -> None:
    with pytest.raises(PhotonDefinitionError) as info:
        type("Bad", (Photon,), {attribute: value})
    assert str(info.value) == message


def test_misspelled_attribute_warns_naming_the_right_one_and_the_photon_loads() -> None:
    with pytest.warns(PhotonDefinitionWarning) as record:

        class Bad(Photon):
            system_dependencies = ["ffmpeg"]

    assert [str(w.message) for w in record] == [
        "Bad.system_dependencies is not a photon attribute; did you mean system_dependency? "
        "photonpack ignores it, as Lepton did; rename it to declare it"
    ]
    assert (record[0].filename, list(Bad.system_dependency)) == (__file__, [])


def test_valid_declarations_are_accepted() -> None:
    class Good(Photon):
        requirement_dependency = ("numpy",)
        extra_files = ["data/", "model.bin"]
        image = "python:3.11-slim"
        handler_max_concurrency = 4
        handler_timeout = 2.5
        deployment_template = {"resource_shape": "cpu.small"}  # a Lepton attribute: accepted

    assert list(Good.requirement_dependency) == ["numpy"]
    assert Good().name == "good"


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"hello",
        lambda: io.BytesIO(b"hello"),
        lambda: "data:text/plain;base64,aGVsbG8=",
        lambda: "aGVsbG8=",
        lambda: {"content": "aGVsbG8="},
    ],
    ids=["bytes", "file-object", "data-uri", "base64", "dict"],
)
def test_file_accepts_bytes_file_objects_and_data_uris(make: Callable[[], object]) -> None:
    f = File.model_validate(make())
    assert f.get_content() == b"hello"
    assert f.get_bytesio().read() == b"hello"
    assert File(make()).get_content() == b"hello"
    assert repr(f) == "File(5 bytes)"


def test_methods_named_like_attributes_are_not_misspellings() -> None:
    class Fine(Photon):
        @Photon.handler
        def images(self) -> int:
            return 1

        @property
        def imagery(self) -> int:
            return 2

    assert Fine().images() == 1
