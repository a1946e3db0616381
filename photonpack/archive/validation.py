"""Validation of decoded JSON, naming the exact location of what is wrong.

Each helper takes a value and ``where`` it sits (``wheels[3].sha256``) and
returns the value with its type narrowed, or raises :class:`Invalid`. The
manifest and its entries build on them; ``Manifest`` turns an ``Invalid`` into
an ArchiveError at its boundary, so the helpers know nothing about archives.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_PATH_BYTES",
    "MAX_PATH_PART_BYTES",
    "Invalid",
    "array",
    "boolean",
    "distinct_paths",
    "integer",
    "json_object",
    "json_tree",
    "kind",
    "number",
    "obj",
    "optional_string",
    "relative_path",
    "sorted_unique",
    "string",
    "unique",
]

# A manifest is data a machine wrote: deeper nesting than this is an attack on
# the decoder (and on every recursive reader of the OpenAPI document), not a schema.
MAX_JSON_DEPTH = 64
# Linux's NAME_MAX, and a whole path short enough that the store's own prefix
# (a working directory under $PHOTONPACK_HOME) keeps it well under PATH_MAX.
MAX_PATH_PART_BYTES = 255
MAX_PATH_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

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
    """A string of Unicode text, matching ``pattern`` in full if one is given."""
    if not isinstance(value, str):
        raise Invalid(where, f"expected a string, found {kind(value)}")
    _text(value, where)
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


def number(value: object, where: str, *, maximum: float) -> float:
    """A finite number (not a boolean) greater than 0 and at most ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(where, f"expected a number, found {kind(value)}")
    if not math.isfinite(value) or not 0 < value <= maximum:
        raise Invalid(where, f"expected a number > 0 and <= {maximum:g}, found {value!r}")
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
    """Any JSON object (a schema, an OpenAPI document), checked by :func:`json_tree`."""
    if not isinstance(value, dict):
        raise Invalid(where, f"expected an object, found {kind(value)}")
    json_tree(value, where)
    return value


def json_tree(value: object, where: str) -> None:
    """A JSON value that encodes canonically: nested at most ``MAX_JSON_DEPTH`` deep,
    Unicode text only (no lone surrogate), finite numbers; walked without recursion."""
    stack: list[tuple[object, str, int]] = [(value, where, 1)]
    while stack:
        item, at, depth = stack.pop()
        if isinstance(item, str):
            _text(item, at)
        elif isinstance(item, float) and not math.isfinite(item):
            raise Invalid(at, f"expected a finite number, found {item!r}")
        elif isinstance(item, list | dict):
            if depth > MAX_JSON_DEPTH:
                raise Invalid(at, f"expected JSON nested at most {MAX_JSON_DEPTH} deep, found more")
            if isinstance(item, list):
                stack += [(v, f"{at}[{i}]", depth + 1) for i, v in enumerate(item)]
                continue
            for key, v in item.items():
                _text(key, f"{at} (a key)")
                stack.append((v, f"{at}.{key}", depth + 1))
        elif item is not None and not isinstance(item, bool | int | float):
            raise Invalid(at, f"expected a JSON value, found {type(item).__name__}")


def _text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start : exc.end].encode("unicode_escape").decode()
        raise Invalid(where, f"expected Unicode text, found a lone surrogate {bad}") from None


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
    """A normalized relative POSIX path every filesystem can hold: no ``..``, no
    leading ``/``, no control character, parts and the whole of bounded length."""
    path = string(value, where)
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise Invalid(where, f"{path!r} is not a normalized relative POSIX path")
    if control := _CONTROL.search(path):
        raise Invalid(where, f"expected a path without control characters, found {control[0]!r}")
    for part in parts:
        if len(part.encode()) > MAX_PATH_PART_BYTES:
            raise Invalid(
                where,
                f"expected path parts of at most {MAX_PATH_PART_BYTES} bytes, found one of "
                f"{len(part.encode())} ({part[:24]!r}...)",
            )
    if len(path.encode()) > MAX_PATH_BYTES:
        raise Invalid(
            where,
            f"expected a path of at most {MAX_PATH_BYTES} bytes, found {len(path.encode())} "
            f"({path[:24]!r}...)",
        )
    return path


def distinct_paths(paths: Sequence[str], where: str) -> None:
    """No two of ``paths`` are one file on a case-insensitive or normalizing filesystem
    (``A.py`` and ``a.py``, composed and decomposed ``é``), and no path is both a file
    and a directory (``a`` beside ``a/b``)."""
    files: dict[str, str] = {}
    for path in paths:
        key = _fold(path)
        if key in files:
            raise Invalid(
                where,
                f"{path!r} and {files[key]!r} are the same file on case-insensitive or "
                "Unicode-normalizing filesystems; rename one",
            )
        files[key] = path
    # Sorted with "/" as the lowest character, a file is followed directly by
    # whatever lies inside it: one pass finds every file-versus-directory clash.
    ordered = sorted(files, key=lambda key: key.replace("/", "\0"))
    for parent, child in itertools.pairwise(ordered):
        if child.startswith(parent + "/"):
            raise Invalid(
                where,
                f"{files[parent]!r} is a file, so {files[child]!r} cannot be inside it; rename one",
            )


def _fold(path: str) -> str:
    """Caseless matching (Unicode's canonical caseless match: NFD, casefold, NFD)."""
    nfd = unicodedata.normalize("NFD", path)
    return unicodedata.normalize("NFD", nfd.casefold())


def unique(names: Sequence[str], where: str, what: str) -> None:
    """The ``names`` each appear once; their order is free."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise Invalid(f"{where}[{i}]", f"duplicate {what} {name!r}")
        seen.add(name)
