"""The acceptance of issue 14 items 1-9: examples/lepton_full, a photon written for Lepton.

Served by ``run -m``, built, and served by ``run X.photon``; called each time
from plain Python with ``from leptonai.client import Client, local``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.serving import Served
from tests.support.stack import build_photon

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lepton_full"

# What a Lepton user's own script does: plain Python, no photonpack import.
CALLER = textwrap.dedent(
    """\
    import base64, json, sys, threading, urllib.request
    from leptonai.client import Client, local

    port = int(sys.argv[1])
    c = Client(local(port=port))
    squares = [None] * 4

    def square(i):
        squares[i] = c.square(x=i)

    threads = [threading.Thread(target=square, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({
        "greet": c.greet(name="Ada", mood="curious"),
        "square": squares,
        "size": c.size(file=base64.b64encode(b"12345").decode()),
        "wait": c.wait(seconds=0.01),
        "web": urllib.request.urlopen(f"http://127.0.0.1:{port}/web/").read().decode(),
    }))
    """
)


def _call(served: Served, tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "caller.py"
    script.write_text(CALLER)
    done = subprocess.run(
        [sys.executable, str(script), str(served.port)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def test_lepton_full_runs_from_source_and_answers_a_plain_python_caller(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon("full.py", cwd=EXAMPLE)
    assert _call(served, tmp_path) == {
        "greet": {"text": "hello, Ada!", "extra": {"mood": "curious"}},
        "square": [0, 1, 4, 9],
        "size": 5,
        "wait": "waited 0.01 s",
        "web": "<h1>hello from Flask!</h1>",
    }


def test_lepton_full_built_and_run_from_its_archive(
    real_index: PackageIndex, tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    source = Path(shutil.copytree(EXAMPLE, tmp_path / "src"))
    result = build_photon(
        real_index, source / "full.py", tmp_path / "full.photon", store=Store(tmp_path / "home")
    )
    assert result.manifest.photon.deployment_template == {
        "resource_shape": "cpu.small",
        "env": {"GREETING": "hello", "PUNCTUATION": "!"},
        "secret": [],
    }
    # An environment variable already set wins over the template's default.
    served = serve_photon(str(result.path), args=("--env", "GREETING=hi"))
    answer = _call(served, tmp_path)
    assert answer["greet"] == {"text": "hi, Ada!", "extra": {"mood": "curious"}}
    assert answer["web"] == "<h1>hi from Flask!</h1>"
    assert [answer["square"], answer["size"], answer["wait"]] == [[0, 1, 4, 9], 5, "waited 0.01 s"]
