"""Property tests (Hypothesis) of the lock reader, as the archive reader has them.

For generated and mutated pylock texts, ``parse_lock`` either returns a lock
that is really valid (it writes back to text that reads as the same lock) or
raises ``LockError`` (a ``LockFileError`` for a malformed file) — never another
exception — and ``photonpack diff`` of such a file exits 0, 1 or 2 with at most
one error line. Bounded examples and deadlines keep it to a few seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photonpack.cli import cli
from photonpack.errors import LockError
from photonpack.lock.lockfile import parse_lock
from tests.support.archives import make_lock
from tests.support.wheels import build_wheel

FUZZ = settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=10)  # TOML is UTF-8
TOML_VALUES = st.recursive(
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def lock_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("lockfuzz")
    wheels = [build_wheel(root, "alpha", "1.0"), build_wheel(root, "beta", "2.0")]
    targets = ["cp311-manylinux_2_28_x86_64", "cp312-manylinux_2_28_aarch64"]
    return make_lock(wheels, targets, root / "pylock.svc.toml").to_text()


def _accepts_or_refuses(text: str) -> None:
    try:
        lock = parse_lock(text, path=Path("pylock.svc.toml"))
    except LockError:
        return
    again = parse_lock(lock.to_text(), path=Path("pylock.svc.toml"))
    assert again == lock


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a TOML document (tables and arrays included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: _replace(document[head], rest, new)}
    copy = list(document)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def test_the_genuine_lock_reads(lock_text: str) -> None:
    assert parse_lock(lock_text, path=Path("pylock.svc.toml")).to_text() == lock_text


@FUZZ
@given(data=st.data())
def test_a_lock_with_any_value_replaced_reads_or_is_refused(lock_text: str, data: Any) -> None:
    document = tomllib.loads(lock_text)
    path = data.draw(st.sampled_from(_paths(document)[1:]))
    mutated = _replace(document, path, data.draw(TOML_VALUES))
    if not isinstance(mutated, dict):
        return
    _accepts_or_refuses(tomli_w.dumps(mutated))


@FUZZ
@given(data=st.data())
def test_a_lock_with_bytes_changed_reads_or_is_refused(lock_text: str, data: Any) -> None:
    raw = bytearray(lock_text.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0x20, 0x7E))
    _accepts_or_refuses(raw.decode())


@FUZZ
@given(data=st.data())
def test_a_lock_with_lines_dropped_reads_or_is_refused(lock_text: str, data: Any) -> None:
    lines = lock_text.splitlines(keepends=True)
    drop = data.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1, max_size=3))
    _accepts_or_refuses("".join(line for at, line in enumerate(lines) if at not in drop))


@settings(max_examples=30, deadline=4000, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_diff_of_a_mutated_lock_exits_with_one_line(
    lock_text: str, tmp_path: Path, data: Any
) -> None:
    raw = bytearray(lock_text.encode())
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] = data.draw(st.integers(0x20, 0x7E))
    good, bad = tmp_path / "pylock.a.toml", tmp_path / "pylock.b.toml"
    good.write_text(lock_text)
    bad.write_bytes(bytes(raw))
    result = CliRunner().invoke(cli, ["diff", str(good), str(bad)])
    assert result.exit_code in (0, 1, 2), result.stderr
    assert len(result.stderr.splitlines()) <= 1, result.stderr
    assert "Traceback" not in result.stderr
