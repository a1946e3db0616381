"""The console examples of docs/ci.md, run for real and compared line by line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.archives import DEFAULT_HANDLERS, handler, make_archive

ROOT = Path(__file__).parents[1]
CI_DOC = (ROOT / "docs" / "ci.md").read_text()
SECTION = CI_DOC
BLOCKS = re.findall(r"```console\n(.*?)```", SECTION, flags=re.DOTALL)


def _short(match: re.Match[str]) -> str:
    digest = match.group(1)
    return f"sha256:{digest[:8]}…{digest[-5:]}"


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """counter.photon and counter-new.photon, exactly as the examples describe them."""
    root = tmp_path_factory.mktemp("docs")
    old = make_archive(root / "a", extra_files={"data/model.bin": b"x" * 700})
    add_y = handler("add", [("x", True, "integer"), ("y", True, "integer")], "integer")
    new = make_archive(
        root / "b",
        extra_files={"data/model.bin": b"x" * 900},
        packages=[("tinydep", "1.0"), ("newdep", "0.1")],
        handlers=[add_y, DEFAULT_HANDLERS[1]],
    )
    (root / "counter.photon").write_bytes(old.path.read_bytes())
    (root / "counter-new.photon").write_bytes(new.path.read_bytes())
    # Two uv locks for the diff of locks from other tools (tests/test_diff_foreign.py).
    from tests.test_diff_foreign import sha, uv_lock

    for side, text in (("old", uv_lock()), ("new", uv_lock(idna="3.11", extra=True))):
        (root / side).mkdir()
        (root / side / "pylock.toml").write_text(
            text.replace(sha("c"), sha("f" if side == "new" else "c"))
        )
    return root


@pytest.mark.parametrize("block", range(len(BLOCKS)))
def test_console_example_runs_as_documented(docs_dir: Path, block: int) -> None:
    text = BLOCKS[block]
    commands = [line[2:] for line in text.splitlines() if line.startswith("$ ")]
    expected = "".join(line + "\n" for line in text.splitlines() if not line.startswith("$ "))
    bindir = str(Path(sys.executable).parent)
    script = "\n".join(f"{c} 2>&1" for c in commands) + "\n"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=docs_dir,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"},
        check=False,
    )
    actual = re.sub(r"sha256:([0-9a-f]{64})", _short, done.stdout)
    assert actual == expected


PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_has_each_heading_once(page: str) -> None:
    # A section pasted twice by an edit reads fine in a diff and badly on the page.
    path = ROOT / page
    headings, fenced = [], False
    for line in path.read_text().splitlines():
        fenced ^= line.startswith("```")
        if not fenced and re.match(r"#{1,6} ", line):
            headings.append(line)
    assert headings
    assert [h for h in headings if headings.count(h) > 1] == []
