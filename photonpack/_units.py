"""How every command shows a number of bytes (one formatter, binary units) and reads a duration."""

from __future__ import annotations

import re

__all__ = ["format_duration", "format_size", "parse_duration"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def format_size(n: int, *, signed: bool = False) -> str:
    """``866 B``, ``2.1 KiB``, ``7.8 MiB``, ``1.3 GiB``; ``signed`` adds ``+`` to a gain."""
    sign = "-" if n < 0 else ("+" if signed else "")
    value = float(abs(n))
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            number = f"{abs(n)}" if unit == "B" else f"{value:.1f}"
            return f"{sign}{number} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def parse_duration(text: str) -> float:
    """``30s``, ``10m``, ``12h``, ``7d``, ``2w`` or ``0``, in seconds; ValueError otherwise."""
    if text.strip() == "0":
        return 0.0
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: use a number and a unit (s, m, h, d, w)")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The largest whole unit: ``7d``, ``12h``, ``90s``; ``0`` for none."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _SECONDS[unit] == 0:
            return f"{int(seconds // _SECONDS[unit])}{unit}"
    return f"{seconds:g}s" if seconds else "0"
