"""Sdist-only packages are locked as PEP 751 sdists, with their build environments hashed."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from photonpack.lock.buildsystem import read_build_system
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, lock_photon, read_lock
from photonpack.lock.pylock import load_toml
from photonpack.lock.sdist import DEFAULT_BACKEND, DEFAULT_BUILD_REQUIRES
from photonpack.lock.target import Target
from photonpack.serving.source import PhotonSpec, parse_spec
from tests.support.index import PackageIndex, add_serving_stack
from tests.support.repack import closure, repack
from tests.support.sdists import build_sdist

ARM_311 = Target.parse("cp311-manylinux_2_28_aarch64")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("sdist-index")).start()
    add_serving_stack(served)
    served.add("beta", "2.0")
    for name in closure(["hatchling"]):  # a real backend, as installed in the dev venv
        repack(name, served.files_dir)
    build_sdist(served.files_dir, "docopty", "0.6.2", requires=["beta>=2"])
    build_sdist(served.files_dir, "hatchy", "0.3", backend="hatchling")
    served.add("compiled", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    build_sdist(served.files_dir, "compiled", "1.0")
    build_sdist(served.files_dir, "needsc", "1.0", asks=["cython>=3"])  # not on the index
    for name, dynamic in (("staticky", ()), ("dynamicky", ("Requires-Dist",))):
        build_sdist(
            served.files_dir, name, "1.0", requires=["beta>=2"], metadata_version="2.2",
            dynamic=dynamic, marker=ran(served, name),
        )  # fmt: skip
    yield served
    served.stop()


def ran(index: PackageIndex, name: str) -> Path:
    """The file the backend of ``name``'s sdist leaves when it runs."""
    return index.files_dir.parent / f"{name}.backend-ran"


def photon(directory: Path, *requirements: str) -> PhotonSpec:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "svc.py").write_text(
        textwrap.dedent(
            f"""
            from photonpack import Photon

            class Svc(Photon):
                requirement_dependency = {list(requirements)!r}
            """
        )
    )
    return parse_spec("svc.py", root=directory)


def options(index: PackageIndex, *targets: Target) -> LockOptions:
    return LockOptions(index=IndexSettings(index_url=index.url), targets=targets)


def test_sdist_only_package_is_locked_as_a_pep751_sdist_with_its_dependencies(
    index: PackageIndex, tmp_path: Path
) -> None:
    result = lock_photon(photon(tmp_path, "docopty"), options(index))
    data = load_toml(result.path.read_text(), path=result.path)
    Pylock.from_dict(data)  # pip's and uv's reader accepts it
    entry = next(p for p in data["packages"] if p["name"] == "docopty")
    sdist = (index.files_dir / "docopty-0.6.2.tar.gz").read_bytes()
    import hashlib

    assert entry["sdist"] == {
        "name": "docopty-0.6.2.tar.gz",
        "url": index.file_url("docopty-0.6.2.tar.gz"),
        "size": len(sdist),
        "hashes": {"sha256": hashlib.sha256(sdist).hexdigest()},
    }
    assert "wheels" not in entry
    assert entry["dependencies"] == [{"name": "beta"}]  # from the sdist's prepared metadata
    assert entry["tool"]["photonpack"] == {
        "build-requires": [],
        "build-backend": "_backend",
        "backend-path": ["."],
        "build-packages": [],
    }
    assert {p["name"] for p in data["packages"]} >= {"docopty", "beta"}
    lock = read_lock(result.path)
    assert [s.filename for s in lock.sources_for(Target.host())] == ["docopty-0.6.2.tar.gz"]
    again = lock_photon(photon(tmp_path, "docopty"), options(index))
    assert not again.changed


def test_build_requirements_are_locked_as_hashed_wheels_for_the_build_machine(
    index: PackageIndex, tmp_path: Path
) -> None:
    result = lock_photon(photon(tmp_path, "hatchy"), options(index))
    lock = read_lock(result.path)
    (sdist,) = lock.sdists()
    assert sdist.build.requires == ("hatchling",)
    assert sdist.build.backend == "hatchling.build"
    names = [pin.partition("==")[0] for pin in sdist.build.packages]
    assert names == sorted(closure(["hatchling"]))
    assert lock.build_target == Target.host()
    built = {f"{p.name}=={p.version}": p for p in lock.build_packages}
    assert set(sdist.build.packages) == set(built)
    for package in built.values():
        (wheel,) = package.wheels
        assert (index.files_dir / wheel.filename).is_file()
    text = result.path.read_text()
    assert lock.to_text() == text  # the model round-trips the file byte for byte


def test_a_release_with_wheels_for_other_targets_only_is_not_built_from_its_sdist(
    index: PackageIndex, tmp_path: Path
) -> None:
    from photonpack.errors import NoCompatibleWheelError

    with pytest.raises(NoCompatibleWheelError) as info:
        lock_photon(photon(tmp_path, "compiled"), options(index, ARM_311))
    assert "compiled 1.0 has no wheel for target cp311-manylinux_2_28_aarch64" in str(info.value)


def test_an_sdist_without_pyproject_gets_setuptools_legacy_backend(tmp_path: Path) -> None:
    path = build_sdist(tmp_path, "old", "1.0", backend="legacy")
    system = read_build_system(path, path.name)
    assert (system.requires, system.backend) == (DEFAULT_BUILD_REQUIRES, DEFAULT_BACKEND)
    hatch = build_sdist(tmp_path, "new", "1.0", backend="hatchling")
    assert read_build_system(hatch, hatch.name).backend == "hatchling.build"


def test_pip_installs_from_a_lock_with_an_sdist(index: PackageIndex, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    result = lock_photon(photon(tmp_path, "docopty"), options(index))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    target = tmp_path / "site"
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-input", "--no-index",
         "--target", str(target), "-r", str(result.path)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    installed = {p.name for p in target.glob("*.dist-info")}
    assert {"docopty-0.6.2.dist-info", "beta-2.0.dist-info"} <= installed


def test_lock_says_how_many_sdists_build_will_build(index: PackageIndex, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from photonpack.cli import cli

    photon(tmp_path, "docopty")
    argv = ["lock", "-m", str(tmp_path / "svc.py"), "--index-url", index.url]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert ", 1 sdist to build for " in result.output


def test_an_sdist_whose_metadata_cannot_be_prepared_is_a_clear_error(
    index: PackageIndex, tmp_path: Path
) -> None:
    from photonpack.errors import ResolutionError

    with pytest.raises(ResolutionError) as info:
        lock_photon(photon(tmp_path, "needsc"), options(index))
    message = str(info.value)
    assert message.startswith(
        f"cannot prepare the metadata of the sdist of needsc while locking for {Target.host()}: "
    )
    assert message.endswith(
        "check that its build requirements are on the index, or give a wheel with --find-links"
    )
    assert not (tmp_path / "pylock.svc.toml").exists()


def test_an_sdist_only_package_is_locked_once_for_every_target(
    index: PackageIndex, tmp_path: Path
) -> None:
    result = lock_photon(photon(tmp_path, "docopty"), options(index, Target.host(), ARM_311))
    lock = read_lock(result.path)
    (package,) = [p for p in lock.packages if p.name == "docopty"]
    assert package.marker is None and package.sdist is not None
    for target in (Target.host(), ARM_311):
        assert [s.filename for s in lock.sources_for(target)] == ["docopty-0.6.2.tar.gz"]


def test_an_sdist_with_static_metadata_is_locked_without_running_its_backend(
    index: PackageIndex, tmp_path: Path
) -> None:
    result = lock_photon(photon(tmp_path, "staticky", "dynamicky"), options(index))
    lock = read_lock(result.path)
    for name in ("staticky", "dynamicky"):
        (package,) = [p for p in lock.packages if p.name == name]
        assert package.sdist is not None
        assert package.dependencies == ("beta",), name
    assert not ran(index, "staticky").exists()  # PKG-INFO 2.2, nothing Dynamic: read, not run
    assert ran(index, "dynamicky").exists()  # Dynamic: Requires-Dist: pip ran the backend


def test_static_pkg_info_is_only_trusted_from_metadata_2_2_without_dynamic_dependencies(
    tmp_path: Path,
) -> None:
    from photonpack.lock.sdistmeta import static_pkg_info

    cases = {
        ("2.1", ()): False,
        ("2.2", ()): True,
        ("2.4", ("License-Expression",)): True,
        ("2.2", ("requires-python",)): False,
        ("2.3", ("Provides-Extra",)): False,
    }
    for i, ((version, dynamic), static) in enumerate(cases.items()):
        path = build_sdist(tmp_path / str(i), "x", "1.0", metadata_version=version, dynamic=dynamic)
        assert (static_pkg_info(path, path.name) is not None) is static, (version, dynamic)
    assert static_pkg_info(tmp_path / "0" / "x-1.0.tar.gz", "x-1.0.zip") is None  # unreadable


def test_build_packages_keep_their_pins_on_relock_unless_upgraded(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    add_serving_stack(package_index)
    package_index.add("beta", "2.0")
    package_index.add("buildhelp", "1.0")
    pyproject = (
        '[build-system]\nrequires = ["buildhelp>=1"]\nbuild-backend = "_backend"\n'
        'backend-path = ["."]\n'
    )
    build_sdist(package_index.files_dir, "helped", "1.0", extra={"pyproject.toml": pyproject})

    def build_pins(lock_path: Path) -> dict[str, str]:
        return {p.name: p.version for p in read_lock(lock_path).build_packages}

    first = lock_photon(photon(tmp_path, "helped"), options(package_index))
    assert build_pins(first.path) == {"buildhelp": "1.0"}
    package_index.add("buildhelp", "1.1")
    spec = photon(tmp_path, "helped", "beta")  # a changed input: re-resolves
    kept = lock_photon(spec, options(package_index))
    assert kept.changed and build_pins(kept.path) == {"buildhelp": "1.0"}
    (helped,) = [p for p in kept.lock.packages if p.name == "helped"]
    assert helped.sdist is not None and helped.sdist.build.packages == ("buildhelp==1.0",)
    only = LockOptions(
        index=IndexSettings(index_url=package_index.url), upgrade_packages=("BuildHelp",)
    )
    assert build_pins(lock_photon(spec, only).path) == {"buildhelp": "1.1"}
    package_index.add("buildhelp", "1.2")
    every = LockOptions(index=IndexSettings(index_url=package_index.url), upgrade=True)
    assert build_pins(lock_photon(spec, every).path) == {"buildhelp": "1.2"}


def test_a_static_sdist_from_find_links_is_read_without_running_its_backend(
    index: PackageIndex, tmp_path: Path
) -> None:
    links = tmp_path / "links"
    marker = tmp_path / "linked.backend-ran"
    build_sdist(links, "linked", "1.0", requires=["beta>=2"], metadata_version="2.4", marker=marker)
    settings = IndexSettings(index_url=index.url, find_links=(str(links),))
    result = lock_photon(photon(tmp_path / "src", "linked"), LockOptions(index=settings))
    (package,) = [p for p in result.lock.packages if p.name == "linked"]
    assert package.sdist is not None and package.dependencies == ("beta",)
    assert not marker.exists()


def test_a_dynamic_sdist_has_its_backend_run_for_one_preparation_per_lock(
    index: PackageIndex, tmp_path: Path
) -> None:
    links = tmp_path / "links"
    marker = tmp_path / "older.backend-ran"
    build_sdist(links, "older", "1.0", requires=["beta>=2"], marker=marker)  # PKG-INFO 2.1
    alone = tmp_path / "alone.backend-ran"
    build_sdist(tmp_path / "alone", "alone", "1.0", marker=alone)
    settings = IndexSettings(index_url=index.url, find_links=(str(links), str(tmp_path / "alone")))
    lock_photon(photon(tmp_path / "one", "alone"), LockOptions(index=settings))
    once = len(alone.read_text().splitlines())  # one preparation: pip's hook calls, each a process
    result = lock_photon(photon(tmp_path / "src", "older", "docopty"), LockOptions(index=settings))
    (package,) = [p for p in result.lock.packages if p.name == "older"]
    assert package.sdist is not None and package.dependencies == ("beta",)
    # pip-tools resolves in rounds and photonpack in two passes: prepared once all the same
    assert len(marker.read_text().splitlines()) == once
