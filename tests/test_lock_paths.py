"""Locks that travel with the project: local wheels and directories relative to the lock file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, lock_photon, read_lock
from photonpack.lock.pylock import load_toml
from photonpack.lock.target import Target
from photonpack.serving.source import parse_spec
from tests.support.index import PackageIndex, add_serving_stack
from tests.support.wheels import build_wheel

TARGET = Target.parse("cp311-manylinux_2_28_x86_64")

SOURCE = """
from photonpack import Photon


class Svc(Photon):
    requirement_dependency = ["localdep"]

    @Photon.handler
    def ping(self) -> str:
        import localdep  # noqa: F401

        return "pong"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("paths-index")).start()
    add_serving_stack(served)
    yield served
    served.stop()


def project(root: Path) -> Path:
    """A photon needing ``localdep``, whose wheel is in the project's own ``wheels/``."""
    root.mkdir(parents=True)
    (root / "svc.py").write_text(textwrap.dedent(SOURCE).lstrip())
    build_wheel(root / "wheels", "localdep", "1.0")
    return root / "svc.py"


def invoke(*args: str, home: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"PHOTONPACK_HOME": str(home)})
    return result.exit_code, result.output


def test_a_moved_project_keeps_a_fresh_lock_and_builds_locked(
    real_index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    a, b = tmp_path / "a" / "proj", tmp_path / "b" / "deeper" / "proj"
    project(a)
    common = ("-m", "svc.py", "--index-url", real_index.url, "--find-links", "wheels")
    monkeypatch.chdir(a)
    assert invoke("lock", *common, home=home)[0] == 0
    text = (a / "pylock.svc.toml").read_text()
    assert 'path = "wheels/localdep-1.0-py3-none-any.whl"' in text
    assert 'find-links = [\n    "wheels",\n]' in text
    assert str(a) not in text

    b.parent.mkdir(parents=True)
    shutil.move(a, b)  # nothing is left at the old place
    monkeypatch.chdir(b)
    assert invoke("lock", "--check", *common, home=home) == (0, "pylock.svc.toml is up to date\n")
    code, out = invoke("build", "--locked", *common, "-o", str(tmp_path / "svc.photon"), home=home)
    assert code == 0, out
    assert (b / "pylock.svc.toml").read_text() == text

    (b / "pylock.svc.toml").unlink()
    assert invoke("lock", *common, home=home)[0] == 0
    assert (b / "pylock.svc.toml").read_text() == text


def test_a_lock_read_from_its_new_place_fetches_from_there(
    stack: PackageIndex, tmp_path: Path
) -> None:
    photon = project(tmp_path / "a")
    settings = IndexSettings(index_url=stack.url, find_links=(str(tmp_path / "a" / "wheels"),))
    lock_photon(parse_spec(str(photon)), LockOptions(index=settings, targets=(TARGET,)))
    shutil.move(tmp_path / "a", tmp_path / "b")
    lock = read_lock(tmp_path / "b" / "pylock.svc.toml")
    [local] = [w for w in lock.wheels() if w.name == "localdep"]
    assert local.path == "wheels/localdep-1.0-py3-none-any.whl"
    assert local.url == (tmp_path / "b" / "wheels" / local.filename).as_uri()
    assert lock.inputs.index.find_links == (str(tmp_path / "b" / "wheels"),)
    served = [w for w in lock.wheels() if w.name != "localdep"]
    assert served and all(w.path is None and w.url.startswith(stack.root_url) for w in served)


def test_locations_outside_the_project_are_relative_with_dot_dot(
    stack: PackageIndex, tmp_path: Path
) -> None:
    photon = tmp_path / "proj" / "svc.py"
    photon.parent.mkdir()
    photon.write_text(textwrap.dedent(SOURCE).lstrip())
    build_wheel(tmp_path / "wheelhouse", "localdep", "1.0")
    (tmp_path / "mirror").mkdir()
    settings = IndexSettings(
        index_url=(tmp_path / "mirror").as_uri(),
        find_links=((tmp_path / "wheelhouse").as_uri(), stack.files_dir.as_uri()),
    )
    result = lock_photon(parse_spec(str(photon)), LockOptions(index=settings, targets=(TARGET,)))
    data = load_toml(result.path.read_text(), path=result.path)
    index = data["tool"]["photonpack"]["index"]
    assert index["index-url"] == "../mirror"
    assert index["find-links"][0] == "../wheelhouse"
    localdep = next(p for p in data["packages"] if p["name"] == "localdep")
    assert localdep["wheels"][0]["path"] == "../wheelhouse/localdep-1.0-py3-none-any.whl"
    assert str(tmp_path) not in result.path.read_text()
    again = read_lock(result.path)
    assert again.inputs.index.index_url == (tmp_path / "mirror").as_uri()
    assert again.inputs_digest == result.lock.inputs_digest


def test_pip_installs_from_a_lock_with_relative_paths(stack: PackageIndex, tmp_path: Path) -> None:
    photon = project(tmp_path / "a")
    settings = IndexSettings(index_url=stack.url, find_links=(str(tmp_path / "a" / "wheels"),))
    lock_photon(parse_spec(str(photon)), LockOptions(index=settings, targets=(Target.host(),)))
    shutil.move(tmp_path / "a", tmp_path / "b")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-input", "--target",
         str(tmp_path / "site"), "-r", str(tmp_path / "b" / "pylock.svc.toml")],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "site" / "localdep-1.0.dist-info").is_dir()


def test_a_wheel_path_naming_another_file_is_refused(stack: PackageIndex, tmp_path: Path) -> None:
    photon = project(tmp_path / "a")
    settings = IndexSettings(index_url=stack.url, find_links=(str(tmp_path / "a" / "wheels"),))
    result = lock_photon(parse_spec(str(photon)), LockOptions(index=settings, targets=(TARGET,)))
    text = result.path.read_text().replace(
        'path = "wheels/localdep-1.0-py3-none-any.whl"', 'path = "wheels/evil.whl"'
    )
    result.path.write_text(text)
    code, out = invoke("diff", str(result.path), str(result.path), home=tmp_path / "home")
    assert code == 1
    assert "path ('wheels/evil.whl') names the file 'evil.whl'" in out
