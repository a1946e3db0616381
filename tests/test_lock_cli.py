"""The photonpack lock command: messages and exit codes, run as a user would."""

from __future__ import annotations

import hashlib
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.lock.lockfile import read_lock
from photonpack.serving.requirements import SERVING_REQUIREMENTS
from tests.support.index import PackageIndex, add_serving_stack

TARGET = "cp311-manylinux_2_28_x86_64"
LOCKED = 1 + len(SERVING_REQUIREMENTS)  # beta and a stand-in for each serving requirement


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("cli-index")).start()
    add_serving_stack(served)
    served.add("beta", "2.0")
    yield served
    served.stop()


def write_photon(directory: Path, requirements: list[str]) -> Path:
    path = directory / "counter.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from photonpack import Photon

            class Counter(Photon):
                requirement_dependency = {requirements!r}
            """
        )
    )
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_lock_then_up_to_date_then_check(index: PackageIndex, tmp_path: Path) -> None:
    photon = write_photon(tmp_path, ["beta"])
    common = ["-m", str(photon), "--index-url", index.url, "--target", TARGET]
    code, out = run("lock", *common)
    lock_path = tmp_path / "pylock.counter.toml"
    assert (code, out) == (
        0,
        f"locked {LOCKED} packages, {LOCKED} wheels for {TARGET} -> {lock_path}\n",
    )
    for wheel in read_lock(lock_path).wheels():
        with urllib.request.urlopen(wheel.url) as response:
            assert hashlib.sha256(response.read()).hexdigest() == wheel.sha256
    assert run("lock", *common) == (0, "pylock.counter.toml is up to date\n")
    assert run("lock", "--check", *common) == (0, "pylock.counter.toml is up to date\n")

    write_photon(tmp_path, ["beta", "uvicorn[standard]"])
    code, out = run("lock", "--check", *common)
    assert (code, out) == (
        1,
        "error: pylock.counter.toml is stale: requirement_dependency changed "
        "(added uvicorn[standard]); run photonpack lock\n",
    )


def test_check_without_lock_fails(index: PackageIndex, tmp_path: Path) -> None:
    photon = write_photon(tmp_path, ["beta"])
    code, out = run("lock", "--check", "-m", str(photon), "--index-url", index.url)
    assert (code, out) == (1, "error: pylock.counter.toml does not exist; run photonpack lock\n")


def test_output_and_name_options(index: PackageIndex, tmp_path: Path) -> None:
    photon = write_photon(tmp_path, ["beta"])
    out_file = tmp_path / "locks" / "pylock.mine.toml"
    out_file.parent.mkdir()
    code, _ = run(
        "lock", "-m", str(photon), "-o", str(out_file), "--index-url", index.url, "--target", TARGET
    )
    assert code == 0 and out_file.is_file()
    code, _ = run(
        "lock", "-m", str(photon), "-n", "other", "--index-url", index.url, "--target", TARGET
    )
    assert code == 0 and (tmp_path / "pylock.other.toml").is_file()


def test_bad_target_is_one_line_error(tmp_path: Path) -> None:
    photon = write_photon(tmp_path, ["beta"])
    assert run("lock", "-m", str(photon), "--target", "py3") == (
        1,
        "error: invalid target 'py3': expected <interpreter>-<platform>, "
        "e.g. cp311-manylinux_2_28_x86_64 or 3.12-macosx_11_0_arm64\n",
    )


def test_resolution_error_is_one_message_without_pip_noise(
    index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path, ["beta", "nosuch"])
    assert run("lock", "-m", str(photon), "--index-url", index.url, "--target", TARGET) == (
        1,
        "error: unknown package 'nosuch': no index or find-links location offers it; "
        "check the spelling, or pass --index-url/--find-links for a private package\n",
    )
    assert not (tmp_path / "pylock.counter.toml").exists()


def test_lock_json_says_what_was_locked_and_whether_it_changed(
    index: PackageIndex, tmp_path: Path
) -> None:
    import json

    photon = write_photon(tmp_path, ["beta"])
    common = ["-m", str(photon), "--index-url", index.url, "--target", TARGET, "--json"]
    results = []
    for args in (common, common, ["--check", *common]):
        code, out = run("lock", *args)
        assert code == 0, out
        results.append(json.loads(out))
    first, again, checked = results
    assert (first["changed"], again["changed"], checked["changed"]) == (True, False, False)
    assert first["path"] == str(tmp_path / "pylock.counter.toml")
    assert first["targets"] == [TARGET]
    assert {"name": "beta", "version": "2.0", "marker": None} in first["packages"]
    assert first["wheels"] == LOCKED
    assert again == checked == {**first, "changed": False}
