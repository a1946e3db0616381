"""Every photon in examples/ loads and describes; each is also served by a test.

counter and lepton_counter: tests/test_serve.py (the seed acceptance, 3 8 6);
lepton_full: tests/test_lepton_full.py (issue 14's acceptance, source and archive);
showcase: tests/test_client.py (every client feature against it);
numpy_stats: tests/test_examples_network.py (numpy from the public index, then offline).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from photonpack.serving.app import describe
from photonpack.serving.loader import load_photon
from photonpack.serving.source import parse_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SERVED_BY = {
    "counter/counter.py": "tests/test_serve.py",
    "lepton_counter/counter.py": "tests/test_serve.py",
    "showcase/showcase.py": "tests/test_client.py",
    "numpy_stats/stats.py": "tests/test_examples_network.py",
    "lepton_full/full.py": "tests/test_lepton_full.py",
}
# Their requirements are not in the test venv: they are loaded in their own environment.
NEEDS_OWN_ENVIRONMENT = {"numpy_stats/stats.py"}


@pytest.fixture(autouse=True)
def fresh_modules() -> Iterator[None]:
    """The two counter.py files share a module name: each test imports its own."""
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        if name in ("counter", "showcase"):
            del sys.modules[name]
    sys.path[:] = path


def test_every_example_is_served_by_a_test() -> None:
    found = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.glob("*/*.py"))
    assert found == sorted(SERVED_BY)


@pytest.mark.parametrize("example", sorted(set(SERVED_BY) - NEEDS_OWN_ENVIRONMENT))
def test_example_loads_and_describes(example: str) -> None:
    cls = load_photon(parse_spec(str(EXAMPLES / example)))
    contract = describe(cls)
    assert contract["handlers"]
    assert contract["openapi"] is not None


@pytest.mark.parametrize("example", ["counter/counter.py", "lepton_counter/counter.py"])
def test_counter_examples_give_3_8_6_in_process(example: str) -> None:
    counter = load_photon(parse_spec(str(EXAMPLES / example)))()
    assert [counter.add(x=3), counter.add(x=5), counter.sub(x=2)] == [3, 8, 6]  # type: ignore[attr-defined]
