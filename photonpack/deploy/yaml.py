"""A small YAML emitter for manifests: block style, every string double-quoted.

Manifests are dicts, lists, strings, integers, booleans and None. Strings are
written as JSON strings, which are valid YAML double-quoted scalars, so no
value can be mistaken for another type (``"on"``, ``"0755"``, ``"1e3"``).
Keys are plain when they are plainly strings. Used instead of PyYAML so that
``deploy --dry-run -o yaml`` adds no dependency.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["dump_all"]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def dump_all(documents: Iterable[Mapping[str, object]]) -> str:
    """The documents as one YAML stream, each introduced by ``---``."""
    return "".join("---\n" + "".join(_mapping(doc, 0)) for doc in documents)


def _key(key: str) -> str:
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _RESERVED
    return key if plain else json.dumps(key)


def _scalar(value: object) -> str:
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _inline(value: object) -> str | None:
    """The value on the key's own line, or None when it opens a block."""
    if isinstance(value, Mapping):
        return "{}" if not value else None
    if isinstance(value, list | tuple):
        return "[]" if not value else None
    return _scalar(value)


def _mapping(value: Mapping[str, object], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, item in value.items():
        inline = _inline(item)
        if inline is not None:
            lines.append(f"{pad}{_key(key)}: {inline}\n")
        else:
            lines.append(f"{pad}{_key(key)}:\n")
            lines.extend(_block(item, indent + 2))
    return lines


def _sequence(value: Sequence[object], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for item in value:
        inline = _inline(item)
        if inline is not None:
            lines.append(f"{pad}- {inline}\n")
            continue
        inner = _block(item, indent + 2)
        lines.append(f"{pad}- {inner[0].lstrip()}")
        lines.extend(inner[1:])
    return lines


def _block(value: object, indent: int) -> list[str]:
    if isinstance(value, Mapping):
        return _mapping(value, indent)
    assert isinstance(value, list | tuple)
    return _sequence(value, indent)
