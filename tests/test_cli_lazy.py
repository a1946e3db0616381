"""The command group loads a command's module only when that command is asked for."""

from __future__ import annotations

import importlib
import pkgutil

import click

import photonpack.cli
from photonpack.cli import COMMANDS, cli


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    for info in pkgutil.iter_modules(photonpack.cli.__path__):
        importlib.import_module(f"photonpack.cli.{info.name}")
    registered = {
        name: command.callback.__module__.rpartition(".")[2]
        for name, command in cli.commands.items()
        if command.callback is not None
    }
    assert registered == COMMANDS


def test_help_lists_every_command() -> None:
    with click.Context(cli) as ctx:
        assert cli.list_commands(ctx) == sorted(COMMANDS)
