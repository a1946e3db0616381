"""A SIGTERM before the server is up: stop at once and exit 0, even as PID 1.

In a container the server is PID 1, and the kernel drops every signal that
PID 1 has no handler for: a SIGTERM arriving while the serving stack or the
photon is imported, or while its ``init()`` runs, would be ignored, and the
engine would wait out its grace period and SIGKILL. So the serve entry point
installs a handler first thing; an image needs no init process for it.

There is nothing to drain before the port opens. While the serving stack is
imported, :func:`exit_on_sigterm` ends the process at once. From the entry
point's ``main()`` on, :func:`stop_on_sigterm` raises :class:`Stopped` in the
main thread instead, so that ``finally`` blocks and context managers (the
photon's own, the bound socket) still run, and ``main()`` returns 0; should
the photon's code swallow it, the process exits 0 anyway :data:`GIVE_UP_AFTER`
seconds later. Once uvicorn serves, its handlers replace these
(:class:`~photonpack.serving.shutdown.PhotonServer`: the graceful drain) and
restore them when it returns. Stdlib only: this runs before anything else is
imported.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

__all__ = ["GIVE_UP_AFTER", "Stopped", "exit_now", "exit_on_sigterm", "stop_on_sigterm"]

# Time for the unwinding (the photon's finally blocks, the socket) before the exit.
GIVE_UP_AFTER = 2.0

_stopping = threading.Event()


class Stopped(BaseException):
    """A SIGTERM came before the server was up; the entry point exits 0.

    A ``BaseException``, as ``KeyboardInterrupt`` is: a photon's ``except
    Exception`` does not take it, nor does the loader's ``SystemExit`` check.
    """


def exit_on_sigterm() -> None:
    """From now on a SIGTERM ends the process at once with exit code 0."""
    _install(_exit)


def stop_on_sigterm() -> None:
    """From now on a SIGTERM raises :class:`Stopped` in the main thread (exit 0 at the latest
    :data:`GIVE_UP_AFTER` seconds later)."""
    _install(_raise)


def exit_now(code: int) -> None:
    """End the process at once, after flushing what was written, without joining any thread."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _install(handler: Callable[[int, FrameType | None], None]) -> None:
    # signal.signal works only in the main thread (Photon.launch() may run in another).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _exit(sig: int, frame: FrameType | None) -> None:
    exit_now(0)


def _raise(sig: int, frame: FrameType | None) -> None:
    if not _stopping.is_set():
        _stopping.set()
        threading.Thread(target=_give_up, name="photon-stop", daemon=True).start()
    raise Stopped


def _give_up() -> None:
    threading.main_thread().join(GIVE_UP_AFTER)
    if threading.main_thread().is_alive():
        logging.getLogger("photonpack").error(
            "still running %s s after SIGTERM before serving; exiting now", GIVE_UP_AFTER
        )
        exit_now(0)
