"""`photonpack image` on a terminal: one progress line through its stages, then the result.

The real CLI runs in a child process on a pty (``tests.test_progress``'s
helpers); the photon has a wheel of 24 MiB of incompressible bytes (data, outside
site-packages), so that compressing its layer takes many writes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from photonpack.archive import write_archive
from tests.support.images import write_base
from tests.support.registry import stage_photon
from tests.test_progress import _SIZE, _on_tty, _piped, _visible


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("progress")
    # Under .data/data, not site-packages: the layer compresses it (a wheel's deflate stream
    # of a site-packages file is copied, too fast to be sure the stage is ever drawn).
    weights = hashlib.shake_256(b"weights").digest(24 << 20)
    staged = stage_photon(
        root, "heavy", [("weights", "1.0")],
        wheel_files={"weights": {"weights-1.0.data/data/share/weights.bin": weights}},
    )  # fmt: skip
    path = root / "heavy.photon"
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


def test_image_on_a_terminal_draws_each_stage_then_prints_the_digest(
    archive: Path, tmp_path: Path
) -> None:
    base = write_base(tmp_path / "base")
    code, output = _on_tty(
        "image", str(archive), "--base", f"oci:{base}", "--oci-layout", str(tmp_path / "o"),
        columns=300,
    )  # fmt: skip
    text = output.decode()
    assert code == 0, text
    draws = [part.rstrip() for part in text.replace("\r\n", "\n").split("\r") if " / " in part]
    labels = list(dict.fromkeys(re.sub(rf"  {_SIZE} / .*", "", draw) for draw in draws))
    assert labels == [f"reading oci:{base}", "installing 1 wheel", "compressing layers"], draws
    assert all(re.fullmatch(rf".+  {_SIZE} / {_SIZE}(  {_SIZE}/s)?", d) for d in draws), draws
    # The line is erased before the report: the digest is the last thing shown.
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", _visible(text)[-2]), text


def test_image_into_a_pipe_draws_no_progress(archive: Path, tmp_path: Path) -> None:
    base = write_base(tmp_path / "base")
    result = _piped(
        "image", str(archive), "--base", f"oci:{base}", "--oci-layout", str(tmp_path / "o")
    )
    assert result.returncode == 0, result.stderr
    assert b"\r" not in result.stderr
    assert re.fullmatch(rb"sha256:[0-9a-f]{64}\n", result.stdout)
