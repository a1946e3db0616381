"""Option lines, -r/-c, --hash and uninstall in requirement_dependency, through ``photonpack lock``.

Each runs the real command against the tests' own index, as a user would.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.lock.lockfile import read_lock
from tests.support.index import PackageIndex, add_serving_stack
from tests.support.wheels import build_wheel

TARGET = "cp311-manylinux_2_28_x86_64"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("forms-index")).start()
    add_serving_stack(served)
    served.add("beta", "2.0")
    served.add("beta", "2.1")
    served.add("beta", "3.0rc1")
    served.add("needy", "1.0", requires=["heavy"])
    served.add("heavy", "1.0", requires=["light"])
    served.add("light", "1.0")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def extra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("extra-index")).start()
    served.add("epsilon", "1.0")
    yield served
    served.stop()


def write_photon(directory: Path, requirements: list[str]) -> Path:
    path = directory / "svc.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from photonpack import Photon

            class Svc(Photon):
                requirement_dependency = {requirements!r}
            """
        )
    )
    return path


def lock(photon: Path, *args: str, check: bool = False) -> tuple[int, str]:
    argv = ["lock", *(["--check"] if check else []), "-m", str(photon), "--target", TARGET, *args]
    result = CliRunner().invoke(cli, argv)
    return result.exit_code, result.output


def versions(photon: Path) -> dict[str, str]:
    locked = read_lock(photon.parent / "pylock.svc.toml")
    return {p.name: p.version for p in locked.packages}


def test_an_index_url_line_is_used_when_the_command_line_names_none(
    index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path, [f"-i {index.url}", "beta"])
    assert lock(photon)[0] == 0
    assert versions(photon)["beta"] == "2.1"
    tool = read_lock(tmp_path / "pylock.svc.toml").inputs
    assert (tool.index.index_url, tool.requirements) == (index.url, ("beta",))


def test_extra_index_find_links_and_pre_lines_reach_the_resolver(
    index: PackageIndex, extra: PackageIndex, tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    build_wheel(wheels, "zeta", "1.0")
    photon = write_photon(
        tmp_path,
        ["beta", "epsilon", "zeta", f"--extra-index-url={extra.url}", "-f ./wheels", "--pre"],
    )
    code, out = lock(photon, "--index-url", index.url)
    assert code == 0, out
    assert {k: versions(photon)[k] for k in ("beta", "epsilon", "zeta")} == {
        "beta": "3.0rc1", "epsilon": "1.0", "zeta": "1.0",
    }  # fmt: skip
    settings = read_lock(tmp_path / "pylock.svc.toml").inputs.index
    assert (settings.extra_index_urls, settings.find_links, settings.pre) == (
        (extra.url,), (str(wheels),), True,
    )  # fmt: skip
    assert lock(photon, "--index-url", index.url) == (0, "pylock.svc.toml is up to date\n")


def test_requirements_and_constraints_files_and_an_edit_makes_the_lock_stale(
    index: PackageIndex, tmp_path: Path
) -> None:
    (tmp_path / "requirements.txt").write_text("beta\n-c constraints.txt\n")
    (tmp_path / "constraints.txt").write_text("beta<2.1\nlight==1.0\n")
    photon = write_photon(tmp_path, ["-r requirements.txt"])
    assert lock(photon, "--index-url", index.url)[0] == 0
    found = versions(photon)
    assert found["beta"] == "2.0" and "light" not in found  # a constraint requires nothing
    (tmp_path / "constraints.txt").write_text("beta<3\n")
    assert lock(photon, "--index-url", index.url, check=True) == (
        1,
        "error: pylock.svc.toml is stale: constraints changed (added beta<3; removed beta<2.1, "
        "light==1.0); run photonpack lock\n",
    )
    assert lock(photon, "--index-url", index.url)[0] == 0
    assert versions(photon)["beta"] == "2.0"  # kept: still allowed, like pip-compile


def test_a_matching_hash_locks_and_a_wrong_one_is_refused_naming_both(
    index: PackageIndex, tmp_path: Path
) -> None:
    wheel = index.files_dir / "beta-2.0-py3-none-any.whl"
    good = hashlib.sha256(wheel.read_bytes()).hexdigest()
    photon = write_photon(tmp_path, [f"beta==2.0 --hash=sha256:{good}"])
    assert lock(photon, "--index-url", index.url)[0] == 0
    before = (tmp_path / "pylock.svc.toml").read_bytes()
    bad = "0" * 64
    write_photon(tmp_path, [f"beta==2.0 --hash=sha256:{bad}"])
    assert lock(photon, "--index-url", index.url) == (
        3,
        f"error: requirement 'beta==2.0' allows --hash=sha256:{bad}, but the index's "
        f"beta-2.0-py3-none-any.whl has sha256:{good}; nothing was written: check the file, "
        "and correct the --hash if it is the right one\n",
    )
    assert (tmp_path / "pylock.svc.toml").read_bytes() == before


def test_an_uninstall_line_keeps_a_pulled_in_package_out_of_the_lock(
    index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path, ["needy", "uninstall heavy"])
    code, out = lock(photon, "--index-url", index.url)
    assert code == 0, out
    locked = read_lock(tmp_path / "pylock.svc.toml")
    names = {p.name for p in locked.packages}
    assert "needy" in names and "heavy" not in names and "light" in names
    needy = next(p for p in locked.packages if p.name == "needy")
    assert needy.dependencies == ()
    assert locked.inputs.exclusions == ("heavy",)
    assert 'exclusions = [\n    "heavy",\n]' in (tmp_path / "pylock.svc.toml").read_text()
    assert lock(photon, "--index-url", index.url, check=True) == (
        0, "pylock.svc.toml is up to date\n",
    )  # fmt: skip


def test_an_unsupported_option_is_refused_before_any_resolver_runs(tmp_path: Path) -> None:
    photon = write_photon(tmp_path, ["beta", "--no-index"])
    assert lock(photon, "--index-url", "http://127.0.0.1:9/simple") == (
        1,
        "error: requirement_dependency line '--no-index' of Svc is pip's option --no-index, "
        "which photonpack does not read; lock with --find-links and no index, or drop it\n",
    )
    assert not (tmp_path / "pylock.svc.toml").exists()


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("x @ git+http://127.0.0.1:9/x.git@v1", "http://127.0.0.1:9/x.git"),
        ("y @ http://127.0.0.1:9/y-1.0.tar.gz", "http://127.0.0.1:9/y-1.0.tar.gz"),
    ],
)
def test_a_source_that_cannot_be_fetched_is_one_line_naming_it(
    tmp_path: Path, line: str, said: str
) -> None:
    photon = write_photon(tmp_path, [line])
    code, output = lock(photon, "--index-url", "http://127.0.0.1:9/simple")
    assert code == 1 and output.startswith("error: ") and output.count("\n") == 1, output
    assert said in output
    assert not (tmp_path / "pylock.svc.toml").exists()


def test_a_path_that_is_not_a_project_and_hg_are_said_first(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    photon = write_photon(tmp_path, ["./notes"])
    assert lock(photon, "--index-url", "http://127.0.0.1:9/simple") == (
        1,
        f"error: local project ./notes ({tmp_path / 'notes'}) is not a Python project: it has "
        "no pyproject.toml, setup.py or setup.cfg; point the line at the project's root\n",
    )
    write_photon(tmp_path, ["hg+https://host/repo@tip"])
    assert lock(photon, "--index-url", "http://127.0.0.1:9/simple") == (
        1,
        "error: requirement_dependency line 'hg+https://host/repo@tip' of Svc is a hg "
        "requirement; photonpack fetches git repositories only: use a git mirror of it, or a "
        "wheel and --find-links\n",
    )


def test_a_built_archive_records_the_exclusion_and_a_hash_line_stays_direct(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    needy = build_wheel(real_index.files_dir, "needy-x", "1.0", requires=["heavy-x"])
    build_wheel(real_index.files_dir, "heavy-x", "1.0")
    pinned = f"needy-x==1.0 --hash=sha256:{hashlib.sha256(needy.read_bytes()).hexdigest()}"
    photon = write_photon(tmp_path, [pinned, "uninstall heavy-x"])
    result = CliRunner().invoke(
        cli, ["build", "-m", str(photon), "--index-url", real_index.url, "--json",
              "-o", str(tmp_path / "svc.photon")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    archive = str(tmp_path / "svc.photon")
    manifest = json.loads(
        subprocess.run(["tar", "--zstd", "-xOf", archive, "photon.json"],
                       capture_output=True, check=True).stdout
    )  # fmt: skip
    assert manifest["photon"]["exclusions"] == ["heavy-x"]
    wheels = {w["name"] for w in manifest["wheels"]}
    assert "needy-x" in wheels and "heavy-x" not in wheels
    inspected = CliRunner().invoke(cli, ["inspect", archive])
    assert "excluded  heavy-x\n" in inspected.output
    assert CliRunner().invoke(cli, ["verify", archive]).exit_code == 0
    sbom = json.loads(CliRunner().invoke(cli, ["sbom", archive]).stdout)
    root = sbom["metadata"]["component"]["bom-ref"]
    direct = next(d["dependsOn"] for d in sbom["dependencies"] if d["ref"] == root)
    assert "wheel:needy_x-1.0-py3-none-any.whl" in direct  # a --hash line is still direct
