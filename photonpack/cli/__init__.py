"""The ``photonpack`` command line: parse, call one library function, print.

One module per area registers its commands on the group defined in
:mod:`photonpack.cli._app`, which also turns every PhotonpackError into one
line and an exit code.
"""

from __future__ import annotations

from photonpack.cli import check, completion, deploy, image, login, pack, registry, serve, store
from photonpack.cli._app import cli

__all__ = ["cli", "main"]

# The submodules register their commands on import.
_COMMANDS = (check, completion, deploy, image, login, pack, registry, serve, store)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="photonpack")
