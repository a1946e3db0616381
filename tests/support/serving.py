"""Serve a photon with the real CLI in a subprocess: ``photonpack run -m`` on a free port."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

__all__ = ["Served", "serve_photon", "start_server"]

# The ready line, alone (text) or as the message of a JSON log line.
_READY = re.compile(r'photonpack: serving (\S+) on (http://[^\s"]+)')
_START_TIMEOUT = 30.0


@dataclasses.dataclass
class Served:
    """A running photon server: its URL, process and stderr log."""

    url: str
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stderr(self) -> str:
        return self.log.read_text()

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start_server(
    spec: str,
    log: Path,
    *,
    cwd: Path | None = None,
    args: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
    wait: bool = True,
    stdout: Path | None = None,
) -> Served:
    """Start ``photonpack run -m SPEC --host 127.0.0.1 --port 0`` and wait for its ready line.

    A ``spec`` that ends in ``.photon``, starts with ``-n`` or names a registry
    (``host:port/repo:tag``) is run as an archive, a stored name or a REF
    instead of from source.
    """
    what = spec.split(" ", 1) if spec.startswith("-n ") else [spec]
    is_ref = "/" in spec and not spec.endswith(".py") and ":" in spec.split("/", 1)[0]
    if not spec.endswith(".photon") and not spec.startswith("-n ") and not is_ref:
        what = ["-m", spec]
    argv = [sys.executable, "-m", "photonpack", "run", *what, "--host", "127.0.0.1"]
    if "--port" not in args:
        argv += ["--port", "0"]
    with log.open("wb") as stderr, (stdout or Path(os.devnull)).open("wb") as out:
        process = subprocess.Popen(
            [*argv, *args],
            cwd=cwd,
            stdout=out,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )
    served = Served(url="", name="", process=process, log=log)
    if not wait:
        return served
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        match = _READY.search(log.read_text())
        if match:
            served.name, served.url = match.group(1), match.group(2)
            return served
        if process.poll() is not None:
            raise AssertionError(f"server exited {process.returncode}:\n{log.read_text()}")
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise AssertionError(f"server did not start within {_START_TIMEOUT}s:\n{log.read_text()}")


@pytest.fixture
def serve_photon(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start photon servers for one test; every one is stopped afterwards."""
    started: list[Served] = []

    def start(spec: str, **kwargs: object) -> Served:
        log = tmp_path / f"server-{len(started)}.log"
        served = start_server(spec, log, **kwargs)  # type: ignore[arg-type]
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
