"""``podman`` as a subprocess, with the caller's environment (CONTAINERS_CONF, ...)."""

from __future__ import annotations

import json
import socket
import subprocess
from typing import Any

from photonpack.deploy.errors import DeployError

__all__ = ["PodmanCli", "free_port", "last_line"]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PodmanCli:
    """``podman`` as a subprocess; its environment (CONTAINERS_CONF, ...) is the caller's."""

    def __init__(self, executable: str = "podman") -> None:
        self.executable = executable

    def run(
        self, *args: str, stdin: bytes | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[bytes]:
        """Run podman; the result whatever its exit status."""
        try:
            return subprocess.run(
                [self.executable, *args],
                input=stdin,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise DeployError(
                f"{self.executable} is not installed; install podman (Debian: apt-get install "
                "podman runc catatonit) or use --engine kubernetes"
            ) from None
        except subprocess.TimeoutExpired:
            raise DeployError(
                f"podman {' '.join(args[:2])} did not finish within {timeout:.0f} s"
            ) from None

    def check(self, *args: str, stdin: bytes | None = None, timeout: float = 300) -> str:
        """Run podman; its stdout, or DeployError with its last line of stderr."""
        done = self.run(*args, stdin=stdin, timeout=timeout)
        if done.returncode != 0:
            raise DeployError(f"podman {' '.join(args[:2])} failed: {last_line(done.stderr)}")
        return done.stdout.decode(errors="replace")

    def inspect(self, what: str, name: str) -> dict[str, Any] | None:
        """``podman WHAT inspect NAME`` as a dict, or None when there is no such object."""
        done = self.run(what, "inspect", name)
        if done.returncode != 0:
            return None
        data = json.loads(done.stdout or b"null")
        if isinstance(data, list):
            data = data[0] if data else None
        return data if isinstance(data, dict) else None

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        """A long-running podman (``logs -f``), its stdout and stderr one pipe."""
        return subprocess.Popen(
            [self.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )


def last_line(stderr: bytes) -> str:
    lines = [
        line
        for line in stderr.decode(errors="replace").splitlines()
        if line.strip() and "systemd" not in line  # healthcheck timers on a host without systemd
    ]
    return lines[-1].removeprefix("Error: ") if lines else "no message"
