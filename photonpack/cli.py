"""The ``photonpack`` command line: parse, call one library function, print.

This is the only module that prints, and the only place where a
:class:`~photonpack.errors.PhotonpackError` becomes a message and an exit code.
Library modules are imported inside each command so that ``photonpack lock``
or ``photonpack verify`` never import the serving stack.
"""

from __future__ import annotations

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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="photonpack")


if __name__ == "__main__":  # pragma: no cover
    main()
