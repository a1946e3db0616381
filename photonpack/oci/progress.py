"""Progress of a blob transfer, as the registry client reports it to the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressFn", "Transfer"]


@dataclass(frozen=True, kw_only=True)
class Transfer:
    """Progress of one blob: ``done`` of ``total`` bytes moved so far."""

    digest: str
    title: str
    done: int
    total: int


ProgressFn = Callable[[Transfer], None]
