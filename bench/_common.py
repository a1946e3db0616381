"""What the benchmarks share: the machine header, the realistic requirement set, tools.

Not a benchmark itself. Each ``bench/<name>.py`` puts the repository root on
``sys.path`` and imports ``bench._common`` (``bench`` is a namespace package),
so the benches run as plain scripts from any directory and mypy sees one
module name for this file.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BIN = Path(sys.executable).parent

# The realistic requirement set of the lock benchmark (issue 3), reused by build and run.
REQUIREMENTS = ["fastapi", "uvicorn", "numpy", "pydantic", "requests", "pillow", "scikit-learn"]

# Figures taken above this 1-minute load average are noisy on a 2-core machine.
HIGH_LOAD = 1.5
# Seconds a bench server may take to answer its first 200 (a cold install included).
SERVER_TIMEOUT = 180

SVC_SOURCE = '''
"""The realistic photon of the benchmarks: a counter that declares a real stack."""

from photonpack import Photon


class Svc(Photon):
    requirement_dependency = {requirements!r}

    def init(self) -> None:
        self.counter = 0

    @Photon.handler
    def add(self, x: int) -> int:
        self.counter += x
        return self.counter
'''


def header(title: str) -> float:
    """Print what a reader needs to judge the figures; return the 1-minute load average."""
    load1, load5, _ = os.getloadavg()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"== {title}")
    print(
        f"   {now}; {platform.node()}: {os.cpu_count()} cores, "
        f"{platform.machine()}, Python {platform.python_version()}; "
        f"load average {load1:.2f} (1 min) {load5:.2f} (5 min)"
    )
    if load1 > HIGH_LOAD:
        print(
            f"   WARNING: load average {load1:.2f} > {HIGH_LOAD}: other work shares the "
            "CPUs, figures are noisy (rerun when `uptime` shows less)"
        )
    print(flush=True)
    return load1


def clean_env(cache: Path) -> dict[str, str]:
    """The environment for a tool under test: no machine pip/uv config, its own caches."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["XDG_CACHE_HOME"] = str(cache)
    env["UV_CACHE_DIR"] = str(cache / "uv")
    env["UV_NO_CONFIG"] = "1"
    # Installed packages have compiled bytecode; this checkout does not (and the machine may
    # forbid writing it), so give every tool a bytecode cache outside the tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache.parent / "pycache")
    env["PYTHONWARNINGS"] = "ignore"
    if cert := os.environ.get("PIP_CERT"):
        env["PIP_CERT"] = cert
    return env


def compile_bytecode(work: Path) -> None:
    """Bytecode for photonpack (as ``BIN``'s Python imports it), its venv's packages and the
    standard library, in the bytecode cache of every tool that ``clean_env(work / ...)`` runs
    (with ``PYTHONPYCACHEPREFIX`` even the standard library's is looked for there), as an
    installation has it: "cold" means an empty HTTP cache, not compiling pip and ``email``."""
    code = (
        "import compileall, pathlib, re, sysconfig, photonpack; "
        "compileall.compile_dir(str(pathlib.Path(photonpack.__file__).parent), quiet=1); "
        "compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=1); "
        "compileall.compile_dir(sysconfig.get_paths()['stdlib'], quiet=1, "
        "rx=re.compile(r'/(tests?|idlelib|lib2to3|site-packages|ensurepip)/'))"
    )
    argv = [str(BIN / "python"), "-c", code]
    env = clean_env(work / "cache-compile")
    subprocess.run(argv, cwd=work, env=env, capture_output=True, check=False)  # not this tree


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall seconds of one command; a failure stops the benchmark with its output."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def tool_venv(work: Path, package: str) -> Path | None:
    """A throwaway venv under ``work`` with ``package`` from the public index; None if it fails."""
    venv = work / f"{package}-venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", package],
            env=clean_env(work / f"{package}-install-cache"),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            print(f"   (could not install {package}: {done.stderr.decode()[-300:]})")
            return None
    return venv / "bin"


def write_photon(directory: Path, requirements: list[str] = REQUIREMENTS) -> Path:
    """The realistic photon's source file in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "svc.py"
    source = textwrap.dedent(SVC_SOURCE).format(requirements=requirements)
    path.write_text(source.lstrip())
    return path


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhotonBuild:
    """How to build one realistic photon: the command, where, with what environment."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    archive: Path
    home: Path

    def run(self) -> float:
        """Build it (real downloads on the first build in ``home``); return the seconds."""
        return timed(self.argv, self.cwd, self.env)


def photon_build(
    work: Path, *, name: str = "svc", requirements: list[str] = REQUIREMENTS
) -> PhotonBuild:
    """A ``photonpack build`` of the realistic photon, with its store in ``work/home``."""
    project = work / f"project-{name}"
    write_photon(project, requirements)
    home = work / "home"
    env = clean_env(work / "cache")
    env["PHOTONPACK_HOME"] = str(home)
    archive = work / f"{name}.photon"
    argv = [str(BIN / "photonpack"), "build", "-m", "svc.py", "-n", name, "-o", str(archive)]
    return PhotonBuild(argv=argv, cwd=project, env=env, archive=archive, home=home)


def ratio(ours: float, peer: float) -> str:
    return f"{ours / peer:.2f}x" if peer else "n/a"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def target(label: str, value: float, limit: float | None = None, *, at_least: bool = False) -> str:
    """One ratio line: ``label``, the ratio, and the target with met / NOT met if there is one."""
    line = f"  {label:36s} {value:6.2f}x"
    if limit is None:
        return line
    met = value >= limit if at_least else value <= limit
    return f"{line}  (target {'>=' if at_least else '<='} {limit:.2f}: {verdict(met)})"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bench servers never listen elsewhere)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(
    argv: list[str], *, cwd: Path, port: int, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Start a server; return it and the seconds from process start to the first 200.

    ``/healthz`` on 127.0.0.1:``port`` is polled every 2 ms; a server that
    exits, or is not up within two minutes, stops the benchmark with its stderr.
    """
    # A file, not a pipe: a chatty server never blocks on it. The child keeps its own handle.
    with tempfile.TemporaryFile() as log:
        began = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{port}/healthz"
        while time.perf_counter() - began < SERVER_TIMEOUT:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return process, time.perf_counter() - began
            except OSError:
                if process.poll() is not None:
                    log.seek(0)
                    err = log.read().decode(errors="replace")[-2000:]
                    raise SystemExit(f"{argv[:4]} exited {process.returncode}:\n{err}") from None
                time.sleep(0.002)
    stop_server(process)
    raise SystemExit(f"{argv[:4]} answered no 200 on {url} within {SERVER_TIMEOUT} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (servers drain, then exit), and kill after 15 s."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
