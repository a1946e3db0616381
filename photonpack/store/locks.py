"""The store-wide lock protocol: what lets ``gc`` collect a store other processes use.

Three kinds of OS file lock (``fcntl.flock``), each released by the kernel
when the process holding it dies, so a killed process never leaves the store
locked:

- ``$PHOTONPACK_HOME/.lock``: **shared** by every process that reads or
  writes the store, from its first use of the store (:meth:`Store.hold`) until
  the command ends (:func:`release`, or the process's exit); **exclusive**
  while ``gc`` runs (:func:`exclusive`). A command waits while a gc runs; a gc
  waits for the commands running (or, ``--no-wait``, says so and stops).
  While it holds it, the file holds gc's pid, so that a waiting command can
  say whom it waits for (through :func:`on_wait`, where the CLI prints it).
- ``locks/<key>.lock``, exclusive: one install of an environment or working
  directory at a time (:meth:`Store.lock`), taken under the shared lock.
- ``locks/use-<key>.lock``, shared, for a serving process's whole life
  (:func:`hold_for_life`): ``run`` takes it for the photon's environment and
  working directory before it execs the server, which inherits the open file
  and so the lock. ``gc`` skips what it cannot lock exclusively
  (:func:`in_use`).

A process holds at most one open ``.lock`` per store, so a ``gc`` run inside a
process that already used the store turns that same lock exclusive instead
of waiting for itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from photonpack.errors import StoreError

__all__ = [
    "LOCK_NAME",
    "StoreBusyError",
    "exclusive",
    "hold_for_life",
    "in_use",
    "on_wait",
    "release",
    "share",
]

#: The store-wide lock file, directly under the store's root.
LOCK_NAME = ".lock"

_guard = threading.Lock()
_held: dict[Path, int] = {}  # store root -> the fd holding its .lock, in this process
_notices: list[Callable[[str], None]] = []  # told before a lock is waited for


def on_wait(notice: Callable[[str], None]) -> None:
    """Have ``notice(message)`` told each time this process is about to wait for the lock."""
    _notices[:] = [notice]


def _waiting(message: str) -> None:
    for notice in _notices:
        notice(message)


def _gc_pid(fd: int) -> str:
    """`` (pid N)`` of the gc holding the lock, from the file; empty when it says none."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def _note_pid(fd: int, pid: int | None) -> None:
    """Write (or, None, clear) the exclusive holder's pid in the lock file; best effort."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        if pid is not None:
            os.pwrite(fd, f"{pid}\n".encode(), 0)


class StoreBusyError(StoreError):
    """``gc --no-wait`` found the store in use by another photonpack process."""


def _open(root: Path, *, create: bool) -> int | None:
    path = root / LOCK_NAME
    flags = os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | flags, 0o644)
    except FileNotFoundError:
        return None  # no store yet (or no lock file in it): nothing can be collected
    except OSError:
        # A read-only store: a shared lock on a read-only descriptor still tells a
        # privileged gc to wait. None when even that cannot be opened.
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None


def share(root: Path, *, create: bool) -> None:
    """Hold ``root``'s store lock shared from now until :func:`release` (or exit).

    Waits while a ``gc`` holds it. ``create=False`` (a read) takes nothing when
    the store does not exist yet; a store that cannot be written is used
    without the lock, as nothing can collect it either.
    """
    with _guard:
        if root in _held:
            return
        fd = _open(root, create=create)
        if fd is None:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                _waiting(f"waiting for gc{_gc_pid(fd)} to finish with the store {root}...")
                fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:
            os.close(fd)  # a filesystem without flock: used as before the protocol
            return
        _held[root] = fd


def release(root: Path | None = None) -> None:
    """Give back the shared lock on ``root`` (every store's when None): the command ended."""
    with _guard:
        for held in [root] if root is not None else list(_held):
            fd = _held.pop(held, None)
            if fd is not None:
                os.close(fd)


@contextlib.contextmanager
def exclusive(root: Path, *, wait: bool) -> Iterator[None]:
    """Hold ``root``'s store lock exclusively while the block runs (what ``gc`` does).

    ``wait=False`` raises :class:`StoreBusyError` at once when another process
    holds it. A shared lock this process held is turned exclusive, then back.
    """
    with _guard:
        fd = _held.get(root)
        own = fd is None
        if fd is None:
            try:
                fd = _open(root, create=True)
            except OSError:
                fd = None
        if fd is None:
            raise StoreError(
                f"cannot lock the store {root}: it is not writable; "
                "set PHOTONPACK_HOME to a writable directory"
            )
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise
                _waiting(f"waiting for the photonpack processes using the store {root}...")
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BlockingIOError:
            if own:
                os.close(fd)
            raise StoreBusyError(
                f"another photonpack process is using the store {root}; run gc again when it "
                "has finished, or without --no-wait to wait for it"
            ) from None
        except OSError as exc:
            if own:
                os.close(fd)
            raise StoreError(
                f"cannot lock the store {root}: {exc.strerror or exc} (gc needs a filesystem "
                "with file locks); point PHOTONPACK_HOME at a local directory"
            ) from exc
        _held[root] = fd
        _note_pid(fd, os.getpid())
    try:
        yield
    finally:
        with _guard:
            _note_pid(fd, None)
            if own:
                _held.pop(root, None)
                os.close(fd)
            else:
                fcntl.flock(fd, fcntl.LOCK_SH)


def hold_for_life(path: Path) -> int | None:
    """Lock ``path`` shared until this process (or what it execs) exits; the fd.

    The descriptor is inheritable, so the lock outlives an ``exec`` and dies
    with the process that finally holds it. None in a store that cannot be
    written, where no lock file can be made (and nothing can collect either).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.set_inheritable(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def in_use(path: Path) -> bool:
    """Whether a live process holds the lock file ``path`` (shared or exclusive)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # no lock file: nobody took it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing also releases the lock taken just now
    return False
