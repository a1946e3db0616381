"""The ``photonpack`` command group and what its commands share.

This package is the only code that prints, and ``_Group.invoke`` is the only
place where a :class:`~photonpack.errors.PhotonpackError` becomes a message and
an exit code. Library modules are imported inside each command so that
``photonpack lock`` or ``photonpack verify`` never import the serving stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from photonpack.__about__ import __version__
from photonpack.errors import PhotonpackError


class _Group(click.Group):
    """A click group that turns photonpack errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PhotonpackError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="photonpack")
def cli() -> None:
    """Lock, build, verify and serve reproducible Python photons."""


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Print aligned columns; an empty table prints nothing."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
