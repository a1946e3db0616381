"""The rest of the one grammar (issue 18 item 9): ``--json`` on run, deploy, login and logout,
``-q``/``-v``, and shell completion."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import write_archive
from photonpack.cli import cli
from tests.support.registry import PASSWORD, USERNAME, Registry, stage_photon
from tests.support.stack import write_photon

PHOTONPACK = Path(sys.executable).parent / "photonpack"

CHATTY = """
    from photonpack import Photon

    class Chatty(Photon):
        @Photon.handler
        def hello(self, who: str) -> str:
            print(f"hello printed for {who}")
            return f"hello {who}"
"""


def _run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grammar-archive")
    staged = stage_photon(root, "counter", [("alpha", "1.0"), ("beta", "2.0")])
    path = root / "counter.photon"
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


def _serve_json(argv: list[str], cwd: Path | None = None) -> tuple[dict[str, object], str]:
    """Start ``photonpack run ... --json``; its ready line, and stdout after a request and stop."""
    process = subprocess.Popen(
        [sys.executable, "-m", "photonpack", *argv, "--host", "127.0.0.1", "--port", "0", "--json"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else ""
        ready = json.loads(line)
        request = urllib.request.Request(
            f"{ready['url']}/hello",
            data=b'{"who": "ada"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert json.loads(answer.read()) == "hello ada"
        process.send_signal(signal.SIGTERM)
        rest, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "hello printed for ada" in stderr  # the photon's print went to stderr
    return ready, rest


def test_run_json_from_source_prints_one_line_when_ready_and_nothing_else(
    tmp_path: Path,
) -> None:
    source = write_photon(tmp_path / "src", CHATTY, "chatty.py")
    ready, rest = _serve_json(["run", "-m", str(source)])
    assert sorted(ready) == ["name", "photon_digest", "pid", "url"]
    assert (ready["name"], ready["photon_digest"]) == ("chatty", None)
    assert str(ready["url"]).startswith("http://127.0.0.1:")
    assert isinstance(ready["pid"], int)
    assert rest == ""


def test_run_json_of_an_archive_names_its_digest(counter_archive: Path, tmp_path: Path) -> None:
    archive = Path(shutil.copy(counter_archive, tmp_path / "counter.photon"))
    digest = _run("verify", "--json", str(archive))
    expected = json.loads(digest.stdout)["digest"]
    process = subprocess.Popen(
        [sys.executable, "-m", "photonpack", "run", str(archive), "--host", "127.0.0.1",
         "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert (ready["name"], ready["photon_digest"]) == ("counter", expected)
        assert ready["pid"] == process.pid  # run execs the server: one process to signal
        with urllib.request.urlopen(f"{ready['url']}/healthz", timeout=30) as answer:
            assert answer.status == 200
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, rest) == (0, "")


def test_login_and_logout_json(
    auth_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_file = tmp_path / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    host = auth_registry.host
    logged = _run("login", host, "-u", USERNAME, "--password-stdin", "--json", stdin=PASSWORD)
    assert logged.exit_code == 0, logged.output
    assert json.loads(logged.stdout) == {
        "registry": host,
        "username": USERNAME,
        "kept_in": str(auth_file),
    }
    out = _run("logout", host, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"registry": host, "removed_from": [str(auth_file)]}


def test_quiet_silences_information_and_verbose_lists_each_blob(
    registry: Registry, archive: Path
) -> None:
    ref = f"{registry.host}/grammar/quiet:v1"
    first = _run("-v", "push", str(archive), ref)
    assert first.exit_code == 0, first.output
    lines = first.stderr.splitlines()
    total = int(lines[-1].split(" of ")[1].split()[0])
    assert [line.split()[0] for line in lines[:-1]] == ["uploaded"] * total
    assert lines[0].endswith("(photon.json)")

    quiet = _run("-q", "push", str(archive), ref)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert quiet.stdout.startswith("sha256:")

    again = _run("--verbose", "push", str(archive), ref)
    lines = again.stderr.splitlines()
    assert lines[-1].startswith(f"pushed {ref}: uploaded 0 of {total} ")
    assert [line.split()[0] for line in lines[:-1]] == ["skipped"] * total
    assert lines[0].endswith("(photon.json), the registry has it")

    plain = _run("push", str(archive), ref)
    assert plain.stderr.splitlines() == lines[-1:]


def test_quiet_still_prints_errors(tmp_path: Path) -> None:
    missing = _run("-q", "verify", str(tmp_path / "nosuch.photon"))
    assert missing.exit_code != 0
    assert missing.stderr.startswith("error: ")


def test_quiet_and_verbose_together_is_a_usage_error() -> None:
    both = _run("-q", "-v", "list")
    assert both.exit_code == 2
    assert both.stderr == (
        "error: -q and -v contradict each other: pass one of them (see 'cli --help')\n"
    )


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_clicks_script(shell: str) -> None:
    printed = _run("completion", shell)
    assert printed.exit_code == 0
    assert "_PHOTONPACK_COMPLETE" in printed.stdout


def test_bash_completion_script_completes_a_subcommand(tmp_path: Path) -> None:
    script = tmp_path / "photonpack.bash"
    script.write_text(_run("completion", "bash").stdout)
    probe = (
        f"source {script}\n"
        "COMP_WORDS=(photonpack ver); COMP_CWORD=1; COMPREPLY=()\n"
        "_photonpack_completion photonpack\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "COMP_WORDS=(photonpack deployment st); COMP_CWORD=2; COMPREPLY=()\n"
        "_photonpack_completion photonpack\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{PHOTONPACK.parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["verify", "status"]
