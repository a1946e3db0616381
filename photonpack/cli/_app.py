"""The ``photonpack`` command group and what its commands share.

This package is the only code that prints, and ``_Group.main`` is the only
place where a :class:`~photonpack.errors.PhotonpackError` becomes a message and
an exit code. Library modules are imported inside each command so that
``photonpack lock`` or ``photonpack verify`` never import the serving stack.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import click

from photonpack.__about__ import __version__
from photonpack.errors import PhotonpackError

DEBUG_ENV = "PHOTONPACK_DEBUG"


class _Group(click.Group):
    """The one place where an exception becomes a line on stderr and an exit code.

    ``PhotonpackError``: its message and ``exit_code``. Any usage error (click's
    or ours): ``error: ...`` and exit 2. Anything else is a bug: one line, exit
    1, and the traceback only with ``--debug`` or ``PHOTONPACK_DEBUG=1``.
    """

    debug = False
    # Command name -> the module of this package that registers it, imported when the
    # command is asked for: `photonpack lock` loads neither asyncio nor the registry client.
    lazy_commands: Mapping[str, str] = {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.lazy_commands.get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            importlib.import_module(f"photonpack.cli.{module}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(self.lazy_commands.values())):
            importlib.import_module(f"photonpack.cli.{module}")
        return super().list_commands(ctx)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        self.debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
        try:
            result = self._invoke(args, prog_name, complete_var, **extra)
        except click.exceptions.Exit as exc:  # --help, --version, ctx.exit(code)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "photonpack"
            click.echo(f"error: {exc.format_message()} (see '{command} --help')", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except PhotonpackError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, click.exceptions.Abort):
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the boundary: a bug, said in one line
            if self.debug:
                traceback.print_exc()
            else:
                click.echo(
                    f"error: internal error: {type(exc).__name__}: {exc} (a bug in photonpack; "
                    f"run again with --debug or {DEBUG_ENV}=1 for the traceback, and report it)",
                    err=True,
                )
            sys.exit(1)
        # Without standalone mode click returns ctx.exit(code)'s code instead of exiting.
        code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return result

    def _invoke(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        **extra: Any,
    ) -> Any:
        try:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        finally:
            _release_store()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="photonpack")
@click.option(
    "--debug",
    is_flag=True,
    help=f"Show the traceback of an internal error (also: {DEBUG_ENV}=1).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="Print no progress or information on stderr (errors and warnings still print).",
)
@click.option("-v", "--verbose", count=True, help="Say more on stderr (e.g. each blob push moves).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, verbose: int) -> None:
    """Lock, build, verify and serve reproducible Python photons.

    -q and -v go before the command: photonpack -q build -m counter.py.

    \b
    Environment:
      PHOTONPACK_HOME   the local store (default: $XDG_DATA_HOME/photonpack)
      PHOTONPACK_DEBUG  1: show the traceback of an internal error
    """
    if debug and isinstance(ctx.command, _Group):
        ctx.command.debug = True
    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other: pass one of them")
    ctx.meta[_VERBOSITY] = -1 if quiet else verbose
    from photonpack.store import locks

    locks.on_wait(_say_waiting)  # "waiting for gc (pid N)...", not a silent wait


_VERBOSITY = "photonpack.verbosity"


def verbosity() -> int:
    """-1 with -q, 0 by default, 1 (or more) with -v (-vv)."""
    context = click.get_current_context(silent=True)
    return int(context.meta.get(_VERBOSITY, 0)) if context is not None else 0


def info(message: str) -> None:
    """A line of progress or information on stderr, unless -q."""
    if verbosity() >= 0:
        click.echo(message, err=True)


def detail(message: str) -> None:
    """A line only -v asks for, on stderr."""
    if verbosity() > 0:
        click.echo(message, err=True)


def _say_waiting(message: str) -> None:
    """A line saying what the command waits for (the store's lock), unless -q."""
    if verbosity() >= 0:
        # On a terminal, over whatever progress line is drawn there.
        sys.stderr.write(("\r\x1b[K" if sys.stderr.isatty() else "") + message + "\n")
        sys.stderr.flush()


def progress_shown() -> bool:
    """Whether progress bars are drawn: on a terminal, and not with -q."""
    import sys

    return verbosity() >= 0 and sys.stderr.isatty()


def _release_store() -> None:
    """The command has ended: give back the store's shared lock (``store/locks.py``).

    Only when a command used the store (its module is loaded); matters to a
    caller that runs commands in its own process, as the process's exit
    releases it anyway.
    """
    store_locks = sys.modules.get("photonpack.store.locks")
    if store_locks is not None:
        store_locks.release()


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Print aligned columns; an empty table prints nothing."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
