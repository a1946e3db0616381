"""A lock cannot drop a dependency: lock, lock --check, build and verify/run refuse it."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.archive import blob_member
from photonpack.cli import cli
from photonpack.lock.closure import closure_gaps
from photonpack.lock.pylock import LockedWheel, parse_lock
from photonpack.lock.sdist import LockedSdist
from tests.support.archives import make_archive
from tests.support.index import PackageIndex, add_serving_stack

X86 = "cp311-manylinux_2_28_x86_64"
ARM = "cp311-manylinux_2_28_aarch64"


def lock_text(
    packages: Sequence[tuple[str, str, Sequence[str], str | None]],
    *,
    requirements: Sequence[str] = (),
    serving: Sequence[str] = (),
    targets: Sequence[str] = (X86,),
) -> str:
    """A photonpack pylock file, written by hand: (name, version, dependencies, marker)."""
    blocks = []
    zeros = "0" * 64
    for name, version, dependencies, marker in packages:
        deps = ", ".join(f'{{ name = "{d}" }}' for d in dependencies)
        filename = f"{name}-{version}-py3-none-any.whl"
        wheel = (
            f'{{ name = "{filename}", url = "https://files.example.org/{filename}", '
            f'size = 10, hashes = {{ sha256 = "{zeros}" }} }}'
        )
        blocks.append(
            f"""
            [[packages]]
            name = "{name}"
            version = "{version}"
            {f"marker = {json.dumps(marker)}" if marker else ""}
            dependencies = [{deps}]
            wheels = [{wheel}]
            """
        )
    head = f"""
        lock-version = "1.0"
        created-by = "photonpack"
        {"".join(blocks)}
        [tool.photonpack]
        lock-format = 1
        inputs-digest = "sha256:{"0" * 64}"
        targets = {json.dumps(list(targets))}
        requirements = {json.dumps(list(requirements))}
        serving-requirements = {json.dumps(list(serving))}
        index = {{ index-url = "https://pypi.org/simple", extra-index-urls = [], find-links = [] }}
        """
    return textwrap.dedent(head)


def gaps(text: str, requires: dict[str, list[str]] | None = None) -> list[str]:
    lock = parse_lock(text, path=Path("pylock.test.toml"))

    def requires_dist(wheel: LockedWheel | LockedSdist) -> list[str] | None:
        return (requires or {}).get(wheel.name)

    return [str(g) for g in closure_gaps(lock, requires_dist=requires_dist if requires else None)]


ANYIO = [("anyio", "4.4.0", ["idna", "sniffio"], None), ("sniffio", "1.3.1", [], None)]


def test_a_closed_lock_has_no_gap() -> None:
    text = lock_text([*ANYIO, ("idna", "3.7", [], None)], requirements=["anyio>=4"])
    assert gaps(text, {"anyio": ["idna>=2.8", "sniffio>=1.1"]}) == []


def test_a_dependency_dropped_from_the_lock_is_a_gap() -> None:
    assert gaps(lock_text(ANYIO, requirements=["anyio>=4"])) == [
        f"anyio 4.4.0 needs idna on {X86}, but idna is not locked for it"
    ]


def test_a_serving_requirement_dropped_from_the_lock_is_a_gap() -> None:
    text = lock_text([("uvicorn", "0.30.0", [], None)], serving=["uvicorn>=0.29", "httptools>=0.6"])
    assert gaps(text) == [
        f"photonpack's serving stack needs httptools>=0.6 on {X86}, but httptools is not "
        "locked for it"
    ]


def test_a_photon_requirement_that_the_locked_version_misses_is_a_gap() -> None:
    assert gaps(lock_text([("beta", "1.0", [], None)], requirements=["beta>=2"])) == [
        f"the photon needs beta>=2 on {X86}, but beta 1.0 is locked"
    ]


def test_a_dependency_locked_for_another_target_only_is_not_a_gap() -> None:
    packages = [
        ("alpha", "1.0", ["gamma"], None),
        ("gamma", "0.5", [], 'platform_machine == "aarch64"'),
    ]
    assert gaps(lock_text(packages, requirements=["alpha"], targets=[X86, ARM])) == []


def test_requires_dist_is_checked_under_the_targets_markers() -> None:
    text = lock_text([("alpha", "1.0", [], None)], requirements=["alpha"], targets=[X86, ARM])
    requires = {
        "alpha": [
            "beta>=2",
            'winonly; sys_platform == "win32"',
            'armdep; platform_machine == "aarch64"',
        ]
    }
    assert gaps(text, requires) == [
        f'alpha 1.0 needs armdep; platform_machine == "aarch64" on {ARM}, but armdep is not '
        "locked for it",
        f"alpha 1.0 needs beta>=2 on {ARM}, but beta is not locked for it",
        f"alpha 1.0 needs beta>=2 on {X86}, but beta is not locked for it",
    ]


def test_requires_dist_extras_count_where_a_requirer_asks_for_them() -> None:
    packages: list[tuple[str, str, Sequence[str], str | None]] = [
        ("omega", "1.0", [], None),
        ("uses", "1.0", [], None),
    ]
    requires = {"omega": ['beta; extra == "fast"'], "uses": ["omega[fast]"]}
    assert gaps(lock_text(packages, requirements=["omega"]), {"omega": requires["omega"]}) == []
    assert gaps(lock_text(packages, requirements=["omega", "uses"]), requires) == [
        f'omega 1.0 needs beta; extra == "fast" on {X86}, but beta is not locked for it'
    ]


# -- the commands -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("closure-index")).start()
    add_serving_stack(served)
    served.add("needy", "1.0", requires=["needed>=2"])
    served.add("needed", "2.0")
    yield served
    served.stop()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def locked_photon(index: PackageIndex, directory: Path) -> tuple[list[str], Path]:
    photon = directory / "svc.py"
    photon.write_text(
        "from photonpack import Photon\n\n\nclass Svc(Photon):\n"
        "    requirement_dependency = ['needy']\n"
    )
    common = ["-m", str(photon), "--index-url", index.url, "--target", X86]
    assert run("lock", *common)[0] == 0
    return common, directory / "pylock.svc.toml"


def drop_package(text: str, name: str) -> str:
    blocks = text.split("[[packages]]\n")
    kept = [b for b in blocks if not b.startswith(f'name = "{name}"\n')]
    assert len(kept) == len(blocks) - 1
    return "[[packages]]\n".join(kept)


def test_lock_check_lock_and_build_locked_refuse_a_lock_that_dropped_a_dependency(
    index: PackageIndex, tmp_path: Path
) -> None:
    common, lock = locked_photon(index, tmp_path)
    lock.write_text(drop_package(lock.read_text(), "needed"))
    error = (
        f"error: lock file {lock} is incomplete: needy 1.0 needs needed on {X86}, but needed "
        "is not locked for it; lock again with photonpack lock --upgrade (or delete the lock "
        "and run photonpack lock)\n"
    )
    assert run("lock", "--check", *common) == (1, error)
    assert run("lock", *common) == (1, error)
    code, out = run("build", "--locked", "-o", str(tmp_path / "svc.photon"), *common)
    assert (code, out.splitlines()[-1] + "\n") == (1, error)
    assert not (tmp_path / "svc.photon").exists()

    assert run("lock", "--upgrade", *common)[0] == 0  # the fix the message names
    assert "needed" in {p.name for p in parse_lock(lock.read_text(), path=lock).packages}


def test_build_locked_refuses_a_wheel_dependency_the_lock_graph_hides(
    index: PackageIndex, tmp_path: Path
) -> None:
    common, lock = locked_photon(index, tmp_path)
    text = drop_package(lock.read_text(), "needed")
    text, edits = re.subn(
        r'dependencies = \[\s*\{ name = "needed" \},?\s*\]', "dependencies = []", text
    )
    assert edits == 1
    lock.write_text(text)
    assert run("lock", "--check", *common) == (0, "pylock.svc.toml is up to date\n")
    code, out = run("build", "--locked", "-o", str(tmp_path / "svc.photon"), *common)
    assert code == 1
    assert out.splitlines()[-1] == (
        f"error: lock file {lock} is incomplete: needy 1.0 needs needed>=2 on {X86}, but "
        "needed is not locked for it; lock again with photonpack lock --upgrade (or delete "
        "the lock and run photonpack lock)"
    )
    assert not (tmp_path / "svc.photon").exists()


def test_verify_and_run_refuse_an_archive_whose_lock_dropped_a_dependency(
    tmp_path: Path, photonpack_home: Path
) -> None:
    archive = make_archive(tmp_path, packages=[("needy", "1.0")], requires={"needy": ["needed>=2"]})
    lock_entry = archive.manifest.file(archive.manifest.lock)
    assert lock_entry is not None
    problem = (
        f"{blob_member(lock_entry.sha256)} (pylock.counter.toml): expected every dependency "
        f"locked: needy 1.0 needs needed>=2 on {X86}, found needed is not locked for it"
    )
    verified = CliRunner().invoke(cli, ["verify", str(archive.path)])
    assert (verified.exit_code, verified.stdout) == (3, f"FAIL {problem}\n")
    ran = CliRunner().invoke(cli, ["run", str(archive.path), "--port", "0"])
    assert ran.exit_code == 3
    assert f"failed verification: {problem}; " in ran.stderr  # one line
    assert not (photonpack_home / "envs").exists()
