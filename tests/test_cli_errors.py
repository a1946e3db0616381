"""The CLI's one error boundary: usage errors exit 2, bugs print one line, --debug shows them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.cli import cli


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, list(args), env=env, catch_exceptions=False, prog_name="photonpack"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("run",),
            "error: photonpack run needs exactly one photon: ARCHIVE, -n NAME, "
            "or -m file.py[:Class]\n",
        ),
        (
            ("push",),
            "error: push takes ARCHIVE REF, or -n NAME REF (see 'photonpack push --help')\n",
        ),
        (("verify",), "error: verify needs a photon: ARCHIVE or -n NAME (or --store)\n"),
        (("remove",), "error: photonpack remove needs exactly one of -n NAME or --all\n"),
        (
            ("run", "x.photon", "--port", "99999"),
            "error: Invalid value for '--port': 99999 is not in the range 0<=x<=65535. "
            "(see 'photonpack run --help')\n",
        ),
        (
            ("run", "-m", "x.py", "--env", "NOEQUALS"),
            "error: --env expects KEY=VALUE, got 'NOEQUALS'\n",
        ),
        (
            ("no-such-command",),
            "error: No such command 'no-such-command'. (see 'photonpack --help')\n",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_error_line(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2
    assert result.stderr == message
    assert result.stdout == ""


def _break_list(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object) -> list[object]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("photonpack.store.refs.Refs.all", broken)


def test_an_unexpected_exception_prints_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _break_list(monkeypatch)
    result = _run("list", env={"PHOTONPACK_DEBUG": ""})
    assert result.exit_code == 1
    assert result.stderr == (
        "error: internal error: ZeroDivisionError: division by zero (a bug in photonpack; "
        "run again with --debug or PHOTONPACK_DEBUG=1 for the traceback, and report it)\n"
    )


@pytest.mark.parametrize(
    ("args", "env"), [(("--debug", "list"), {}), (("list",), {"PHOTONPACK_DEBUG": "1"})]
)
def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], env: dict[str, str]
) -> None:
    _break_list(monkeypatch)
    result = _run(*args, env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert result.stderr.endswith("ZeroDivisionError: division by zero\n")
    assert "internal error" not in result.stderr


def test_help_names_the_environment_variables() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    assert "PHOTONPACK_HOME" in result.stdout
    assert "PHOTONPACK_DEBUG" in result.stdout


def test_run_of_a_photon_that_exits_at_import_says_so_and_exits_1(tmp_path: Path) -> None:
    photon = tmp_path / "quitter.py"
    photon.write_text(
        "import sys\nfrom photonpack import Photon\n\nsys.exit(3)\n\n"
        "class Quitter(Photon):\n    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "photonpack", "run", "-m", str(photon), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1  # not 3, the integrity code
    assert done.stderr.splitlines()[-1] == (
        f"error: the photon {photon} exited during import (sys.exit(3) at {photon}:4); "
        "move that call under `if __name__ == '__main__':`"
    )
