"""`photonpack push / pull / list --remote` as a user runs them, against a real registry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import NullSink, unpack, write_archive
from photonpack.cli import cli
from tests.support.registry import (
    PASSWORD,
    USERNAME,
    Registry,
    StagedPhoton,
    TamperingProxy,
    TokenRegistry,
    free_port,
    stage_photon,
)

SHARED = [("alpha", "1.0"), ("beta", "2.0"), ("gamma", "3.0")]


def _archive(staged: StagedPhoton, path: Path) -> Path:
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """counter.photon and counter2.photon, sharing every wheel but one."""
    root = tmp_path_factory.mktemp("archives")
    one = stage_photon(root, "counter", [*SHARED, ("delta", "1.0")])
    two = stage_photon(root, "counter", [*SHARED, ("delta", "2.0")], source="# v2\n")
    return _archive(one, root / "counter.photon"), _archive(two, root / "counter2.photon")


def test_a_big_archive_pulled_to_a_file_is_the_one_pushed(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photonpack.archive import SPLIT_SIZE
    from tests.support.archives import frames_of

    staged = stage_photon(
        tmp_path / "staged", "big", [("alpha", "1.0")], wheel_payload={"alpha": SPLIT_SIZE}
    )
    archive = _archive(staged, tmp_path / "big.photon")
    assert len(frames_of(archive.read_bytes())) == 3  # head, padding, body
    ref = f"{registry.host}/cli/big:v1"
    assert _run("push", str(archive), ref).exit_code == 0
    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "elsewhere"))
    out = tmp_path / "pulled.photon"
    pulled = _run("pull", ref, "-o", str(out))
    assert pulled.exit_code == 0, pulled.output
    assert out.read_bytes() == archive.read_bytes()


def _run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_pull_by_tag_and_digest_reproduces_the_archive(
    registry: Registry,
    archives: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = archives
    ref = f"{registry.host}/cli/counter"
    pushed = _run("push", str(first), f"{ref}:v1")
    assert pushed.exit_code == 0, pushed.output
    manifest_digest = pushed.stdout.strip()
    assert pushed.stderr == f"pushed {ref}:v1: uploaded 8 of 8 blobs ({_sizes(first)})\n"

    again = _run("push", str(second), f"{ref}:v2")
    assert again.exit_code == 0
    assert again.stderr.startswith(
        f"pushed {ref}:v2: uploaded 4 of 8 blobs ("
    )  # photon.json, source, lock, delta

    # Another machine: a store that holds nothing yet (push put the blobs in this one).
    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "elsewhere"))
    out = tmp_path / "by-tag.photon"
    pulled = _run("pull", f"{ref}:v1", "-o", str(out))
    assert pulled.exit_code == 0, pulled.output
    assert out.read_bytes() == first.read_bytes()
    photon_digest = unpack(out, NullSink()).digest
    assert pulled.stdout == f"{photon_digest}\n"
    assert pulled.stderr == f"pulled {ref}:v1 to {out}: downloaded 8 of 8 blobs ({_sizes(first)})\n"

    # The sibling shares its wheels with v1, now in the store: only its own blobs move.
    sibling = _run("pull", f"{ref}:v2", "-o", str(tmp_path / "v2.photon"), "--json")
    assert sibling.exit_code == 0, sibling.output
    moved = json.loads(sibling.stdout)
    # photon.json, source, lock, delta
    assert (moved["downloaded_blobs"], moved["total_blobs"]) == (4, 8)
    assert (tmp_path / "v2.photon").read_bytes() == second.read_bytes()
    (tmp_path / "v2.photon").unlink()

    monkeypatch.chdir(tmp_path)
    by_digest = _run("pull", f"{ref}@{manifest_digest}")
    assert by_digest.exit_code == 0, by_digest.output
    assert (tmp_path / "counter.photon").read_bytes() == first.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "by-tag.photon",
        "counter.photon",
        "elsewhere",
    ]

    listed = _run("list", "--remote", ref)
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0] == f"v1\t{manifest_digest}\t{photon_digest}"
    assert lines[1].startswith("v2\tsha256:")
    assert len(lines) == 2


def _sizes(archive: Path) -> str:
    manifest = unpack(archive, NullSink())
    total = manifest.total_size + len(manifest.to_bytes())
    return f"{total / 1024:.1f} KiB of {total / 1024:.1f} KiB"


def test_pull_refuses_tampered_wheel_and_writes_nothing(
    registry: Registry,
    archives: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = archives[0]
    assert _run("push", str(first), f"{registry.host}/cli/tamper:v1").exit_code == 0
    home = tmp_path / "elsewhere"  # a store without the pushed blobs: they must be downloaded
    monkeypatch.setenv("PHOTONPACK_HOME", str(home))

    def flip(path: str, body: bytes) -> bytes:
        if "/blobs/" in path and body.startswith(b"PK"):
            return body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        return body

    out = tmp_path / "out" / "counter.photon"
    out.parent.mkdir()
    with TamperingProxy(registry.host, flip) as proxy:
        result = _run("pull", f"{proxy.host}/cli/tamper:v1", "-o", str(out))
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {proxy.host}/cli/tamper served ")
    assert ".whl, expected " in result.stderr
    assert result.stderr.endswith("refusing it, nothing was kept\n")
    assert list(out.parent.iterdir()) == []
    assert not list(home.glob("blobs/sha256/*")) and not list(home.glob("manifests/*"))


def test_basic_auth_with_password_stdin_and_environment(
    auth_registry: Registry,
    archives: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = f"{auth_registry.host}/cli/private:v1"
    denied = _run("push", str(archives[0]), ref)
    assert denied.exit_code == 1
    assert denied.stderr == (
        f"error: {auth_registry.host} requires a login (HTTP 401): run "
        f"`photonpack login {auth_registry.host}`, pass --username and --password-stdin, "
        "or set PHOTONPACK_REGISTRY_USERNAME and PHOTONPACK_REGISTRY_PASSWORD\n"
    )
    pushed = _run(
        "push", str(archives[0]), ref, "-u", USERNAME, "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert pushed.exit_code == 0, pushed.output
    assert PASSWORD not in pushed.output

    monkeypatch.setenv("PHOTONPACK_REGISTRY_USERNAME", USERNAME)
    monkeypatch.setenv("PHOTONPACK_REGISTRY_PASSWORD", PASSWORD)
    out = tmp_path / "private.photon"
    pulled = _run("pull", ref, "-o", str(out))
    assert pulled.exit_code == 0, pulled.output
    assert out.read_bytes() == archives[0].read_bytes()

    monkeypatch.setenv("PHOTONPACK_REGISTRY_PASSWORD", "wrong")
    wrong = _run("list", "--remote", f"{auth_registry.host}/cli/private")
    assert wrong.exit_code == 1
    assert wrong.stderr == (
        f"error: {auth_registry.host} refused the login of 'tester' (HTTP 401): "
        "check the username and password\n"
    )
    assert "wrong" not in wrong.output


def test_token_auth_push_and_pull(
    token_registry: TokenRegistry,
    archives: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PHOTONPACK_REGISTRY_USERNAME", USERNAME)
    monkeypatch.setenv("PHOTONPACK_REGISTRY_PASSWORD", PASSWORD)
    ref = f"{token_registry.host}/cli/tokens:v1"
    assert _run("push", str(archives[0]), ref).exit_code == 0
    out = tmp_path / "t.photon"
    assert _run("pull", ref, "-o", str(out)).exit_code == 0
    assert out.read_bytes() == archives[0].read_bytes()


def test_missing_tag_and_unreachable_registry_are_one_line_errors(
    registry: Registry, tmp_path: Path
) -> None:
    missing = _run("pull", f"{registry.host}/cli/nothing:v9", "-o", str(tmp_path / "x.photon"))
    assert missing.exit_code == 1
    assert missing.stderr == (
        f"error: {registry.host}/cli/nothing has no manifest 'v9': check the tag with "
        f"`photonpack list --remote {registry.host}/cli/nothing`\n"
    )
    host = f"127.0.0.1:{free_port()}"
    down = _run("list", "--remote", f"{host}/cli/counter")
    assert down.exit_code == 1
    assert (
        down.stderr
        == f"error: cannot reach registry http://{host}: [Errno 111] Connection refused\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_password_without_username_is_refused(archives: tuple[Path, Path]) -> None:
    result = _run("push", str(archives[0]), "localhost:1/x:v1", "--password-stdin", stdin="pw\n")
    assert result.exit_code == 2  # a usage error
    assert result.stderr == (
        "error: a password was given without a username: pass --username or set "
        "PHOTONPACK_REGISTRY_USERNAME\n"
    )


def test_push_of_a_missing_archive_is_one_line_error(registry: Registry, tmp_path: Path) -> None:
    result = _run("push", str(tmp_path / "nope.photon"), f"{registry.host}/cli/x:v1")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
