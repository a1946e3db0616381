"""The build's scratch directory, removed after the command has answered.

A cold ``photonpack image`` stages the whole environment (tens of thousands of
files) under the store's ``tmp/``; removing it at the end took 1-4 s of the
command's wall time, after the image was already written. ``discard`` hands
the removal to a detached ``rm`` instead.

Nothing is left that nothing collects: the directory is first renamed to
``<pid>-discarded-...`` under the same ``tmp/``, ``<pid>`` being the remover's
own (the store's naming of temporary entries, ``store/names.py``). While it
runs, no other photonpack's sweep of ``tmp/`` takes the directory as an
orphan; if it is killed, its pid is gone, and the next sweep (any command that
writes to ``tmp/``) or ``gc`` removes what is left.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from photonpack.store import Store

__all__ = ["discard", "scratch_dir"]

# $1: the tmp/ directory, $2: the name after the pid. The directory is renamed by the
# parent once it knows the pid; the line it then writes says so (EOF: nothing to do).
_REMOVER = 'IFS= read -r _ && exec rm -rf -- "$1/$$-$2"'
_running: list[subprocess.Popen[bytes]] = []  # reaped as the next ones start


@contextlib.contextmanager
def scratch_dir(store: Store, prefix: str) -> Iterator[Path]:
    """A fresh directory under the store's ``tmp/``, discarded (``discard``) on exit."""
    with store.temp_dir(prefix) as work:
        try:
            yield work
        finally:
            discard(work)  # renamed away: the store's own removal finds nothing left


def discard(path: Path) -> None:
    """Remove the directory ``path`` (under the store's ``tmp/``) in a detached process.

    Falls back to removing it here when no remover can be started or renamed to.
    """
    _running[:] = [child for child in _running if child.poll() is None]
    name = f"discarded-{path.name}"
    try:
        child = subprocess.Popen(
            ["/bin/sh", "-c", _REMOVER, "sh", str(path.parent), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not stopped by the terminal's ^C after the command ends
        )
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        return
    assert child.stdin is not None
    gone = path.with_name(f"{child.pid}-{name}")
    try:
        path.rename(gone)
        child.stdin.write(b"go\n")
        child.stdin.close()
    except OSError:  # not renamed, or the remover died: removed here (the remover ends)
        with contextlib.suppress(OSError):
            child.stdin.close()
        shutil.rmtree(gone if gone.exists() else path, ignore_errors=True)
    _running.append(child)
