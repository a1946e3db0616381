"""Issue 5's acceptance: an archive copied to a fresh place and served with no network at all.

``serve_offline`` copies the archive into a new directory, points
``$PHOTONPACK_HOME`` at an empty store there, and runs a driver inside
``unshare --net`` (a network namespace with only loopback, brought up by
the driver): it starts ``photonpack run``, waits for ``/healthz``, runs the
caller's Python snippet (``client`` is a ``photonpack.serving.client.Client``,
``curl(path, json=None)`` returns curl's output) and prints what it prints.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

__all__ = ["serve_offline"]

_DRIVER = """
import json, subprocess, sys, time, urllib.request
from photonpack.serving.client import Client

PORT = {port}
url = f"http://127.0.0.1:{{PORT}}"
server = subprocess.Popen([sys.executable, "-m", "photonpack", "run", {archive!r},
                           "--host", "127.0.0.1", "--port", str(PORT)])
for _ in range(2400):
    try:
        urllib.request.urlopen(url + "/healthz")
        break
    except OSError:
        if server.poll() is not None:
            sys.exit(f"photonpack run exited with {{server.returncode}}")
        time.sleep(0.05)


def curl(path, json_body=None):
    args = ["curl", "-s", url + path]
    if json_body is not None:
        args += ["-X", "POST", "-H", "Content-Type: application/json", "-d", json.dumps(json_body)]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


client = Client(url)
{snippet}
server.terminate()
sys.exit(server.wait())
"""


def serve_offline(archive: Path, workdir: Path, snippet: str, *, port: int = 18931) -> str:
    """Serve a copy of ``archive`` from an empty store with no network; run ``snippet``."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("this test needs root and unshare(1) (CI runs as root)")
    workdir.mkdir(parents=True)
    copy = Path(shutil.copy(archive, workdir / archive.name))
    driver = workdir / "driver.py"
    driver.write_text(
        _DRIVER.format(port=port, archive=str(copy), snippet=textwrap.dedent(snippet).strip())
    )
    done = subprocess.run(
        ["unshare", "--net", "--", "sh", "-c", f"ip link set lo up && {sys.executable} {driver}"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PHOTONPACK_HOME": str(workdir / "airgap-home")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
