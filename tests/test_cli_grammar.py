"""One grammar (issue 18 item 9): ``X.photon`` and ``-n NAME`` give the same result everywhere."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from photonpack.admit import admit_archive
from photonpack.cli import cli
from photonpack.store import Store
from tests.support.archives import Archive, make_archive
from tests.support.registry import Registry


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def named(small_archive: Archive) -> Archive:
    """``small_archive`` admitted into this test's store under the name ``counter``."""
    store = Store()
    manifest = admit_archive(small_archive.path, store)
    store.refs.put("counter", manifest.digest, small_archive.path.stat().st_size)
    return small_archive


@pytest.mark.parametrize(
    "command",
    [
        ["verify"],
        ["verify", "--json"],
        ["inspect"],
        ["inspect", "--json"],
        ["sbom"],
        ["sbom", "--format", "spdx"],
    ],
)
def test_name_form_gives_the_file_forms_result(named: Archive, command: list[str]) -> None:
    by_file = run(*command, str(named.path))
    by_name = run(*command, "-n", "counter")
    assert by_file.exit_code == 0, by_file.output
    assert by_name.exit_code == 0, by_name.output
    if "--json" in command:
        as_file, as_name = json.loads(by_file.output), json.loads(by_name.output)
        if command[0] == "verify":  # verify --json names the file it read; -n has none
            assert as_file.pop("path") == str(named.path)
            assert as_name.pop("path") is None
        assert as_name == as_file
    else:
        assert by_name.output == by_file.output


def test_diff_sides_may_be_names_or_files(named: Archive, tmp_path: Path) -> None:
    other = make_archive(tmp_path, packages=(("tinydep", "2.0"),))
    store = Store()
    manifest = admit_archive(other.path, store)
    store.refs.put("counter2", manifest.digest, other.path.stat().st_size)

    def sides(result: Result) -> dict[str, Any]:
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.output)
        for side in ("a", "b"):
            data.get(side, {}).pop("label", None)
        return data

    files = sides(run("diff", "--json", str(named.path), str(other.path)))
    names = sides(run("diff", "--json", "-n", "counter", "-n", "counter2"))
    mixed = sides(run("diff", "--format", "json", "-n", "counter", str(other.path)))
    assert files == names == mixed
    assert files != sides(run("diff", "--json", str(named.path), str(named.path)))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["verify"], "verify needs a photon: ARCHIVE or -n NAME"),
        (["verify", "x.photon", "-n", "counter"], "not both"),
        (["inspect"], "inspect needs a photon"),
        (["sbom"], "sbom needs a photon"),
        (["diff", "-n", "counter"], "diff compares two photons, got 1"),
        (["diff", "--json", "--format", "markdown", "a.photon", "b.photon"], "not both"),
    ],
)
def test_photon_argument_mistakes_are_usage_errors(args: list[str], says: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert says in result.output
    assert "Traceback" not in result.output


def _store_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


@pytest.mark.parametrize("command", [["verify"], ["inspect"], ["sbom"], ["diff", "-n", "counter"]])
def test_a_stored_photon_is_read_in_place_writing_nothing(
    named: Archive, photonpack_home: Path, command: list[str]
) -> None:
    before = _store_files(photonpack_home)
    result = run(*command, "-n", "counter")
    assert result.exit_code == 0, result.output
    assert _store_files(photonpack_home) == before  # no archive written back, nothing in tmp/


def test_verify_by_name_re_hashes_the_stored_blobs(named: Archive, photonpack_home: Path) -> None:
    store = Store(photonpack_home)
    entry = named.manifest.files[0]
    blob = store.blob_path(entry.sha256)
    blob.chmod(0o644)
    blob.write_bytes(b"altered" + blob.read_bytes()[7:])
    altered = hashlib.sha256(blob.read_bytes()).hexdigest()
    result = run("verify", "-n", "counter")
    assert result.exit_code == 3
    assert result.stdout == (
        f"FAIL blobs/sha256/{entry.sha256} ({entry.path}): expected sha256 {entry.sha256}, "
        f"found sha256 {altered}\n"
    )
    blob.unlink()
    missing = json.loads(run("verify", "--json", "-n", "counter").stdout)
    assert missing["ok"] is False
    assert [p["message"] for p in missing["problems"]] == [
        f"blobs/sha256/{entry.sha256} ({entry.path}): expected {entry.size} bytes in the store, "
        "found no such blob (missing)"
    ]


@pytest.mark.parametrize("command", ["verify", "inspect", "sbom"])
def test_unknown_name_is_one_line(command: str) -> None:
    result = run(command, "-n", "nosuch")
    assert result.exit_code != 0
    assert result.output.startswith("error: ")
    assert "nosuch" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_json_output_parses(named: Archive) -> None:
    for args in (
        ["verify", "--json", "-n", "counter"],
        ["inspect", "--json", "-n", "counter"],
        ["sbom", "-n", "counter"],
        ["list", "--json"],
        ["diff", "--json", "-n", "counter", "-n", "counter"],
    ):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.output)


def test_environment_variables_are_named_in_help() -> None:
    assert "PHOTONPACK_HOME" in run("--help").output
    assert "PHOTONPACK_HOME" in run("verify", "--help").output
    assert "PHOTONPACK_DEBUG" in run("--help").output


def test_push_and_pull_by_name_and_file_print_json(
    named: Archive, registry: Registry, tmp_path: Path
) -> None:
    ref = f"{registry.host}/grammar/counter"
    by_file = run("push", "--json", str(named.path), f"{ref}:file")
    by_name = run("push", "--json", "-n", "counter", f"{ref}:name")
    assert by_file.exit_code == 0, by_file.output
    assert by_name.exit_code == 0, by_name.output
    as_file, as_name = json.loads(by_file.stdout), json.loads(by_name.stdout)
    assert as_file["reference"] == f"{ref}:file"
    assert as_name["reference"] == f"{ref}:name"
    assert as_name["manifest_digest"] == as_file["manifest_digest"]
    assert as_name["photon_digest"] == as_file["photon_digest"] == named.manifest.digest
    assert as_name["uploaded_blobs"] == 0  # the same photon: every blob is already there
    assert as_file["sbom"] is None

    pulled = run("pull", "--json", f"{ref}:name", "-o", str(tmp_path / "back.photon"))
    assert pulled.exit_code == 0, pulled.output
    report = json.loads(pulled.stdout)
    assert report["photon_digest"] == named.manifest.digest
    assert report["manifest_digest"] == as_name["manifest_digest"]
    assert report["path"] == str(tmp_path / "back.photon")
    assert report["referrers"] == []


def test_remove_json_lists_what_was_removed(named: Archive) -> None:
    listed = json.loads(run("list", "--json").output)
    removed = run("remove", "--json", "-n", "counter")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.output) == listed
    assert json.loads(run("list", "--json").output) == []


@pytest.mark.parametrize("command", ["lock", "build", "create", "run"])
def test_the_photon_source_is_m_photon_or_module_in_every_command(
    command: str, tmp_path: Path
) -> None:
    """`-m` means one thing: `run` once said `--module`, `lock`/`build`/`create` `--photon`."""
    missing = str(tmp_path / "nosuch.py")
    results = [
        CliRunner().invoke(cli, [command, flag, missing]) for flag in ("-m", "--photon", "--module")
    ]
    assert results[0].exit_code != 0
    assert "nosuch.py" in results[0].output
    assert {(r.exit_code, r.output) for r in results} == {(results[0].exit_code, results[0].output)}
