"""How every command shows a number of bytes: one formatter, binary units."""

from __future__ import annotations

__all__ = ["format_size"]

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
