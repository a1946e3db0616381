"""Run a PEP 517 backend's hooks with no network, a clean environment and fixed settings.

The hooks run through ``pyproject_hooks`` (the PyPA's hook caller, the one
pip and ``build`` use) with the build environment's own Python, in a process
that cannot reach any host: a new network namespace (``unshare --net``, or
``unshare --user --map-root-user --net`` when not root), in which not even
loopback is up. Nothing of the caller's environment is passed on: the
variables are the ones below, which make a backend's output depend on the
source only (reproducible-builds.org's ``SOURCE_DATE_EPOCH``, the C.UTF-8
locale, UTC, umask 022, a fixed hash seed). The backend's output goes to a log
file; a failure is reported with its last lines and the log's path, and a
failure that looks like a network access says so.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from photonpack.errors import BuildError

__all__ = ["BuildSettings", "HookFailed", "isolation_prefix", "run_hook"]

# Lines of the backend's output an error message quotes.
_TAIL = 8
# Exceptions a Python backend shows when a socket or name lookup finds no network.
_NETWORK_SIGNS = (
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Name or service not known",
    "No address associated with hostname",
    "nodename nor servname provided",
    "[Errno 101]",
    "[Errno -3]",
    "[Errno -2]",
)


class HookFailed(Exception):  # translated into a BuildError by the caller
    """The hook's process exited non-zero."""


class BuildSettings:
    """The fixed environment of every build process."""

    def __init__(self, *, venv: Path, home: Path, epoch: int) -> None:
        self.venv, self.home, self.epoch = venv, home, epoch

    def environ(self) -> dict[str, str]:
        """The whole environment of the hook process: nothing is inherited."""
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "VIRTUAL_ENV": str(self.venv),
            "HOME": str(self.home),
            "TMPDIR": str(self.home),
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "SOURCE_DATE_EPOCH": str(self.epoch),
            "PYTHONHASHSEED": "0",
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PIP_NO_INDEX": "1",  # a backend that shells out to pip finds no index either
            "PIP_CONFIG_FILE": os.devnull,
        }


@functools.lru_cache(maxsize=1)
def isolation_prefix() -> tuple[str, ...]:
    """The argv prefix that runs a command with no network; BuildError if this machine has none."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise BuildError(
            "building from source needs unshare(1) (util-linux) to cut the build off the "
            "network, and it is not installed; install util-linux, or provide wheels with "
            "--find-links so nothing is built"
        )
    tried = []
    candidates = [[unshare, "--net", "--"]] if os.geteuid() == 0 else []
    candidates.append([unshare, "--user", "--map-root-user", "--net", "--"])
    for prefix in candidates:
        done = subprocess.run(
            [*prefix, "true"], capture_output=True, text=True, check=False, timeout=30
        )
        if done.returncode == 0:
            return tuple(prefix)
        tried.append(f"{' '.join(prefix[1:-1])}: {done.stderr.strip() or done.returncode}")
    raise BuildError(
        "building from source needs a network namespace so that the build cannot reach any "
        f"host, and this machine refuses one ({'; '.join(tried)}); run photonpack build as "
        "root, or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), "
        "or provide wheels with --find-links so nothing is built"
    )


def run_hook(
    hook: str,
    *,
    source: Path,
    backend: str,
    backend_path: Sequence[str],
    settings: BuildSettings,
    log: Path,
    kwargs: Mapping[str, Any],
) -> Any:
    """Call ``hook`` of the backend with ``kwargs``; its return value. Raises HookFailed."""
    from pyproject_hooks import BuildBackendHookCaller

    prefix = isolation_prefix()
    environ = settings.environ()

    def runner(
        cmd: Sequence[str], cwd: str | None = None, extra_environ: Mapping[str, str] | None = None
    ) -> None:
        argv = [*prefix, "/bin/sh", "-c", 'umask 022 && exec "$@"', "sh", *cmd]
        with log.open("ab") as out:
            _run(argv, cwd, {**environ, **(extra_environ or {})}, out)

    caller = BuildBackendHookCaller(
        str(source),
        backend,
        backend_path=list(backend_path) or None,
        runner=runner,
        python_executable=str(settings.venv / "bin" / "python"),
    )
    with warnings.catch_warnings():
        # Warnings the backend raised come back through the hook caller: the log is theirs.
        warnings.simplefilter("ignore")
        return getattr(caller, hook)(**kwargs)


def _run(argv: Sequence[str], cwd: str | None, env: Mapping[str, str], out: IO[bytes]) -> None:
    done = subprocess.run(
        argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
        stderr=subprocess.STDOUT, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise HookFailed(done.returncode)


def tail(log: Path) -> list[str]:
    """The last lines of the backend's output, without the frames of Python tracebacks.

    The frames (indented, under ``Traceback ...``) stay in the log; the
    message keeps what the backend printed and the exception itself.
    """
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    said = [
        line
        for line in lines
        if line.strip() and not line[:1].isspace() and not line.startswith("Traceback ")
    ]
    return said[-_TAIL:]


def tried_network(lines: Sequence[str]) -> bool:
    """Whether the output shows a socket or name lookup that found no network."""
    return any(sign in line for line in lines for sign in _NETWORK_SIGNS)
