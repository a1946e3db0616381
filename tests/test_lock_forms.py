"""Requirement forms photonpack cannot lock yet are refused before anything runs.

Issue 15 will lock and build them hermetically; until then a VCS URL, an
archive URL, a local project or a pip option line is one line naming the form
and what to do, and nothing is cloned, downloaded or built first.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from photonpack.lock.forms import unsupported_form

ADVICE = (
    "build a wheel of it (pip wheel --no-deps '{}' -w wheels/) and lock with --find-links wheels/"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("numpy>=1.26", None),
        ('torch==2.13.0; platform_machine == "x86_64"', None),
        ("uvicorn[standard]", None),
        ("beta @ https://host/files/beta-2.0-py3-none-any.whl#sha256=" + "0" * 64, None),
        ("./wheels/alpha-1.0-py3-none-any.whl", None),
        (
            "git+https://github.com/facebookresearch/segment-anything.git",
            "is a VCS requirement, which photonpack does not lock yet; "
            + ADVICE.format("git+https://github.com/facebookresearch/segment-anything.git"),
        ),
        (
            "nougat @ git+https://host/nougat@0c4f1e2",
            "is a VCS requirement, which photonpack does not lock yet; "
            + ADVICE.format("nougat @ git+https://host/nougat@0c4f1e2"),
        ),
        (
            "x @ https://host/x-1.0.tar.gz",
            "is a URL requirement, which photonpack does not lock yet; "
            + ADVICE.format("x @ https://host/x-1.0.tar.gz"),
        ),
        (
            "./mylib",
            "is a local project, which photonpack does not build yet; " + ADVICE.format("./mylib"),
        ),
        (
            "-e ./mylib",
            "is an editable local project, which photonpack does not build yet; "
            + ADVICE.format("./mylib"),
        ),
        (
            "-f https://download.pytorch.org/whl/cpu",
            "is an option line; give it to photonpack lock instead: "
            "--find-links https://download.pytorch.org/whl/cpu",
        ),
        (
            "--extra-index-url=https://mirror/simple",
            "is an option line; give it to photonpack lock instead: "
            "--extra-index-url https://mirror/simple",
        ),
        (
            "-r other.txt",
            "is a pip option line, which photonpack does not read; list the requirements "
            "themselves in requirement_dependency",
        ),
        (
            "uninstall opencv-python",
            "is Lepton's uninstall line; photonpack installs only what the lock lists, so "
            "remove the line and the package is not installed unless something requires it",
        ),
        (
            "six==1.16.0 --hash=sha256:" + "0" * 64,
            "carries --hash, which photonpack does not check yet; remove the option: the lock "
            "records the index's sha256 of every file and verify re-hashes them",
        ),
    ],
)
def test_each_form_is_named_with_what_to_do(line: str, expected: str | None) -> None:
    assert unsupported_form(line) == expected


def test_a_local_project_is_refused_before_its_build_backend_runs(tmp_path: Path) -> None:
    project = tmp_path / "mylib"
    project.mkdir()
    marker = tmp_path / "backend-ran"
    (project / "setup.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom setuptools import setup\nsetup(name='mylib')\n"
    )
    (tmp_path / "svc.py").write_text(
        textwrap.dedent(
            """
            from photonpack import Photon

            class Svc(Photon):
                requirement_dependency = ["numpy", "./mylib"]
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "photonpack", "lock", "-m", "svc.py",
         "--index-url", "http://127.0.0.1:9/simple"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: requirement_dependency line './mylib' of Svc is a local project, which "
        f"photonpack does not build yet; {ADVICE.format('./mylib')}\n"
    )
    assert not marker.exists()
    assert not (tmp_path / "pylock.svc.toml").exists()
