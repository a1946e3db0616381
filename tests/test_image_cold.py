"""A cold `photonpack image`: what it no longer waits for, and what it still checks.

The staged environment is removed by a detached process after the command has
answered (``image/scratch.py``); the base is read while the archive is imported;
a blob altered since an earlier command imported it is still refused.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import write_archive
from photonpack.cli import cli
from photonpack.image.scratch import discard, scratch_dir
from photonpack.store import Store
from tests.support.images import write_base
from tests.support.registry import stage_photon


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photon")
    staged = stage_photon(root, "counter", [("alpha", "1.0"), ("beta", "2.0")])
    path = root / "counter.photon"
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_base(tmp_path_factory.mktemp("base") / "oci")


def _emptied(folder: Path) -> list[str]:
    """What is left in ``folder`` once the detached removers have ended (a minute at most)."""
    deadline = time.monotonic() + 60
    while (left := sorted(p.name for p in folder.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_the_staged_environment_is_gone_after_the_command(
    archive: Path, base: Path, tmp_path: Path, photonpack_home: Path
) -> None:
    result = _run("image", str(archive), "--base", f"oci:{base}", "-o", str(tmp_path / "x.tar"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.tar").stat().st_size > 0
    assert _emptied(photonpack_home / "tmp") == []


def test_a_discarded_directory_is_renamed_to_its_removers_pid(tmp_path: Path) -> None:
    work = tmp_path / "1-image-abc"
    (work / "env" / "lib").mkdir(parents=True)
    (work / "env" / "lib" / "f.py").write_text("x = 1\n")
    discard(work)
    assert not work.exists()  # renamed at once, whatever the remover has done yet
    assert _emptied(tmp_path) == []


def test_a_directory_its_remover_left_is_collected_by_the_next_sweep(
    photonpack_home: Path,
) -> None:
    ended = subprocess.Popen(["/bin/true"])  # a remover killed: its pid no longer runs
    ended.wait()
    left = photonpack_home / "tmp" / f"{ended.pid}-discarded-123-image-abc"
    (left / "env").mkdir(parents=True)
    Store().tmp_dir()  # any command that writes to tmp/ sweeps it first
    assert not left.exists()


def test_the_scratch_directory_is_discarded_when_the_build_fails(photonpack_home: Path) -> None:
    store = Store()
    with pytest.raises(RuntimeError, match="failed"), scratch_dir(store, "image-") as work:
        (work / "env").mkdir()
        raise RuntimeError("failed")
    assert _emptied(photonpack_home / "tmp") == []


def test_a_blob_altered_after_an_earlier_import_is_refused(
    archive: Path, base: Path, tmp_path: Path, photonpack_home: Path
) -> None:
    first = _run("image", str(archive), "--base", f"oci:{base}", "-o", str(tmp_path / "1.tar"))
    assert first.exit_code == 0, first.output
    manifest = Store().import_archive(archive)
    wheel = manifest.wheels[0]
    path = Store().blob_path(wheel.sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    again = _run("image", str(archive), "--base", f"oci:{base}", "-o", str(tmp_path / "2.tar"))
    assert again.exit_code == 3
    assert again.stderr.splitlines()[-1] == (
        f"error: blob sha256:{wheel.sha256} of {manifest.name} ({manifest.digest}) is missing "
        "from the store or was altered after it was verified; import the archive again"
    )
    assert not (tmp_path / "2.tar").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_bad_archive_is_refused_as_without_base_while_the_base_is_read(
    archive: Path, base: Path, tmp_path: Path, damage: str
) -> None:
    data = archive.read_bytes()
    bad = tmp_path / "bad.photon"
    bad.write_bytes(b"not a photon" if damage == "garbage" else data[: len(data) * 2 // 3])
    out = str(tmp_path / "x.tar")
    with_base = _run("image", str(bad), "--base", f"oci:{base}", "-o", out)
    alone = _run("image", str(bad), "-o", out)
    assert with_base.exit_code == alone.exit_code != 0
    assert with_base.stderr.splitlines()[-1] == alone.stderr.splitlines()[-1]
    assert with_base.stderr.splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "x.tar").exists()
