"""Shared fixtures. Each area keeps its fixtures in tests/support/<area>.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins: list[str] = [
    "tests.support.archives",
    "tests.support.images",
    "tests.support.index",
    "tests.support.modules",
    "tests.support.registry",
    "tests.support.serving",
    "tests.support.stack",
]


@pytest.fixture(autouse=True)
def photonpack_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Every test gets its own empty store: nothing leaks between tests or into ~."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PHOTONPACK_HOME", str(home))
    monkeypatch.delenv("PHOTONPACK_TOKEN", raising=False)
    yield home
    # The store's shared lock, which a Store used in this process takes (store/locks.py).
    from photonpack.store import locks

    locks.release()
