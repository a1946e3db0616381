"""A wheel is what its file name says: in the manifest, the lock, its dist-info and METADATA."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.archive import blob_member
from photonpack.cli import cli
from photonpack.errors import IntegrityError
from photonpack.install.installer import create_environment
from photonpack.verify import verify_archive
from tests.support.archives import make_archive, with_lock, with_manifest
from tests.support.wheels import build_wheel
from tests.support.zipcraft import rewrite_member

EVIL = "evilpkg-1.0-py3-none-any.whl"
LIED_METADATA = b"Metadata-Version: 2.1\nName: requests\nVersion: 1.0\n"


def trust_message(filename: str, reason: str) -> str:
    return (
        f"wheel {filename} cannot be trusted: {reason}. The archive that carries it was "
        "built from a broken or tampered wheel; rebuild it from a clean package index."
    )


def test_install_refuses_a_wheel_whose_dist_info_names_another_version(tmp_path: Path) -> None:
    built = build_wheel(tmp_path / "wheels", "tinydep", "2.0")
    wheel = built.rename(built.with_name("tinydep-1.0-py3-none-any.whl"))
    with pytest.raises(IntegrityError) as info:
        create_environment(tmp_path / "env", wheels=[wheel], compile_bytecode=False)
    assert str(info.value) == trust_message(
        wheel.name, "its file name says tinydep 1.0 but its metadata directory is "
        "tinydep-2.0.dist-info"
    )  # fmt: skip
    assert not (tmp_path / "env").exists()


def test_install_refuses_a_wheel_whose_metadata_names_another_project(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "wheels", "evilpkg", "1.0")
    rewrite_member(wheel, "evilpkg-1.0.dist-info/METADATA", LIED_METADATA)
    with pytest.raises(IntegrityError) as info:
        create_environment(tmp_path / "env", wheels=[wheel], compile_bytecode=False)
    assert str(info.value) == trust_message(
        EVIL, "its file name says evilpkg 1.0 but its METADATA says Name: requests, Version: 1.0"
    )
    assert not (tmp_path / "env").exists()


def test_install_accepts_names_and_versions_that_normalise_alike(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "wheels", "Tiny.Dep", "1.0")  # tiny_dep-1.0-...
    rewrite_member(
        wheel,
        "tiny_dep-1.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: Tiny.Dep\nVersion: 1.0.0\n",
    )
    create_environment(tmp_path / "env", wheels=[wheel], compile_bytecode=False)
    assert (tmp_path / "env/pyvenv.cfg").is_file()


def test_verify_refuses_a_manifest_entry_naming_another_package(tmp_path: Path) -> None:
    archive = make_archive(tmp_path, packages=[("evilpkg", "1.0")])
    [wheel] = archive.manifest.wheels
    lying = dataclasses.replace(
        archive.manifest, wheels=(dataclasses.replace(wheel, name="requests"),)
    )
    path = with_manifest(archive, lying, tmp_path / "lying.photon")
    result = CliRunner().invoke(cli, ["verify", str(path)])
    assert result.exit_code == 3
    assert result.stdout == (
        f"FAIL {blob_member(wheel.sha256)} (wheel:{EVIL}): expected the project its file name "
        "names, evilpkg 1.0, found photon.json names requests 1.0\n"
    )


def test_verify_refuses_a_lock_entry_naming_another_package(tmp_path: Path) -> None:
    archive = make_archive(tmp_path, packages=[("evilpkg", "1.0")])
    text = archive.lock_text.replace('name = "evilpkg"', 'name = "requests"')
    assert text != archive.lock_text
    path = with_lock(archive, text, tmp_path / "lying.photon")
    result = verify_archive(path)
    assert result.manifest is not None
    lock_entry = result.manifest.file(result.manifest.lock)
    assert lock_entry is not None
    assert [str(p) for p in result.problems] == [
        f"{blob_member(lock_entry.sha256)} (pylock.counter.toml): expected a valid photonpack "
        "pylock file, found lock file pylock.counter.toml: packages[0].wheels[0] is not valid "
        f"PEP 751: Name in '{EVIL}' is not consistent with package name 'requests'; fix it, or "
        "delete it and run photonpack lock again"
    ]


def test_verify_and_run_refuse_a_wheel_whose_metadata_lies(
    tmp_path: Path, photonpack_home: Path
) -> None:
    def lie(path: Path) -> None:
        rewrite_member(path, "evilpkg-1.0.dist-info/METADATA", LIED_METADATA)

    archive = make_archive(tmp_path, packages=[("evilpkg", "1.0")], wheel_transform=lie)
    [wheel] = archive.manifest.wheels
    problem = (
        f"{blob_member(wheel.sha256)} (wheel:{EVIL}): expected a wheel whose file name, "
        ".dist-info directory and METADATA agree, found its file name says evilpkg 1.0 but "
        "its METADATA says Name: requests, Version: 1.0"
    )
    verified = CliRunner().invoke(cli, ["verify", str(archive.path)])
    assert verified.exit_code == 3
    assert verified.stdout == f"FAIL {problem}\n"
    ran = CliRunner().invoke(cli, ["run", str(archive.path), "--port", "0"])
    assert ran.exit_code == 3
    assert f"failed verification: {problem}; " in ran.stderr  # one line
    assert not (photonpack_home / "envs").exists()
