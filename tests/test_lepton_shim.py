"""The ``leptonai`` stand-in: Lepton's names, lazily, and never over a real leptonai.

Each test runs a fresh interpreter, so the import system starts clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from photonpack.serving.lepton import shim_modules

SHIM = "from photonpack.serving.lepton import install_leptonai_shim; install_leptonai_shim()\n"


def run_python(code: str, *, shim: bool = True, pythonpath: Path | None = None) -> str:
    """Run ``code`` in a fresh interpreter (after installing the shim) and return its output."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run(
        [sys.executable, "-c", (SHIM if shim else "") + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_name_of_every_shim_module_resolves() -> None:
    out = run_python(
        """
        import importlib, json
        from photonpack.serving.lepton import shim_modules
        found = {}
        for module, names in shim_modules().items():
            namespace = {}
            exec(f"from {module} import *", namespace)
            found[module] = sorted(n for n in namespace if not n.startswith("__"))
            assert all(getattr(importlib.import_module(module), n) is not None for n in names)
        print(json.dumps(found))
        """
    )
    assert json.loads(out) == shim_modules()


def test_lepton_photon_imports_resolve_to_photonpack() -> None:
    out = run_python(
        """
        import fastapi.staticfiles, photonpack
        from photonpack.serving import lepton_types
        from leptonai.photon import (
            File, FileParam, HTTPException, JPEGResponse, PNGResponse, Photon, StaticFiles,
            StreamingResponse, WAVResponse, get_file_content, handler, make_png_response,
        )
        from leptonai.photon.types import make_img_response, make_jpeg_response, to_bool
        from leptonai.photon.types.fileparam import FileParam as DeepFileParam
        print(Photon is photonpack.Photon, File is photonpack.File,
              StaticFiles is fastapi.staticfiles.StaticFiles,
              FileParam is DeepFileParam is lepton_types.FileParam,
              to_bool is lepton_types.to_bool)
        """
    )
    assert out == "True True True True True"


def test_leptonai_has_its_version_and_photon_as_an_attribute() -> None:
    out = run_python(
        """
        import leptonai, photonpack
        print(leptonai.__version__, leptonai.photon.Photon is photonpack.Photon,
              leptonai.photon.types.File is photonpack.File, leptonai.Client is photonpack.Client)
        """
    )
    assert out == f"0.27.3+photonpack.{__import__('photonpack').__version__} True True True"


def test_client_import_loads_neither_fastapi_nor_pydantic() -> None:
    out = run_python(
        """
        import sys
        from leptonai.client import Client, current, local
        print(local(), [m for m in ("fastapi", "pydantic", "starlette") if m in sys.modules])
        """
    )
    assert out == "http://localhost:8080 []"


def test_a_lepton_name_photonpack_lacks_is_an_attribute_error_listing_what_exists() -> None:
    out = run_python(
        """
        import leptonai.photon
        try:
            leptonai.photon.Worker
        except AttributeError as exc:
            print(exc)
        """
    )
    assert out == (
        "module 'leptonai.photon' has no attribute 'Worker': photonpack stands in for leptonai's "
        "photon SDK only (File, FileParam, HTTPException, JPEGResponse, PNGResponse, Photon, "
        "StaticFiles, StreamingResponse, WAVResponse, get_file_content, handler, "
        "make_png_response)"
    )


def test_a_real_leptonai_wins_and_gets_no_modules_of_ours(tmp_path: Path) -> None:
    (tmp_path / "leptonai").mkdir()
    (tmp_path / "leptonai" / "__init__.py").write_text("REAL = True\n")
    out = run_python(
        """
        from photonpack.serving.lepton import install_leptonai_shim
        installed = install_leptonai_shim()
        import leptonai
        try:
            import leptonai.client
        except ModuleNotFoundError as exc:
            missing = exc.name
        print(installed, leptonai.REAL, missing)
        """,
        shim=False,
        pythonpath=tmp_path,
    )
    assert out == "False True leptonai.client"
