"""The architecture, checked: no import cycle, a pinned facade, only the serving package travels."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import photonpack
from photonpack.buildfiles import serving_files
from tests.support.index import PackageIndex
from tests.support.stack import write_photon

PACKAGE = Path(photonpack.__file__).parent


def test_no_import_cycle_anywhere_in_photonpack() -> None:
    # Every import that runs, at the top of a module or inside a function. Annotations
    # under TYPE_CHECKING (the app naming the Photon type it serves) do not load anything.
    graph = grimp.build_graph("photonpack", exclude_type_checking_imports=True)
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.find_shortest_chain(importer=imported, imported=module) is not None
        }
    )
    assert cycles == []


def test_the_facade_is_the_public_api() -> None:
    assert sorted(photonpack.__all__) == [
        "Client",
        "ClientConnectionError",
        "ClientError",
        "ClientHTTPError",
        "ClientTimeoutError",
        "File",
        "HTTPException",
        "JPEGResponse",
        "PNGResponse",
        "Photon",
        "PhotonpackError",
        "StreamingResponse",
        "WAVResponse",
        "__version__",
        "handler",
        "local",
    ]
    assert (PACKAGE / "py.typed").is_file()


def test_only_the_serving_package_and_the_facade_travel() -> None:
    shipped = [rel for rel, _path in serving_files()]
    assert shipped[:3] == [
        "photonpack/__about__.py",
        "photonpack/__init__.py",
        "photonpack/py.typed",
    ]
    assert all(rel.startswith("photonpack/serving/") for rel in shipped[3:])
    assert "photonpack/serving/app.py" in shipped


def _copy_of_photonpack(destination: Path, edit: str) -> Path:
    """photonpack's own sources, copied, with a comment appended to ``edit``."""
    root = destination / "site"
    shutil.copytree(PACKAGE, root / "photonpack", ignore=shutil.ignore_patterns("__pycache__"))
    target = root / "photonpack" / edit
    target.write_text(target.read_text() + "\n# an edit that changes nothing it does\n")
    return root


def _build(index: PackageIndex, photon: Path, out: Path, pythonpath: Path | None) -> str:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else dict(os.environ)
    command = ["build", "-m", str(photon), "--index-url", index.url, "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "photonpack", *command],
        cwd=out.parent,  # not the checkout, which would come first on sys.path
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.mark.slow
def test_a_change_outside_the_serving_package_leaves_the_archive_identical(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    before = _build(real_index, photon, tmp_path / "before.photon", None)
    cli_edit = _copy_of_photonpack(tmp_path / "cli-edit", "cli/store.py")
    after = _build(real_index, photon, tmp_path / "after.photon", cli_edit)
    assert after == before
    assert (tmp_path / "after.photon").read_bytes() == (tmp_path / "before.photon").read_bytes()

    serving_edit = _copy_of_photonpack(tmp_path / "serving-edit", "serving/app.py")
    changed = _build(real_index, photon, tmp_path / "changed.photon", serving_edit)
    assert changed != before
