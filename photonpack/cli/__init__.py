"""The ``photonpack`` command line: parse, call one library function, print.

One module per area registers its commands on the group defined in
:mod:`photonpack.cli._app`, which also turns every PhotonpackError into one
line and an exit code. A module is imported when one of its commands is asked
for (``COMMANDS``), so a command starts without loading the others' libraries.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

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
    try:
        cli(prog_name="photonpack")
    except SystemExit as done:
        _leave(done)


def _leave(done: SystemExit) -> NoReturn:
    """End the process as ``done`` would, without the interpreter's teardown.

    Once a command has returned, tearing down the modules it imported frees every
    object one by one: 0.1-0.2 s after a lock (pip and pip-tools are 670 modules), a
    tenth of a cold one, for nothing the user sees. The exit handlers still run
    (temporary directories, logging) and the output is flushed; a command that left a
    thread running gets the ordinary exit, which waits for it (not for a daemon thread).
    """
    main_thread = threading.main_thread()
    if any(not t.daemon and t is not main_thread for t in threading.enumerate()):
        raise done  # the ordinary exit joins it first
    code = done.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # what SystemExit("message") prints
        code = 1
    atexit._run_exitfuncs()  # what the ordinary exit runs first
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            code = code or 120  # the exit code Python gives a failed flush at exit
    os._exit(code or 0)
