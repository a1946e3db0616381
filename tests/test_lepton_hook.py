"""``import leptonai`` in plain Python, from photonpack's wheel: its ``.pth`` start-up hook.

Fresh virtual environments get photonpack from a wheel built from this tree
(not editable). Their dependencies come from this interpreter's site-packages,
added with a ``.pth`` line (which adds the directory, not its ``.pth`` files).
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.registry import free_port
from tests.support.serving import Served
from tests.support.wheels import build_wheel

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
COUNTER = ROOT / "examples" / "lepton_counter" / "counter.py"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--no-index", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("photonpack-*.whl")
    return built


@pytest.fixture(scope="module")
def make_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Callable[..., Path]:
    """A venv with photonpack's wheel and ``extra`` wheels installed; returns its python."""

    def make(name: str, *extra: Path) -> Path:
        venv = tmp_path_factory.mktemp(name)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        subprocess.run(
            [*pip, "--no-deps", "--no-index", str(wheel), *map(str, extra)],
            check=True,
            capture_output=True,
        )
        site = run(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        (Path(site) / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        return python

    return make


def run(python: Path, code: str, cwd: Path | None = None) -> str:
    """Run ``code`` with ``python``; by default in its venv, where no photonpack source is."""
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=cwd or python.parent.parent,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def python(make_venv: Callable[..., Path]) -> Path:
    return make_venv("plain")


def test_the_wheel_ships_the_hook_at_the_top_of_site_packages(python: Path) -> None:
    out = run(
        python,
        """
        import sys, photonpack, _photonpack_leptonai as hook
        print(photonpack.__file__.startswith(sys.prefix), hook.__file__.startswith(sys.prefix),
              type(sys.meta_path[-1]).__name__)
        """,
    )
    assert out == "True True LeptonaiFallbackFinder"


def test_the_client_snippet_imports_in_plain_python(python: Path) -> None:
    out = run(
        python,
        """
        import sys
        from leptonai.client import Client, local
        import leptonai, photonpack
        print(Client is photonpack.Client, local(), leptonai.__photonpack_shim__,
              "fastapi" in sys.modules)
        """,
    )
    assert out == "True http://localhost:8080 True False"


def test_in_process_debugging_imports_a_lepton_photon(python: Path) -> None:
    out = run(
        python,
        "from counter import Counter; c = Counter(); print(c.add(x=3), c.sub(x=1))",
        cwd=COUNTER.parent,
    )
    assert out == "3 2"


def test_python_counter_py_serves_and_the_lepton_client_calls_it(
    python: Path, tmp_path: Path
) -> None:
    port = free_port()
    # The example as it is, but on a free loopback port instead of 0.0.0.0:8080.
    source = COUNTER.read_text().replace(
        "Counter().launch()", f"Counter().launch(host='127.0.0.1', port={port})"
    )
    assert f"port={port}" in source
    (tmp_path / "counter.py").write_text(source)
    log = tmp_path / "log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([str(python), "counter.py"], cwd=tmp_path, stderr=stderr)
    served = Served(url="", name="", process=process, log=log)
    try:
        deadline = time.monotonic() + 30
        while not re.search(f"serving counter on http://127.0.0.1:{port}", served.stderr()):
            assert process.poll() is None and time.monotonic() < deadline, served.stderr()
            time.sleep(0.02)
        out = run(
            python,
            f"""
            from leptonai.client import Client, local
            c = Client(local(port={port}))
            print(c.add(x=3), c.add(x=5), c.sub(x=2))
            """,
        )
        assert out == "3 8 6"
    finally:
        assert served.stop() == 0


def test_a_real_leptonai_wins_over_the_hook(make_venv: Callable[..., Path], tmp_path: Path) -> None:
    stub = build_wheel(
        tmp_path, "leptonai", "0.27.3", files={"leptonai/__init__.py": "STUB = True\n"}
    )
    python = make_venv("real-leptonai", stub)
    out = run(
        python,
        """
        import leptonai
        try:
            import leptonai.client
        except ModuleNotFoundError as exc:
            missing = exc.name
        print(leptonai.STUB, getattr(leptonai, "__photonpack_shim__", False), missing)
        """,
    )
    assert out == "True False leptonai.client"


def test_serving_modules_are_not_imported_at_start_up(python: Path) -> None:
    out = run(python, "import sys; print(sorted(m for m in sys.modules if 'photonpack' in m))")
    assert out == "['_photonpack_leptonai']"
