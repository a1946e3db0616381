"""Validation of decoded JSON, naming the exact location of what is wrong.

Each helper takes a value and ``where`` it sits (``wheels[3].sha256``) and
returns the value with its type narrowed, or raises :class:`Invalid`. The
manifest and its entries build on them; ``Manifest`` turns an ``Invalid`` into
an ArchiveError at its boundary, so the helpers know nothing about archives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = [
    "Invalid",
    "array",
    "boolean",
    "integer",
    "json_object",
    "kind",
    "obj",
    "optional_string",
    "relative_path",
    "sorted_unique",
    "string",
    "unique",
]

T = TypeVar("T")


class Invalid(Exception):
    """A validation failure at ``where``; becomes an ArchiveError at the boundary."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def kind(value: object) -> str:
    """How a JSON value is named in a message: ``an integer``, ``null``, ..."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "an array" if isinstance(value, list) else "an object"
    )


def obj(
    value: object, where: str, keys: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, Any]:
    """An object with exactly ``keys`` and any of ``optional``."""
    if not isinstance(value, dict):
        raise Invalid(where, f"expected an object, found {kind(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise Invalid(where, f"missing key {missing[0]!r}")
    extra = sorted(set(value) - set(keys) - set(optional))
    if extra:
        raise Invalid(f"{where}.{extra[0]}", "unknown key (this photonpack does not know it)")
    return value


def string(value: object, where: str, pattern: re.Pattern[str] | None = None) -> str:
    """A string, matching ``pattern`` in full if one is given."""
    if not isinstance(value, str):
        raise Invalid(where, f"expected a string, found {kind(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise Invalid(where, f"{value!r} does not match {pattern.pattern}")
    return value


def optional_string(value: object, where: str) -> str | None:
    """A string or null."""
    return None if value is None else string(value, where)


def integer(value: object, where: str, minimum: int = 0) -> int:
    """An integer (not a boolean) of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(where, f"expected an integer, found {kind(value)}")
    if value < minimum:
        raise Invalid(where, f"expected an integer >= {minimum}, found {value}")
    return value


def boolean(value: object, where: str) -> bool:
    """A boolean."""
    if not isinstance(value, bool):
        raise Invalid(where, f"expected a boolean, found {kind(value)}")
    return value


def array(value: object, where: str, item: Callable[[object, str], T]) -> tuple[T, ...]:
    """An array, each item checked and built by ``item(value, where)``."""
    if not isinstance(value, list):
        raise Invalid(where, f"expected an array, found {kind(value)}")
    return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))


def json_object(value: object, where: str) -> dict[str, Any]:
    """Any JSON object (a schema, an OpenAPI document)."""
    if not isinstance(value, dict):
        raise Invalid(where, f"expected an object, found {kind(value)}")
    return value


def sorted_unique(keys: Sequence[str], where: str, what: str) -> None:
    """The ``keys`` are sorted and each appears once."""
    for i in range(1, len(keys)):
        if keys[i] == keys[i - 1]:
            raise Invalid(f"{where}[{i}]", f"duplicate {what} {keys[i]!r}")
        if keys[i] < keys[i - 1]:
            raise Invalid(
                f"{where}[{i}]", f"{what} {keys[i]!r} is not sorted after {keys[i - 1]!r}"
            )


def relative_path(value: object, where: str) -> str:
    """A normalized relative POSIX path: no ``..``, no leading ``/``."""
    path = string(value, where)
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise Invalid(where, f"{path!r} is not a normalized relative POSIX path")
    return path


def unique(names: Sequence[str], where: str, what: str) -> None:
    """The ``names`` each appear once; their order is free."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise Invalid(f"{where}[{i}]", f"duplicate {what} {name!r}")
        seen.add(name)
