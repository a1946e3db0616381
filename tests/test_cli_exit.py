"""The console script ends without the interpreter's teardown, as an ordinary exit would end."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from photonpack import __version__

_SCRIPT = textwrap.dedent(
    """
    import atexit, sys, threading
    from photonpack.cli import main

    atexit.register(lambda: print("exit handler ran", file=sys.stderr))
    if sys.argv[1] == "thread":
        event = threading.Event()
        threading.Thread(target=lambda: (event.wait(0.2), print("thread ended"))).start()
    sys.argv = ["photonpack", *sys.argv[2:]]
    main()
    """
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", _SCRIPT, *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)


def test_console_script_runs_exit_handlers_and_flushes_its_output() -> None:
    done = _run("-", "--version")
    assert (done.returncode, done.stdout) == (0, f"photonpack, version {__version__}\n")
    assert done.stderr == "exit handler ran\n"


def test_console_script_keeps_a_commands_exit_code_and_message() -> None:
    done = _run("-", "lock", "-m", "missing.py")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert done.stderr.endswith("exit handler ran\n")


def test_console_script_waits_for_a_thread_left_running() -> None:
    done = _run("thread", "--version")
    assert done.returncode == 0
    assert done.stdout.endswith("thread ended\n")
    assert done.stderr == "exit handler ran\n"
