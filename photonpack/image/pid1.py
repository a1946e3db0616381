"""PID 1 of a ``cmd`` photon's container: run the command, pass it signals, reap orphans.

The kernel drops every signal that PID 1 has no handler for, so a command
that does not handle SIGTERM itself (a shell script, a plain ``python -c``)
would ignore ``podman stop`` and ``kubectl delete`` until their grace period
ends in SIGKILL. This is what ``podman run --init`` (catatonit) and tini do,
built into the image so that every orchestrator gets it: the command runs as
a child, each catchable signal is passed on to it, orphaned processes that
re-parent to PID 1 are reaped, and the container exits with the command's
status (``128 + N`` when signal N ended it, as a shell reports it).

The image copies this file to ``/opt/photon/init.py`` and runs it with the
base's Python (``-I``, standard library only); it is not imported by photonpack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def run(argv: Sequence[str]) -> int:
    """Run ``argv`` as a child until it exits; its exit code (``128 + N`` for signal N)."""
    child: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []  # signals that came before the command had a pid

    def forward(signum: int, _frame: object) -> None:
        if child:
            os.kill(child[0].pid, signum)
        else:
            pending.append(signum)

    for forwarded in FORWARDED:
        signal.signal(forwarded, forward)
    try:
        child.append(subprocess.Popen(list(argv)))
    except OSError as exc:
        sys.stderr.write(f"photonpack init: cannot run {argv[0]!r}: {exc.strerror}\n")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    for signum in pending:
        os.kill(child[0].pid, signum)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)  # orphans too: PID 1 is their parent
        except ChildProcessError:
            return 0
        if pid == child[0].pid:
            child[0].returncode = _exit_code(status)  # so that Popen does not wait for it again
            return child[0].returncode


def main() -> None:
    if len(sys.argv) < 2:
        sys.stderr.write("photonpack init: usage: init.py COMMAND [ARG...]\n")
        sys.exit(2)
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
