"""What a command says while it takes time it cannot count in bytes: a first install, a gc,
and a wait for another process's hold on the store's lock (``store/locks.py``).

The real CLI, in a child process on a pty (a terminal) or on pipes; the other
process holding the lock is a real one too, using the same lock protocol.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

_HOLDER = """
import sys
from pathlib import Path
from photonpack.store import locks

root = Path(sys.argv[1])
if sys.argv[2] == "gc":
    with locks.exclusive(root, wait=True):
        print("held", flush=True)
        sys.stdin.readline()
else:
    locks.share(root, create=True)
    print("held", flush=True)
    sys.stdin.readline()
"""


def _hold(home: Path, how: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(home), how],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(30) == 0


class _Tty:
    """``photonpack ARGS`` with stdout and stderr on a pty; its output read as it comes."""

    def __init__(self, home: Path, *args: str) -> None:
        self.leader, follower = pty.openpty()
        self.child = subprocess.Popen(
            [sys.executable, "-m", "photonpack", *args],
            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
            env={**os.environ, "PHOTONPACK_HOME": str(home)},
        )  # fmt: skip
        os.close(follower)
        self.output = ""

    def read_until(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            ready, _, _ = select.select([self.leader], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"no {text!r} within {timeout} s; so far: {self.output!r}")
            try:
                chunk = os.read(self.leader, 65536)
            except OSError:  # EIO: the child closed the pty
                chunk = b""
            if not chunk:
                raise AssertionError(f"exited before {text!r}; output: {self.output!r}")
            self.output += chunk.decode(errors="replace")
        return self.output

    def stop(self) -> None:
        self.child.kill()
        self.child.wait()
        os.close(self.leader)


def test_run_says_it_waits_for_gc_then_draws_its_first_install(
    counter_archive: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    gc = _hold(home, "gc")
    run = _Tty(home, "run", str(counter_archive), "--host", "127.0.0.1", "--port", "0")
    try:
        run.read_until(f"waiting for gc (pid {gc.pid}) to finish with the store {home}...\r\n")
        assert run.child.poll() is None  # still waiting, and said so
        _release(gc)
        output = run.read_until("photonpack: serving counter on ")
    finally:
        run.stop()
    draws = [p for p in output.split("\r") if p.startswith("installing ")]
    assert draws, output
    assert all(
        d.startswith("installing ") and " wheels into a new environment  " in d and " s" in d
        for d in draws
    ), draws
    # The second run reuses the environment: no install line.
    again = _Tty(home, "run", str(counter_archive), "--host", "127.0.0.1", "--port", "0")
    try:
        output = again.read_until("photonpack: serving counter on ")
    finally:
        again.stop()
    assert "installing " not in output
    assert "waiting for gc" not in output


def test_gc_on_a_terminal_draws_its_step_then_the_report(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    gc = _Tty(home, "gc")
    try:
        output = gc.read_until("kept 0 photons", timeout=60)
        assert gc.child.wait(30) == 0
    finally:
        gc.stop()
    assert "\rcollecting the store  0." in "\r" + output
    # Erased before the report: the report's first line starts clean.
    before, _, _ = output.partition("AREA ")
    assert before.endswith("\r")
    assert before.rstrip("\r ").endswith("s")


def test_gc_in_a_pipe_says_it_waits_for_the_processes_using_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    user = _hold(home, "share")
    gc = subprocess.Popen(
        [sys.executable, "-m", "photonpack", "gc"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PHOTONPACK_HOME": str(home)},
    )  # fmt: skip
    assert gc.stderr is not None
    line = gc.stderr.readline()
    assert line == f"waiting for the photonpack processes using the store {home}...\n"
    assert gc.poll() is None
    _release(user)
    out, err = gc.communicate(timeout=60)
    assert gc.returncode == 0, err
    assert "\r" not in err  # no progress line drawn into a pipe
    assert "AREA " in out


def test_quiet_gc_waits_without_a_word(tmp_path: Path) -> None:
    home = tmp_path / "home"
    user = _hold(home, "share")
    gc = subprocess.Popen(
        [sys.executable, "-m", "photonpack", "-q", "gc"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PHOTONPACK_HOME": str(home)},
    )  # fmt: skip
    _release(user)
    _out, err = gc.communicate(timeout=60)
    assert gc.returncode == 0
    assert "waiting" not in err
