"""Registry logins as podman, skopeo and docker keep them, against a password-protected registry.

The login lives only in an auth file or behind a credential helper (a small
script on PATH speaking docker's protocol); the commands get no --username.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import write_archive
from photonpack.cli import cli
from tests.support.registry import PASSWORD, USERNAME, Registry, TokenRegistry, stage_photon

WHEELS = [("alpha", "1.0"), ("beta", "2.0")]


def _run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with no login anywhere: every auth-file location points into ``home``."""
    home = tmp_path / "home"
    home.mkdir()
    for name in (
        "REGISTRY_AUTH_FILE",
        "XDG_RUNTIME_DIR",
        "DOCKER_CONFIG",
        "PHOTONPACK_REGISTRY_USERNAME",
        "PHOTONPACK_REGISTRY_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("auth-archive")
    staged = stage_photon(root, "private", WHEELS)
    path = root / "private.photon"
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


def _auth_entry(username: str = USERNAME, password: str = PASSWORD) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def _helper(bin_dir: Path, name: str, logins: Path) -> Path:
    """``docker-credential-<name>``: keeps logins in the JSON file ``logins``, logs each call."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        f"store = pathlib.Path({str(logins)!r})\n"
        "logins = json.loads(store.read_text()) if store.exists() else {}\n"
        "action, data = sys.argv[1], sys.stdin.read()\n"
        "with open(str(store) + '.log', 'a') as log:\n"
        "    log.write(action + ' ' + (data.strip() if action != 'store' else "
        "json.loads(data)['ServerURL']) + '\\n')\n"
        "if action == 'get':\n"
        "    if data.strip() not in logins:\n"
        "        print('credentials not found in native keychain'); sys.exit(1)\n"
        "    user, secret = logins[data.strip()]\n"
        "    print(json.dumps({'ServerURL': data.strip(), 'Username': user, 'Secret': secret}))\n"
        "elif action == 'store':\n"
        "    doc = json.loads(data)\n"
        "    logins[doc['ServerURL']] = [doc['Username'], doc['Secret']]\n"
        "    store.write_text(json.dumps(logins))\n"
        "elif action == 'erase':\n"
        "    logins.pop(data.strip(), None); store.write_text(json.dumps(logins))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_push_and_pull_with_the_login_only_in_registry_auth_file(
    auth_registry: Registry,
    archive: Path,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {auth_registry.host: _auth_entry()}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    ref = f"{auth_registry.host}/auth-file/private:v1"

    pushed = _run("push", str(archive), ref)
    assert pushed.exit_code == 0, pushed.output
    out = tmp_path / "pulled.photon"
    pulled = _run("pull", ref, "-o", str(out))
    assert pulled.exit_code == 0, pulled.output
    assert out.read_bytes() == archive.read_bytes()


def test_docker_config_with_a_wrong_password_is_refused_by_name(
    auth_registry: Registry, archive: Path, home: Path
) -> None:
    (home / ".docker").mkdir()
    config = {"auths": {f"https://{auth_registry.host}/v1/": _auth_entry(password="wrong")}}
    (home / ".docker" / "config.json").write_text(json.dumps(config))

    denied = _run("push", str(archive), f"{auth_registry.host}/auth-file/wrong:v1")
    assert denied.exit_code == 1
    assert denied.stderr == (
        f"error: {auth_registry.host} refused the login of 'tester' kept in the auth files "
        f"(HTTP 401): run `photonpack login {auth_registry.host}` again\n"
    )


def test_push_and_pull_through_a_credential_helper(
    auth_registry: Registry,
    archive: Path,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logins = tmp_path / "keychain.json"
    logins.write_text(json.dumps({auth_registry.host: [USERNAME, PASSWORD]}))
    _helper(tmp_path / "bin", "phtest", logins)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"credHelpers": {auth_registry.host: "phtest"}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    ref = f"{auth_registry.host}/helper/private:v1"

    assert _run("push", str(archive), ref).exit_code == 0
    out = tmp_path / "pulled.photon"
    assert _run("pull", ref, "-o", str(out)).exit_code == 0
    assert out.read_bytes() == archive.read_bytes()
    # Asked once per command, and only for this registry.
    calls = Path(f"{logins}.log").read_text().splitlines()
    assert calls == [f"get {auth_registry.host}", f"get {auth_registry.host}"]


def test_a_bearer_token_registry_takes_the_login_from_the_auth_file(
    token_registry: TokenRegistry,
    archive: Path,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = tmp_path / "run"
    (runtime / "containers").mkdir(parents=True)
    (runtime / "containers" / "auth.json").write_text(
        json.dumps({"auths": {token_registry.host: _auth_entry()}})
    )
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))

    pushed = _run("push", str(archive), f"{token_registry.host}/token-file/private:v1")
    assert pushed.exit_code == 0, pushed.output


def test_login_writes_the_auth_file_push_uses_and_logout_removes_it(
    auth_registry: Registry,
    archive: Path,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth_file = tmp_path / "containers" / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    host = auth_registry.host

    wrong = _run("login", host, "-u", USERNAME, "--password-stdin", stdin="nope\n")
    assert wrong.exit_code == 1
    assert wrong.stderr == (
        f"error: {host} refused the login of 'tester' (HTTP 401): check the username and password\n"
    )
    assert not auth_file.exists()

    logged = _run("login", host, "-u", USERNAME, "--password-stdin", stdin=PASSWORD + "\n")
    assert logged.exit_code == 0, logged.output
    assert logged.stderr == f"logged in to {host} as tester (login kept in {auth_file})\n"
    assert json.loads(auth_file.read_text()) == {"auths": {host: _auth_entry()}}
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600

    assert _run("push", str(archive), f"{host}/login/private:v1").exit_code == 0

    out = _run("logout", host)
    assert out.exit_code == 0
    assert out.stderr == f"logged out of {host} (removed from {auth_file})\n"
    assert json.loads(auth_file.read_text()) == {"auths": {}}
    denied = _run("push", str(archive), f"{host}/login/private:v2")
    assert denied.exit_code == 1
    assert "requires a login (HTTP 401)" in denied.stderr
    again = _run("logout", host)
    assert again.exit_code == 1
    assert again.stderr.startswith(f"error: no login for {host} to remove (looked in {auth_file}, ")


def test_skopeo_reads_the_login_photonpack_wrote(
    auth_registry: Registry,
    archive: Path,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth_file = tmp_path / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    host = auth_registry.host
    assert _run("login", host, "-u", USERNAME, "--password-stdin", stdin=PASSWORD).exit_code == 0
    assert _run("push", str(archive), f"{host}/skopeo/private:v1").exit_code == 0

    listed = subprocess.run(
        [
            "skopeo",
            "list-tags",
            "--authfile",
            str(auth_file),
            "--tls-verify=false",
            f"docker://{host}/skopeo/private",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["Tags"] == ["v1"]


def test_login_into_a_creds_store_goes_to_the_helper(
    auth_registry: Registry,
    archive: Path,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logins = tmp_path / "keychain.json"
    _helper(tmp_path / "bin", "phstore", logins)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    (home / ".docker").mkdir()
    config = home / ".docker" / "config.json"
    config.write_text(json.dumps({"credsStore": "phstore"}))
    host = auth_registry.host

    logged = _run("login", host, "-u", USERNAME, "--password-stdin", stdin=PASSWORD)
    assert logged.exit_code == 0, logged.output
    assert logged.stderr == (
        f"logged in to {host} as tester (login kept in docker-credential-phstore)\n"
    )
    assert json.loads(logins.read_text()) == {host: [USERNAME, PASSWORD]}
    assert json.loads(config.read_text()) == {"credsStore": "phstore"}
    assert _run("push", str(archive), f"{host}/store/private:v1").exit_code == 0
    assert _run("logout", host).exit_code == 0
    assert json.loads(logins.read_text()) == {}


def test_a_helper_missing_from_path_is_named(
    auth_registry: Registry, archive: Path, home: Path
) -> None:
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text(
        json.dumps({"credHelpers": {auth_registry.host: "nowhere"}})
    )
    failed = _run("push", str(archive), f"{auth_registry.host}/helper/missing:v1")
    assert failed.exit_code == 1
    assert failed.stderr == (
        "error: the auth file names the credential helper 'nowhere', but "
        "docker-credential-nowhere is not on PATH: install it, or remove it from the auth file\n"
    )
