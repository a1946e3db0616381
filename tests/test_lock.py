"""photonpack lock against a package index served by the test, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from photonpack.errors import (
    IntegrityError,
    LockFileError,
    NoCompatibleWheelError,
    PackageIndexError,
    ResolutionError,
    StaleLockError,
)
from photonpack.lock.download import fetch_wheels
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, check_lock, lock_photon, read_lock
from photonpack.lock.pylock import load_toml
from photonpack.lock.target import Target
from photonpack.serving.source import PhotonSpec, parse_spec
from tests.support.index import PackageIndex, add_serving_stack

X86_311 = Target.parse("cp311-manylinux_2_28_x86_64")
ARM_311 = Target.parse("cp311-manylinux_2_28_aarch64")
X86_312 = Target.parse("cp312-manylinux_2_28_x86_64")
ARM_312 = Target.parse("cp312-manylinux_2_28_aarch64")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """One index for the tests that only read it: the scenarios are all here."""
    served = PackageIndex(tmp_path_factory.mktemp("shared-index")).start()
    add_serving_stack(served)
    served.add("alpha", "1.0", requires=["beta>=2", 'gamma; platform_machine == "aarch64"'])
    served.add("beta", "2.0")
    served.add("beta", "2.1")
    for tag in ("cp311-cp311", "cp312-cp312"):
        served.add("gamma", "0.5", tag=f"{tag}-manylinux_2_17_aarch64")
        served.add("native", "3.0", tag=f"{tag}-manylinux_2_17_x86_64")
        served.add("native", "3.0", tag=f"{tag}-manylinux_2_17_aarch64")
    served.add("native", "3.0", tag="cp311-cp311-manylinux_2_34_x86_64")
    served.add_sdist("sourceonly", "1.0")
    served.add("x86only", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    served.add("picky", "1.0", requires=["beta==2.0"])
    yield served
    served.stop()


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


def options(index: PackageIndex, *targets: Target, **kwargs: object) -> LockOptions:
    return LockOptions(
        index=IndexSettings(index_url=index.url),
        targets=targets or (X86_311,),
        **kwargs,  # type: ignore[arg-type]
    )


def served_sha256(url: str) -> str:
    with urllib.request.urlopen(url) as response:
        return hashlib.sha256(response.read()).hexdigest()


def test_lock_writes_a_valid_pylock_whose_hashes_match_the_index(
    index: PackageIndex, tmp_path: Path
) -> None:
    result = lock_photon(photon(tmp_path, "alpha"), options(index))
    assert result.changed
    assert result.path == tmp_path / "pylock.svc.toml"
    data = load_toml(result.path.read_text(), path=result.path)
    Pylock.from_dict(data)  # the PEP 751 validator of packaging accepts it
    names = [p["name"] for p in data["packages"]]
    assert names == sorted(names)
    assert {"alpha", "beta", "fastapi", "uvicorn", "pydantic"} <= set(names)
    assert "gamma" not in names  # its marker is false on x86_64
    assert data["tool"]["photonpack"]["targets"] == ["cp311-manylinux_2_28_x86_64"]
    for wheel in result.lock.wheels():
        assert served_sha256(wheel.url) == wheel.sha256
    beta = next(p for p in data["packages"] if p["name"] == "beta")
    assert beta["version"] == "2.1"
    alpha = next(p for p in data["packages"] if p["name"] == "alpha")
    assert alpha["dependencies"] == [{"name": "beta"}]


def test_same_inputs_give_the_same_bytes(index: PackageIndex, tmp_path: Path) -> None:
    first = lock_photon(photon(tmp_path / "a", "alpha"), options(index, X86_311, ARM_312))
    second = lock_photon(photon(tmp_path / "b", "alpha"), options(index, X86_311, ARM_312))
    assert first.path.read_bytes() == second.path.read_bytes()


def test_relock_on_unchanged_inputs_touches_nothing(index: PackageIndex, tmp_path: Path) -> None:
    spec = photon(tmp_path, "alpha")
    lock_photon(spec, options(index))
    before = (tmp_path / "pylock.svc.toml").read_bytes()
    requests = len(index.requests)
    again = lock_photon(spec, options(index))
    assert not again.changed
    assert len(index.requests) == requests
    assert (tmp_path / "pylock.svc.toml").read_bytes() == before


def test_relock_answers_up_to_date_only_for_the_same_inputs_and_a_valid_lock(
    index: PackageIndex, tmp_path: Path
) -> None:
    path, links = tmp_path / "pylock.svc.toml", tmp_path / "wheels"
    links.mkdir()
    lock_photon(photon(tmp_path, "alpha"), options(index))
    first = path.read_text()

    def relocked(requirements: tuple[str, ...], settings: LockOptions) -> bool:
        """Whether lock resolved again (asked the index) rather than answering at once."""
        requests = len(index.requests)
        lock_photon(photon(tmp_path, *requirements), settings)
        return len(index.requests) > requests

    edges = {
        "an edited requirement": (("alpha", "beta<2.1"), options(index)),
        "a new target": (("alpha",), options(index, X86_311, X86_312)),
        "pre-releases allowed": (
            ("alpha",),
            LockOptions(index=IndexSettings(index_url=index.url, pre=True), targets=(X86_311,)),
        ),
        "a find-links directory added": (
            ("alpha",),
            LockOptions(
                index=IndexSettings(index_url=index.url, find_links=(str(links),)),
                targets=(X86_311,),
            ),
        ),
    }
    for edge, (spec, settings) in edges.items():
        path.write_text(first)
        assert relocked(spec, settings), edge
        assert path.read_text() != first, edge  # its inputs digest at least
    path.write_text(first)
    assert not relocked(("alpha",), options(index))
    # Edited by hand, its inputs digest kept: checked as every command checks it, never
    # called up to date when build would refuse it.
    path.write_text(first.replace('name = "beta"', 'name = "betta"', 1))
    with pytest.raises(LockFileError):
        lock_photon(photon(tmp_path, "alpha"), options(index))


def test_up_to_date_lock_imports_neither_pip_nor_asyncio_nor_other_commands(
    index: PackageIndex, tmp_path: Path
) -> None:
    spec = photon(tmp_path, "alpha")
    lock_photon(spec, options(index))
    script = textwrap.dedent(
        f"""
        import sys
        from photonpack.cli import cli  # main() would end the process (tests/test_cli_exit.py)
        sys.argv = ["photonpack", "lock", "-m", "svc.py", "--index-url", {index.url!r},
                    "--target", "cp311-manylinux_2_28_x86_64"]
        try:
            cli(prog_name="photonpack")
        except SystemExit:
            pass
        roots = ("pip", "piptools", "fastapi", "asyncio", "ssl", "zipfile", "tarfile")
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in roots)
        unused = ("photonpack.lock.standard", "photonpack.cli.serve")
        heavy += [m for m in unused if m in sys.modules]
        print("heavy:", heavy)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out == "pylock.svc.toml is up to date\nheavy: []\n"


def test_marker_for_aarch64_applies_to_the_aarch64_target_only(
    index: PackageIndex, tmp_path: Path
) -> None:
    lock = lock_photon(photon(tmp_path, "alpha"), options(index, X86_311, ARM_311)).lock
    gamma = [p for p in lock.packages if p.name == "gamma"]
    assert [(p.version, p.marker) for p in gamma] == [("0.5", 'platform_machine == "aarch64"')]
    assert "gamma" not in {w.name for w in lock.wheels_for(X86_311)}
    assert "gamma-0.5-cp311-cp311-manylinux_2_17_aarch64.whl" in {
        w.filename for w in lock.wheels_for(ARM_311)
    }


def test_four_targets_get_their_own_platform_wheels(index: PackageIndex, tmp_path: Path) -> None:
    targets = (X86_311, ARM_311, X86_312, ARM_312)
    lock = lock_photon(photon(tmp_path, "native"), options(index, *targets)).lock
    chosen = {
        str(t): next(w.filename for w in lock.wheels_for(t) if w.name == "native") for t in targets
    }
    assert chosen == {
        "cp311-manylinux_2_28_x86_64": "native-3.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "cp311-manylinux_2_28_aarch64": "native-3.0-cp311-cp311-manylinux_2_17_aarch64.whl",
        "cp312-manylinux_2_28_x86_64": "native-3.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "cp312-manylinux_2_28_aarch64": "native-3.0-cp312-cp312-manylinux_2_17_aarch64.whl",
    }
    native = next(p for p in lock.packages if p.name == "native")
    assert native.marker is None
    # Exactly the wheels some target needs: not the manylinux_2_34 one no target can use.
    assert len(native.wheels) == 4


def test_check_passes_on_fresh_lock_and_names_the_edit_when_stale(
    index: PackageIndex, tmp_path: Path
) -> None:
    spec = photon(tmp_path, "alpha")
    with pytest.raises(StaleLockError) as missing:
        check_lock(spec, options(index))
    assert str(missing.value) == "pylock.svc.toml does not exist; run photonpack lock"
    lock_photon(spec, options(index))
    check_lock(spec, options(index))
    spec = photon(tmp_path, "alpha", "beta<2.1")
    with pytest.raises(StaleLockError) as stale:
        check_lock(spec, options(index))
    assert str(stale.value) == (
        "pylock.svc.toml is stale: requirement_dependency changed (added beta<2.1); "
        "run photonpack lock"
    )
    with pytest.raises(
        StaleLockError, match=r"targets changed \(added cp311-manylinux_2_28_aarch64\)"
    ):
        check_lock(photon(tmp_path, "alpha"), options(index, X86_311, ARM_311))


def test_existing_pins_are_kept_unless_upgraded(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    add_serving_stack(package_index)
    package_index.add("beta", "2.0")
    spec = photon(tmp_path, "beta")
    lock_photon(spec, options(package_index))
    package_index.add("beta", "2.1")
    package_index.add("delta", "1.0")
    spec = photon(tmp_path, "beta", "delta")  # a changed input: re-resolves, keeps beta's pin
    kept = lock_photon(spec, options(package_index)).lock
    assert {p.name: p.version for p in kept.packages}["beta"] == "2.0"
    upgraded = lock_photon(spec, options(package_index, upgrade_packages=("Beta",))).lock
    assert {p.name: p.version for p in upgraded.packages}["beta"] == "2.1"


def test_unreadable_sdist_is_refused_and_previous_lock_kept(
    index: PackageIndex, tmp_path: Path
) -> None:
    lock_photon(photon(tmp_path, "beta"), options(index))
    before = (tmp_path / "pylock.svc.toml").read_bytes()
    with pytest.raises(ResolutionError) as info:
        lock_photon(photon(tmp_path, "sourceonly"), options(index))
    assert str(info.value) == (
        "cannot read the source distribution of sourceonly while locking for "
        "cp311-manylinux_2_28_x86_64 (not a gzip file); the index serves a broken sdist: "
        "require another version, or give a wheel with --find-links"
    )
    assert (tmp_path / "pylock.svc.toml").read_bytes() == before


def test_no_wheel_for_a_target_names_package_target_and_existing_tags(
    index: PackageIndex, tmp_path: Path
) -> None:
    with pytest.raises(NoCompatibleWheelError) as info:
        lock_photon(photon(tmp_path, "x86only"), options(index, X86_311, ARM_311))
    assert str(info.value) == (
        "x86only 1.0 has no wheel for target cp311-manylinux_2_28_aarch64; its wheels are tagged "
        "cp311-cp311-manylinux_2_17_x86_64; pick a target those wheels support, "
        "or require another version"
    )


def test_conflict_shows_what_the_resolver_found(index: PackageIndex, tmp_path: Path) -> None:
    with pytest.raises(ResolutionError) as info:
        lock_photon(photon(tmp_path, "beta>=2.1", "picky"), options(index))
    assert str(info.value) == (
        "conflicting requirements for cp311-manylinux_2_28_x86_64:\n"
        "  the photon requires beta>=2.1\n"
        "  picky 1.0 requires beta==2.0\n"
        "loosen one of these requirements, or pin a version that satisfies all of them"
    )


def test_unsatisfiable_version_lists_what_exists(index: PackageIndex, tmp_path: Path) -> None:
    with pytest.raises(ResolutionError) as info:
        lock_photon(photon(tmp_path, "beta>=3"), options(index))
    assert str(info.value) == "no version of beta matches beta>=3: available 2.0, 2.1"


def test_unknown_package_is_named(index: PackageIndex, tmp_path: Path) -> None:
    handlers = list(logging.getLogger().handlers)
    with pytest.raises(ResolutionError) as info:
        lock_photon(photon(tmp_path, "no-such-thing"), options(index))
    assert logging.getLogger().handlers == handlers  # pip's logging setup is undone
    assert str(info.value) == (
        "unknown package 'no-such-thing': no index or find-links location offers it; "
        "check the spelling, or pass --index-url/--find-links for a private package"
    )


def test_lock_ignores_the_machines_pip_configuration(
    index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.wheels import build_wheel

    build_wheel(tmp_path / "machine-wheels", "secret", "1.0")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "machine-wheels"))
    with pytest.raises(ResolutionError, match="unknown package 'secret'"):
        lock_photon(photon(tmp_path, "secret"), options(index))


def test_unreachable_index_names_url(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = IndexSettings(index_url=f"http://127.0.0.1:{port}/simple")
    with pytest.raises(PackageIndexError) as info:
        lock_photon(photon(tmp_path, "alpha"), LockOptions(index=settings, targets=(X86_311,)))
    assert f"package index http://127.0.0.1:{port}/simple/" in str(info.value)
    assert "pass --index-url URL, or --find-links DIR" in str(info.value)


def test_malformed_lock_is_reported_with_line_and_column(
    index: PackageIndex, tmp_path: Path
) -> None:
    spec = photon(tmp_path, "alpha")
    broken = 'lock-version = "1.0"\npackages = [\n  oops\n'
    (tmp_path / "pylock.svc.toml").write_text(broken)
    with pytest.raises(LockFileError) as info:
        lock_photon(spec, options(index))
    assert "is not valid TOML: Invalid value (at line 3, column 3)" in str(info.value)
    assert (tmp_path / "pylock.svc.toml").read_text() == broken


def test_tampered_index_fails_the_lock(package_index: PackageIndex, tmp_path: Path) -> None:
    add_serving_stack(package_index)
    wheel = package_index.add("beta", "2.0")
    package_index.tamper(wheel.name)
    with pytest.raises(IntegrityError) as info:
        lock_photon(photon(tmp_path, "beta"), options(package_index))
    message = str(info.value)
    assert message.startswith(
        "while locking for cp311-manylinux_2_28_x86_64, the index served bytes that do not "
        "match the sha256 it publishes:\n"
    )
    assert package_index.file_url(wheel.name) in message
    assert info.value.exit_code == 3
    assert not (tmp_path / "pylock.svc.toml").exists()


def test_find_links_directory_locks_without_an_index(tmp_path: Path) -> None:
    from tests.support.wheels import build_wheel

    wheels = tmp_path / "wheels"
    build_wheel(wheels, "beta", "2.0")
    index_dir = PackageIndex(tmp_path / "stack")  # never started: only its files are used
    add_serving_stack(index_dir)
    settings = IndexSettings(
        index_url=(tmp_path / "no-index").as_uri(),
        find_links=(str(wheels), str(index_dir.files_dir)),
    )
    lock = lock_photon(
        photon(tmp_path, "beta"), LockOptions(index=settings, targets=(X86_311,))
    ).lock
    beta = next(w for w in lock.wheels() if w.name == "beta")
    assert beta.url == (wheels / "beta-2.0-py3-none-any.whl").as_uri()
    assert beta.sha256 == hashlib.sha256((wheels / beta.filename).read_bytes()).hexdigest()


def test_pep503_html_index_gets_sizes_by_head(tmp_path: Path) -> None:
    html = PackageIndex(tmp_path / "html", html_only=True).start()
    try:
        add_serving_stack(html)
        wheel = html.add("beta", "2.0")
        lock = lock_photon(photon(tmp_path, "beta"), options(html)).lock
        beta = next(w for w in lock.wheels() if w.name == "beta")
        assert (beta.size, beta.sha256) == (
            wheel.stat().st_size,
            hashlib.sha256(wheel.read_bytes()).hexdigest(),
        )
    finally:
        html.stop()


def test_read_lock_round_trips(index: PackageIndex, tmp_path: Path) -> None:
    result = lock_photon(photon(tmp_path, "alpha"), options(index, X86_311, ARM_311))
    again = read_lock(result.path)
    assert again == result.lock
    assert again.to_text() == result.path.read_text()


def test_pip_installs_from_the_lock(index: PackageIndex, tmp_path: Path) -> None:
    result = lock_photon(photon(tmp_path, "alpha"), options(index, Target.host(), ARM_312))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    target_dir = tmp_path / "site"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-input",
            "--target",
            str(target_dir),
            "-r",
            str(result.path),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    installed = sorted(p.name for p in target_dir.glob("*.dist-info"))
    assert "alpha-1.0.dist-info" in installed
    assert "beta-2.1.dist-info" in installed
    assert not any(name.startswith("gamma") for name in installed)  # aarch64 only


def test_private_index_credentials_are_used_but_not_written(tmp_path: Path) -> None:
    private = PackageIndex(tmp_path / "private", auth=("user", "s3cret")).start()
    try:
        add_serving_stack(private)
        wheel = private.add("beta", "2.0")
        url = private.url.replace("http://", "http://user:s3cret@")
        settings = IndexSettings(index_url=url)
        result = lock_photon(
            photon(tmp_path, "beta"), LockOptions(index=settings, targets=(X86_311,))
        )
        text = result.path.read_text()
        assert "s3cret" not in text and "user@" not in text
        assert f'index-url = "{private.url}"' in text
        beta = next(w for w in result.lock.wheels() if w.name == "beta")
        got = fetch_wheels([beta], tmp_path / "cache", index=settings)
        assert got[beta.sha256].read_bytes() == wheel.read_bytes()
        with pytest.raises(PackageIndexError, match=r"HTTP 401"):
            fetch_wheels([beta], tmp_path / "other-cache")
        anonymous = LockOptions(index=IndexSettings(index_url=private.url), targets=(X86_311,))
        with pytest.raises(PackageIndexError) as refused:
            lock_photon(photon(tmp_path / "anon", "beta"), anonymous)
        assert str(refused.value) == (
            f"package index {private.url}/beta/ refused access (HTTP 401); give credentials "
            "in the URL: --index-url https://USER:PASSWORD@host/simple"
        )
    finally:
        private.stop()


def test_one_version_serves_every_target_whatever_their_order(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    # delta 2.0 exists for cp312 only: 1.0 serves both targets, in either order (issue 18.7).
    add_serving_stack(package_index)
    package_index.add("delta", "1.0")
    package_index.add("delta", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    texts = []
    for name, targets in (("ab", (X86_311, X86_312)), ("ba", (X86_312, X86_311))):
        result = lock_photon(photon(tmp_path / name, "delta"), options(package_index, *targets))
        assert [
            (p.name, p.version, p.marker) for p in result.lock.packages if p.name == "delta"
        ] == [("delta", "1.0", None)]
        texts.append(result.path.read_text())
    assert texts[0] == texts[1]


def test_targets_that_cannot_agree_get_their_own_version(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    add_serving_stack(package_index)
    package_index.add("epsilon", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    package_index.add("epsilon", "2.0", tag="cp311-cp311-manylinux_2_17_x86_64")
    lock = lock_photon(photon(tmp_path, "epsilon"), options(package_index, X86_312, X86_311)).lock
    assert [(p.version, p.marker) for p in lock.packages if p.name == "epsilon"] == [
        ("1.0", 'python_version == "3.12"'),
        ("2.0", 'python_version == "3.11"'),
    ]
    assert [w.filename for w in lock.wheels_for(X86_312) if w.name == "epsilon"] == [
        "epsilon-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"
    ]


def test_requires_python_is_checked_against_the_target(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    add_serving_stack(package_index)
    package_index.add("modern", "1.0", requires_python=">=3.12")
    with pytest.raises(NoCompatibleWheelError) as info:
        lock_photon(photon(tmp_path, "modern"), options(package_index, X86_312, X86_311))
    assert str(info.value) == (
        "every wheel of modern for cp311-manylinux_2_28_x86_64 needs Python >=3.12, but the "
        "target has Python 3.11; require a version of modern that supports it, or lock for "
        "another interpreter"
    )


def test_direct_wheel_url_with_hash_is_locked(index: PackageIndex, tmp_path: Path) -> None:
    wheel = index.files_dir / "beta-2.0-py3-none-any.whl"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    requirement = f"beta @ {index.file_url(wheel.name)}#sha256={digest}"
    lock = lock_photon(photon(tmp_path, requirement), options(index)).lock
    beta = next(w for w in lock.wheels() if w.name == "beta")
    assert (beta.url, beta.sha256, beta.size) == (
        index.file_url(wheel.name),
        digest,
        wheel.stat().st_size,
    )


def test_extra_index_url_is_searched(index: PackageIndex, tmp_path: Path) -> None:
    extra = PackageIndex(tmp_path / "extra").start()
    try:
        extra.add("zeta", "1.0")
        settings = IndexSettings(index_url=index.url, extra_index_urls=(extra.url,))
        lock = lock_photon(
            photon(tmp_path, "zeta"), LockOptions(index=settings, targets=(X86_311,))
        ).lock
        zeta = next(w for w in lock.wheels() if w.name == "zeta")
        assert zeta.url == extra.file_url("zeta-1.0-py3-none-any.whl")
    finally:
        extra.stop()


def test_foreign_or_invalid_pylock_is_reported_with_its_location(
    index: PackageIndex, tmp_path: Path
) -> None:
    result = lock_photon(photon(tmp_path, "beta"), options(index))
    text = result.path.read_text()
    foreign = text.split("[tool.photonpack]")[0]
    result.path.write_text(foreign)
    with pytest.raises(LockFileError) as info:
        read_lock(result.path)
    assert str(info.value) == (
        f"lock file {result.path}: tool.photonpack is missing: the file was not written by "
        "photonpack; fix it, or delete it and run photonpack lock again"
    )
    bad = text.replace('created-by = "photonpack"\n', "")
    result.path.write_text(bad)
    with pytest.raises(LockFileError) as invalid:
        read_lock(result.path)
    assert str(invalid.value) == (
        f"lock file {result.path}: created-by is not valid PEP 751: Missing required value; "
        "fix it, or delete it and run photonpack lock again"
    )


def test_extras_and_markers_of_the_photons_requirements_are_honoured(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    add_serving_stack(package_index)
    package_index.add("omega", "1.0", requires=['beta; extra == "fast"'], provides_extras=["fast"])
    package_index.add("beta", "2.0")
    package_index.add("armonly", "1.0")
    spec = photon(tmp_path, "omega[fast]", 'armonly; platform_machine == "aarch64"')
    lock = lock_photon(spec, options(package_index, X86_311, ARM_311)).lock
    found = {(p.name, p.marker) for p in lock.packages if p.name in {"omega", "beta", "armonly"}}
    assert found == {
        ("omega", None),
        ("beta", None),
        ("armonly", 'platform_machine == "aarch64"'),
    }
    omega = next(p for p in lock.packages if p.name == "omega")
    assert omega.dependencies == ("beta",)


def test_a_mirror_s_unadvertised_metadata_file_saves_downloading_big_wheels(
    package_index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without PEP 658 on the page pip downloads a wheel whole to read its METADATA (torch:
    539 MB); a ``.metadata`` file the mirror serves anyway is read instead, and one that
    disagrees with the wheel's name or version is ignored for the wheel itself."""
    from photonpack.lock import shared

    monkeypatch.setattr(shared, "BIG_WHEEL", 0)  # the stand-in wheels are tiny
    add_serving_stack(package_index)
    package_index.add("big", "1.0", requires=["small>=1"])
    package_index.add("small", "1.0")
    package_index.add("liar", "1.0", requires=["small>=1"])
    package_index.serve_metadata(
        "liar-1.0-py3-none-any.whl", b"Metadata-Version: 2.1\nName: liar\nVersion: 9.9\n"
    )
    package_index.unadvertised_metadata = True
    lock = lock_photon(photon(tmp_path, "big", "liar"), options(package_index)).lock
    assert {p.name: p.version for p in lock.packages}.keys() >= {"big", "small", "liar"}
    fetched = [path for path in package_index.requests if path.startswith("/files/")]
    assert "/files/big-1.0-py3-none-any.whl.metadata" in fetched
    # At most the range read begun beside the .metadata request; never pip's download after.
    assert fetched.count("/files/big-1.0-py3-none-any.whl") <= 1
    assert "/files/liar-1.0-py3-none-any.whl" in fetched  # its .metadata said 9.9: not trusted
    liar = next(p for p in lock.packages if p.name == "liar")
    assert liar.dependencies == ("small",)  # from the wheel's own METADATA
