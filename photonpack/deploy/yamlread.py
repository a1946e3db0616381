"""Read the block-style YAML that kubectl writes (kubeconfig files), with the standard library.

Not a YAML parser: mappings, sequences (also at their key's indentation, as
kubectl writes them), plain and quoted scalars, comments, and the empty ``{}``
and ``[]``. JSON, which YAML includes, is read as JSON. Anything else is a
``ValueError`` naming the line; the caller says which file.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["load"]

_INT = re.compile(r"[-+]?[0-9]+")
_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None, "~": None, "": None}


def load(text: str) -> Any:
    """The one document in ``text``."""
    if text.lstrip().startswith(("{", "[")):
        return json.loads(text)
    lines: list[tuple[int, int, str]] = []  # (line number, indent, content)
    for number, raw in enumerate(text.splitlines(), 1):
        content = raw.strip()
        if not content or content.startswith("#") or content in ("---", "..."):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"line {number}: tab in indentation")
        lines.append((number, len(raw) - len(raw.lstrip()), _uncomment(content)))
    if not lines:
        return None
    value, end = _block(lines, 0, lines[0][1])
    if end != len(lines):
        raise ValueError(f"line {lines[end][0]}: unexpected indentation")
    return value


def _uncomment(content: str) -> str:
    if content.startswith(("'", '"')):
        return content
    index = content.find(" #")
    return content[:index].rstrip() if index >= 0 else content


def _block(lines: list[tuple[int, int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][2] == "-" or lines[i][2].startswith("- "):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _sequence(lines: list[tuple[int, int, str]], i: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while (
        i < len(lines)
        and lines[i][1] == indent
        and (lines[i][2] == "-" or lines[i][2].startswith("- "))
    ):
        number, _, content = lines[i]
        rest = content[1:].lstrip()
        if not rest:
            if i + 1 < len(lines) and lines[i + 1][1] > indent:
                value, i = _block(lines, i + 1, lines[i + 1][1])
            else:
                value, i = None, i + 1
        elif _key_value(rest) is not None:
            # "- key: value": a mapping whose first line sits where the text after "- " does.
            inner = indent + len(content) - len(rest)
            lines[i] = (number, inner, rest)
            value, i = _mapping(lines, i, inner)
        else:
            value, i = _scalar(rest, number), i + 1
        out.append(value)
    return out, i


def _mapping(lines: list[tuple[int, int, str]], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines) and lines[i][1] == indent:
        number, _, content = lines[i]
        pair = _key_value(content)
        if pair is None:
            raise ValueError(f"line {number}: expected 'key: value', found {content!r}")
        key, rest = pair
        i += 1
        if rest:
            out[key] = _scalar(rest, number)
        elif i < len(lines) and lines[i][1] > indent:
            out[key], i = _block(lines, i, lines[i][1])
        elif i < len(lines) and lines[i][1] == indent and lines[i][2].startswith("-"):
            out[key], i = _sequence(lines, i, indent)
        else:
            out[key] = None
    return out, i


def _key_value(content: str) -> tuple[str, str] | None:
    if content.startswith(('"', "'")):
        quote = content[0]
        end = content.find(quote, 1)
        if end < 0 or not content[end + 1 :].startswith(":"):
            return None
        return content[1:end], content[end + 2 :].strip()
    match = re.match(r"([^:#\s][^:]*?):(\s|$)", content)
    if match is None:
        return None
    return match.group(1), content[match.end() :].strip()


def _scalar(text: str, number: int) -> Any:
    if text.startswith('"'):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"line {number}: bad double-quoted string {text}") from None
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise ValueError(f"line {number}: bad single-quoted string {text}")
        return text[1:-1].replace("''", "'")
    if text in ("{}", "[]"):
        return {} if text == "{}" else []
    if text.startswith(("{", "[", "&", "*", "!", "|", ">")):
        raise ValueError(f"line {number}: unsupported YAML {text[:20]!r} (write it in block style)")
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    return int(text) if _INT.fullmatch(text) else text
