"""Bad lock files: one line naming the exact location, in every command, nothing written.

Every malformed lock is crafted as text from a real lock and given to each
command that reads a lock (lock, lock --check, build --locked, diff): each
exits 1 with the same message naming the exact location, and leaves the lock
as it was and no archive behind.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner, Result

from photonpack.cli import cli
from photonpack.lock.lockfile import parse_lock
from photonpack.serving.requirements import SERVING_REQUIREMENTS
from tests.support.index import PackageIndex, add_serving_stack

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

TARGET = "cp311-manylinux_2_28_x86_64"
# The good lock holds beta and a stand-in for each serving requirement; a mutation appends.
APPENDED = 1 + len(SERVING_REQUIREMENTS)
ROOT = Path(__file__).resolve().parents[1]
FIX = "; fix it, or delete it and run photonpack lock again"

PHOTON = """
from photonpack import Photon

class Counter(Photon):
    requirement_dependency = ["beta"]
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("faults-index")).start()
    add_serving_stack(served)
    served.add("beta", "2.0")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def good_lock(index: PackageIndex, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real lock of the counter photon, as TOML data, for the cases to break."""
    directory = tmp_path_factory.mktemp("good")
    (directory / "counter.py").write_text(PHOTON)
    assert run("lock", *options(directory / "counter.py", index)).exit_code == 0
    data: dict[str, Any] = tomllib.loads((directory / "pylock.counter.toml").read_text())
    assert data["packages"][0]["name"] == "beta"
    return data


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="photonpack")


def options(photon: Path, index: PackageIndex) -> list[str]:
    return ["-m", str(photon), "--index-url", index.url, "--target", TARGET]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation: ``data[a][b]... = value`` for ``path`` written as ``a.b.0.c``."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
        node: Any = data
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _url_climbing(data: dict[str, Any]) -> None:
    wheel = data["packages"][0]["wheels"][0]
    wheel["url"] = wheel["url"].replace("/files/", "/files/../../")


def _duplicate(data: dict[str, Any]) -> None:
    data["packages"].append(copy.deepcopy(data["packages"][0]))


def _second_version(data: dict[str, Any]) -> None:
    beta = copy.deepcopy(data["packages"][0])
    beta["version"] = "3.0"
    wheel = beta["wheels"][0]
    wheel["name"] = "beta-3.0-py3-none-any.whl"
    wheel["url"] = wheel["url"].replace("beta-2.0", "beta-3.0")
    data["packages"].append(beta)


def _packages_as_table(data: dict[str, Any]) -> None:
    data["packages"] = {"beta": data["packages"][0]}


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "version-range",
        _set("packages.0.version", ">=1.0"),
        "packages[0].version is not valid PEP 751: Invalid version: '>=1.0'",
    ),
    (
        "version-integer",
        _set("packages.0.version", 1),
        "packages[0].version is not valid PEP 751: Unexpected type int (expected str)",
    ),
    (
        "url-climbs",
        _url_climbing,
        "packages[0].wheels[0].url ('{index}/files/../../beta-2.0-py3-none-any.whl') has a "
        "'.' or '..' path segment: a lock names files, not relative paths",
    ),
    (
        "url-names-another-file",
        _set("packages.0.wheels.0.url", "{index}/files/evil.whl"),
        "packages[0].wheels[0].url ('{index}/files/evil.whl') names the file 'evil.whl', "
        "not the wheel 'beta-2.0-py3-none-any.whl'",
    ),
    (
        "extra-index-urls-integer",
        _set("tool.photonpack.index.extra-index-urls", 5),
        "tool.photonpack.index.extra-index-urls is an integer, but it must be an array",
    ),
    (
        "extra-index-url-ftp",
        _set("tool.photonpack.index.extra-index-urls", ["ftp://mirror/simple"]),
        "tool.photonpack.index.extra-index-urls[0] ('ftp://mirror/simple') cannot be used: "
        "it has the scheme ftp://; expected an http://, https:// or file:// URL",
    ),
    (
        "find-links-table",
        _set("tool.photonpack.index.find-links", {"a": 1}),
        "tool.photonpack.index.find-links is a table, but it must be an array",
    ),
    (
        "requirements-not-strings",
        _set("tool.photonpack.requirements", [1]),
        "tool.photonpack.requirements[0] is an integer, but it must be a string",
    ),
    (
        "hashes-integer",
        _set("packages.0.wheels.0.hashes", 123),
        "packages[0].wheels[0].hashes is not valid PEP 751: Unexpected type int (expected Mapping)",
    ),
    (
        "sha256-short",
        _set("packages.0.wheels.0.hashes", {"sha256": "abc"}),
        "packages[0].wheels[0].hashes.sha256 is 'abc', not 64 lowercase hex digits",
    ),
    (
        "sha256-missing",
        _set("packages.0.wheels.0.hashes", {"md5": "abc"}),
        "packages[0].wheels[0].hashes.sha256 is missing: it must be a string",
    ),
    (
        "size-negative",
        _set("packages.0.wheels.0.size", -1),
        "packages[0].wheels[0].size is -1, but a size cannot be negative",
    ),
    (
        "size-boolean",
        _set("packages.0.wheels.0.size", True),
        "packages[0].wheels[0].size is not valid PEP 751: Unexpected type bool (expected int)",
    ),
    (
        "wheels-strings",
        _set("packages.0.wheels", ["a"]),
        "packages[0].wheels[0] is not valid PEP 751: Unexpected type str (expected Mapping)",
    ),
    (
        "dependencies-string",
        _set("packages.0.dependencies", "x"),
        "packages[0].dependencies is not valid PEP 751: Unexpected type str (expected Sequence)",
    ),
    (
        "dependency-without-name",
        _set("packages.0.dependencies", [{}]),
        "packages[0].dependencies[0].name is missing: it must be a string",
    ),
    (
        "packages-table",
        _packages_as_table,
        "packages is not valid PEP 751: Unexpected type dict (expected Sequence)",
    ),
    (
        "duplicated-package",
        _duplicate,
        f"packages[{APPENDED}] repeats beta 2.0, already locked by packages[0]: "
        "a lock lists each package version once",
    ),
    (
        "two-versions-one-target",
        _second_version,
        f"packages[{APPENDED}] locks beta 3.0 for target {TARGET}, which packages[0] locks as "
        "beta 2.0: a lock holds one version of each package per target",
    ),
]


def _crafted(good: dict[str, Any], mutate: Callable[[dict[str, Any]], None], root: str) -> str:
    data = copy.deepcopy(good)
    mutate(data)
    text = tomli_w.dumps(data)
    return text.replace("{index}", root)


@pytest.mark.parametrize(("case", "mutate", "problem"), CASES, ids=[c[0] for c in CASES])
def test_every_command_refuses_a_malformed_lock_naming_its_location(
    index: PackageIndex,
    good_lock: dict[str, Any],
    tmp_path: Path,
    case: str,
    mutate: Callable[[dict[str, Any]], None],
    problem: str,
) -> None:
    photon = tmp_path / "counter.py"
    photon.write_text(PHOTON)
    lock = tmp_path / "pylock.counter.toml"
    text = _crafted(good_lock, mutate, index.root_url)
    lock.write_text(text)
    good = tmp_path / "good.toml"
    good.write_text(tomli_w.dumps(good_lock))
    archive = tmp_path / "counter.photon"
    expected = f"error: lock file {lock}: {problem.replace('{index}', index.root_url)}{FIX}\n"
    for args in (
        ["lock", *options(photon, index)],
        ["lock", "--check", *options(photon, index)],
        ["build", "--locked", "-o", str(archive), *options(photon, index)],
        ["diff", str(good), str(lock)],
    ):
        result = run(*args)
        assert (result.exit_code, result.stderr, result.stdout) == (1, expected, ""), args
        assert lock.read_text() == text
    assert not archive.exists()


def test_one_package_in_two_versions_for_different_targets_is_a_valid_lock(
    good_lock: dict[str, Any], tmp_path: Path
) -> None:
    data = copy.deepcopy(good_lock)
    _second_version(data)
    data["packages"][0]["marker"] = 'platform_machine == "x86_64"'
    data["packages"][APPENDED]["marker"] = 'platform_machine == "aarch64"'
    aarch64 = "cp311-manylinux_2_28_aarch64"
    data["tool"]["photonpack"]["targets"] = [TARGET, aarch64]
    lock = parse_lock(tomli_w.dumps(data), path=tmp_path / "pylock.counter.toml")
    chosen = {
        str(t): [w.filename for w in lock.wheels_for(t) if w.name == "beta"] for t in lock.targets
    }
    assert chosen == {
        TARGET: ["beta-2.0-py3-none-any.whl"],
        aarch64: ["beta-3.0-py3-none-any.whl"],
    }
