"""`image` links the wheels the store's environments hold installed, with the same bytes.

When this machine's Python has the base's ``major.minor`` (so it compiles the
image's bytecode), a wheel installed into a store environment by ``run`` gives
the image exactly the files a fresh install would: the image's environment is
then made of hard links to them, and its digest does not change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.archive import read_manifest, write_archive
from photonpack.cli import cli
from photonpack.image.base import read_oci_layout
from photonpack.image.checks import BasePython, base_facts
from photonpack.image.environment import image_interpreter, stage
from photonpack.image.rootfs import read_rootfs
from photonpack.install.cache import WheelCache
from photonpack.install.environment import ensure_environment, wheels_for_target
from photonpack.lock.target import Target
from photonpack.store import Store
from tests.support.images import write_base
from tests.support.registry import stage_photon

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the tiny base has CPython 3.11: run with 3.11"
)
TARGET = "cp311-manylinux_2_28_x86_64"
SITE = "lib/python3.11/site-packages"


def _image(archive: Path, base: Path, out: Path) -> str:
    result = CliRunner().invoke(
        cli, ["image", str(archive), "--base", f"oci:{base}", "--oci-layout", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["digest"])


def test_an_image_linked_from_a_store_environment_has_the_fresh_images_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = stage_photon(tmp_path, "linked", [("alpha", "1.0"), ("beta", "2.0")])
    archive = tmp_path / "linked.photon"
    with archive.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    base = write_base(tmp_path / "base")
    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "home"))
    fresh = _image(archive, base, tmp_path / "out-fresh")  # no environment in the store yet
    store = Store()
    manifest = read_manifest(archive)
    target = Target.parse(TARGET)
    env, created = ensure_environment(
        store, wheels=wheels_for_target(manifest, target), runtime=manifest.runtime
    )
    assert created
    assert _image(archive, base, tmp_path / "out-linked") == fresh

    # The staged environment is the store's files, linked: nothing was installed again.
    image_base = read_oci_layout(base, tag=None, architecture="amd64")
    facts = base_facts(read_rootfs(image_base), image_base.config)
    python = BasePython(executable="/usr/bin/python3.11", version="3.11.2", minor=11)
    own = facts.target(python)
    assert own is not None
    staged_env = stage(
        tmp_path / "stage",
        image_interpreter(python, own, facts),
        wheels=[(n, store.blob_path(s)) for s, n in wheels_for_target(manifest, target)],
        runtime_files={e.path: store.blob_path(e.sha256) for e in manifest.runtime},
        compiler=Path(getattr(sys, "_base_executable", None) or sys.executable),
        cache=WheelCache(store),
    )
    shared = (
        f"{SITE}/alpha/__init__.py",
        f"{SITE}/alpha/__pycache__/__init__.cpython-311.pyc",
        f"{SITE}/beta-2.0.dist-info/RECORD",
        f"{SITE}/photonpack/__init__.py",
    )
    for relative in shared:
        assert (staged_env.root / relative).stat().st_ino == (env / relative).stat().st_ino
    assert f"{SITE}/alpha-1.0.dist-info/RECORD" in staged_env.owned["alpha-1.0-py3-none-any.whl"]


def test_new_runtime_files_beside_linked_wheels_are_placed_and_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = stage_photon(tmp_path, "newer", [("alpha", "1.0")])
    archive = tmp_path / "newer.photon"
    with archive.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "home"))
    base = write_base(tmp_path / "base")
    _image(archive, base, tmp_path / "out")  # admits the archive
    store = Store()
    manifest = read_manifest(archive)
    target = Target.parse(TARGET)
    ensure_environment(store, wheels=wheels_for_target(manifest, target), runtime=manifest.runtime)
    image_base = read_oci_layout(base, tag=None, architecture="amd64")
    facts = base_facts(read_rootfs(image_base), image_base.config)
    python = BasePython(executable="/usr/bin/python3.11", version="3.11.2", minor=11)
    own = facts.target(python)
    assert own is not None
    newer = tmp_path / "runtime.py"
    newer.write_text("# a newer runtime\n")
    staged_env = stage(
        tmp_path / "stage",
        image_interpreter(python, own, facts),
        wheels=[(n, store.blob_path(s)) for s, n in wheels_for_target(manifest, target)],
        runtime_files={"photonpack/__init__.py": newer},
        compiler=Path(getattr(sys, "_base_executable", None) or sys.executable),
        cache=WheelCache(store),
    )
    runtime = [p for label, paths in staged_env.owned.items() if "runtime" in label for p in paths]
    assert f"{SITE}/photonpack/__pycache__/__init__.cpython-311.pyc" in runtime
    assert (staged_env.root / SITE / "photonpack/__init__.py").read_text() == "# a newer runtime\n"
