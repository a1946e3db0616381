"""Photon source files written by tests, and the module hygiene that loading them needs."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["clean_modules", "write"]


@pytest.fixture
def clean_modules() -> Iterator[None]:
    """Photon modules loaded by a test do not leak into the next one."""
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        if not name.startswith(("photonpack", "pydantic", "fastapi", "starlette", "anyio")):
            del sys.modules[name]
    sys.path[:] = path


def write(directory: Path, name: str, text: str) -> Path:
    """Write ``text`` (dedented) to ``directory/name``, creating parents."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path
