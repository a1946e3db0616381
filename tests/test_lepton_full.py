"""The acceptance of issue 14 items 1-9: examples/lepton_full, a photon written for Lepton.

Served by ``run -m``, built, and served by ``run X.photon``; called each time
from plain Python with ``from leptonai.client import Client, local``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from photonpack.lock.declaration import read_declaration
from photonpack.serving.requirements import LEPTON_REQUIREMENTS
from photonpack.serving.source import parse_spec
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
    assert result.manifest.photon.lepton_dependencies == LEPTON_REQUIREMENTS
    assert {"loguru", "pillow", "huggingface-hub"} <= {w.name for w in result.manifest.wheels}
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


CMD_PHOTON = """\
    from leptonai.photon import Photon


    class Web(Photon):
        # As ComfyUI's and TabbyML's photons do: the platform runs this instead of handlers.
        cmd = ["uvicorn", "--host", "127.0.0.1", "--port", "{port}", "webapp:app"]
        exposed_port = {port}
        extra_files = ["webapp.py"]
        deployment_template = {{"env": {{"WHO": "the template"}}}}
"""
SITE = """\
import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/who")
def who() -> str:
    return os.environ["WHO"]
"""


def test_a_photon_with_cmd_runs_that_command_from_its_archive(
    real_index: PackageIndex, tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    port = _free_port()
    source = tmp_path / "src"
    source.mkdir()
    (source / "web.py").write_text(textwrap.dedent(CMD_PHOTON.format(port=port)))
    (source / "webapp.py").write_text(SITE)
    result = build_photon(
        real_index, source / "web.py", tmp_path / "web.photon", store=Store(tmp_path / "home")
    )
    assert result.manifest.photon.cmd == (
        "uvicorn", "--host", "127.0.0.1", "--port", str(port), "webapp:app",
    )  # fmt: skip
    assert result.manifest.photon.exposed_port == port
    served = serve_photon(str(result.path), wait=False)
    deadline = time.monotonic() + 60
    while True:  # uvicorn is the photon environment's own: found on PATH
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/who", timeout=5) as answer:
                assert answer.read() == b'"the template"'
                break
        except OSError:
            assert served.process.poll() is None, served.stderr()
            assert time.monotonic() < deadline, served.stderr()
            time.sleep(0.2)
    # The process is the command itself (exec): uvicorn drains, then re-raises SIGTERM.
    assert served.stop() == -15


def test_run_m_says_it_serves_the_handlers_of_a_photon_with_cmd(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    (tmp_path / "web.py").write_text(textwrap.dedent(CMD_PHOTON.format(port=_free_port())))
    (tmp_path / "webapp.py").write_text(SITE)
    served = serve_photon("web.py", cwd=tmp_path)
    assert "Web declares cmd ['uvicorn', '--host', '127.0.0.1', '--port', " in served.stderr()
    assert (
        "serving its handlers from source instead; photonpack run on the built archive runs "
        "that command, as Lepton did" in served.stderr()
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_lepton_dependencies_follow_the_leptonai_import_and_can_be_turned_off(
    tmp_path: Path,
) -> None:
    photons = {
        "lepton.py": "from leptonai.photon import Photon\nclass A(Photon):\n    pass\n",
        "off.py": "from leptonai.photon import Photon\n"
        "class B(Photon):\n    lepton_dependencies = False\n",
        "own.py": "from photonpack import Photon\nclass C(Photon):\n    pass\n",
        "on.py": "from photonpack import Photon\n"
        "class D(Photon):\n    lepton_dependencies = True\n",
    }
    found = {}
    for name, text in photons.items():
        (tmp_path / name).write_text(text)
        found[name] = read_declaration(parse_spec(str(tmp_path / name))).lepton_dependencies
    assert found == {
        "lepton.py": LEPTON_REQUIREMENTS,
        "off.py": (),
        "own.py": (),
        "on.py": LEPTON_REQUIREMENTS,
    }
