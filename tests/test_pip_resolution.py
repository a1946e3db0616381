"""Resolution through pip's internals: bounded versions, a moved internal, lying wheels.

pip and pip-tools are bounded in pyproject.toml to the versions these tests
run with; a moved internal (simulated by removing the attribute, as a release
that renamed it would) is one LockError naming the installed and supported
versions; a wheel whose METADATA contradicts its file name is named as such.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from packaging.requirements import Requirement

from photonpack.cli import cli
from photonpack.errors import LockError
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, lock_photon
from photonpack.lock.target import Target
from photonpack.serving.source import parse_spec
from tests.support.index import PackageIndex, add_serving_stack
from tests.support.wheels import build_wheel

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

TARGET = "cp311-manylinux_2_28_x86_64"
ROOT = Path(__file__).resolve().parents[1]

PHOTON = """
from photonpack import Photon

class Counter(Photon):
    requirement_dependency = ["beta"]
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("pip-index")).start()
    add_serving_stack(served)
    served.add("beta", "2.0")
    yield served
    served.stop()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="photonpack")


def options(photon: Path, index: PackageIndex) -> list[str]:
    return ["-m", str(photon), "--index-url", index.url, "--target", TARGET]


def test_a_wheel_whose_metadata_contradicts_its_file_name_is_named(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    add_serving_stack(package_index)
    real = build_wheel(tmp_path / "built", "liar", "3.0")
    mislabelled = package_index.files_dir / "liar-1.0-py3-none-any.whl"
    mislabelled.write_bytes(real.read_bytes())
    photon = tmp_path / "liar.py"
    photon.write_text(PHOTON.replace('"beta"', '"liar"'))
    result = run("lock", *options(photon, package_index))
    assert (result.exit_code, result.stderr) == (
        1,
        "error: liar-1.0-py3-none-any.whl on the index is mislabelled: its file name gives "
        "version '1.0', but the wheel's METADATA says '3.0'; it was not used "
        f"({package_index.file_url('liar-1.0-py3-none-any.whl')}): have the index fix or "
        "remove it, or require a version whose wheels agree\n",
    )
    assert not (tmp_path / "pylock.liar.toml").exists()


# -- pip and pip-tools: bounded, and a moved internal is one clear error ----------------


def _declared(name: str) -> Requirement:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = [Requirement(r) for r in data["project"]["dependencies"] if Requirement(r).name == name]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("name", ["pip", "pip-tools"])
def test_pip_and_pip_tools_are_bounded_to_the_versions_the_tests_run_with(name: str) -> None:
    requirement = _declared(name)
    assert any(s.operator == "<" for s in requirement.specifier)
    assert requirement.specifier.contains(importlib.metadata.version(name))


def test_setup_installs_the_pip_that_pyproject_allows() -> None:
    setup = (ROOT / "scripts" / "setup").read_text()
    [spec] = re.findall(r'pip install --quiet --upgrade "([^"]+)"', setup)
    assert Requirement(spec).specifier == _declared("pip").specifier


def _moved_message(error: str) -> str:
    pip, tools = _declared("pip").specifier, _declared("pip-tools").specifier
    bounds = [
        ",".join(str(s) for s in sorted(spec, key=lambda s: s.operator[0] == "<"))
        for spec in (pip, tools)
    ]
    return (
        f"photonpack cannot drive the installed pip: {error}; installed are "
        f"pip {importlib.metadata.version('pip')} and "
        f"pip-tools {importlib.metadata.version('pip-tools')}, photonpack supports "
        f"pip{bounds[0]} and pip-tools{bounds[1]}: install those "
        f"(pip install 'pip{bounds[0]}' 'pip-tools{bounds[1]}')"
    )


def test_a_moved_pip_internal_is_one_lock_error_naming_the_versions(
    index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pip._internal.index.package_finder import PackageFinder

    monkeypatch.delattr(PackageFinder, "process_project_url")  # as a pip release renaming it
    photon = tmp_path / "counter.py"
    photon.write_text(PHOTON)
    result = run("lock", *options(photon, index))
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {_moved_message('KeyError: ' + repr('process_project_url'))}\n",
    )
    assert not (tmp_path / "pylock.counter.toml").exists()


def test_a_moved_vendored_marker_function_is_the_same_error(
    index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pip._vendor.packaging import markers

    monkeypatch.delattr(markers, "default_environment")
    photon = tmp_path / "counter.py"
    photon.write_text(PHOTON)
    spec = parse_spec(str(photon))
    settings = LockOptions(
        index=IndexSettings(index_url=index.url), targets=(Target.parse(TARGET),)
    )
    with pytest.raises(LockError) as info:
        lock_photon(spec, settings)
    cause = info.value.__cause__
    assert isinstance(cause, ImportError | AttributeError)
    assert str(info.value) == _moved_message(f"{type(cause).__name__}: {cause}")
    assert not (tmp_path / "pylock.counter.toml").exists()


def test_only_wheels_no_target_tag_matches_are_dropped_from_index_pages() -> None:
    """The cold-lock fast path drops exactly what pip's finder would reject as platform_mismatch."""
    from photonpack.lock.shared import SharedIndex, installable

    target = Target.parse("cp311-manylinux_2_36_x86_64")
    tags = frozenset(str(tag) for tag in target.tags())
    keeps = {
        "numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": True,
        "numpy-2.2.6-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl": False,
        "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl": False,
        "numpy-2.2.6-cp311-cp311-win_amd64.whl": False,
        "six-1.16.0-py2.py3-none-any.whl": True,
        "cryptography-46.0.0-cp39-abi3-manylinux_2_34_x86_64.whl": True,
        "Pillow-9.0.0-CP311-CP311-MANYLINUX_2_28_X86_64.whl": True,  # tags compare lowercased
        "numpy-2.2.6.tar.gz": True,  # sdists are pip's to judge
        "not-a-wheel.whl": True,  # nor is a malformed name dropped: pip reports it
    }
    assert {name: installable(name, tags) for name in keeps} == keeps
    # --find-links pages are never filtered: pip caches their links for the whole process.
    shared = SharedIndex(indexes=("https://pypi.example/simple/",), preferences={})
    assert shared.shares("https://pypi.example/simple/numpy/")
    assert not shared.shares("https://mirror.example/wheels/")
    shared.close()
