"""``completion SHELL``: the shell completion script of click's own machinery."""

from __future__ import annotations

import click

from photonpack.cli._app import cli

SHELLS = ("bash", "zsh", "fish")
# The variable click's shell_complete machinery reads, named after the program.
COMPLETE_VAR = "_PHOTONPACK_COMPLETE"


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    Install it once, e.g.:
      bash: photonpack completion bash > ~/.local/share/bash-completion/completions/photonpack
      zsh:  photonpack completion zsh > "${fpath[1]}/_photonpack"
      fish: photonpack completion fish > ~/.config/fish/completions/photonpack.fish
    """
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # every name in SHELLS is one click ships
    script = completer(cli, {}, "photonpack", COMPLETE_VAR).source()
    click.echo(script, nl=not script.endswith("\n"))
