"""The ``photonpack`` command line: parse, call one library function, print.

One module per area registers its commands on the group defined in
:mod:`photonpack.cli._app`, which also turns every PhotonpackError into one
line and an exit code. A module is imported when one of its commands is asked
for (``COMMANDS``), so a command starts without loading the others' libraries.
"""

from __future__ import annotations

from photonpack.cli._app import cli

__all__ = ["COMMANDS", "cli", "main"]

# Command name -> the submodule that registers it on import (a test checks it is complete).
COMMANDS = {
    "build": "pack",
    "completion": "completion",
    "create": "pack",
    "deploy": "deploy",
    "deployment": "deploy",
    "diff": "check",
    "gc": "store",
    "image": "image",
    "inspect": "check",
    "list": "store",
    "lock": "pack",
    "login": "login",
    "logout": "login",
    "pull": "registry",
    "push": "registry",
    "remove": "store",
    "run": "serve",
    "sbom": "check",
    "store": "store",
    "verify": "check",
}
cli.lazy_commands = COMMANDS


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="photonpack")
