"""A warm `build` (nothing changed) keeps the archive it wrote instead of writing it again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from tests.support.index import PackageIndex
from tests.support.stack import write_photon


def _build(index: PackageIndex, photon: Path, out: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        ["build", "-m", str(photon), "--index-url", index.url, "-o", str(out), "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    built: dict[str, object] = json.loads(result.stdout)
    return built


def test_an_unchanged_build_keeps_the_file_and_a_changed_one_rewrites_it(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    first = _build(real_index, photon, out)
    assert first["rewritten"] is True
    before = out.stat()
    again = _build(real_index, photon, out)
    assert again["rewritten"] is False
    assert again["digest"] == first["digest"] and again["size"] == first["size"]
    after = out.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    photon.write_text(photon.read_text() + "\n# a new comment changes the source file\n")
    changed = _build(real_index, photon, out)
    assert changed["rewritten"] is True and changed["digest"] != first["digest"]


def test_a_file_edited_in_place_is_written_again_even_with_its_mtime_restored(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    _build(real_index, photon, out)
    good = out.read_bytes()
    stat = out.stat()
    with out.open("r+b") as handle:  # one byte flipped, size and mtime as they were
        handle.seek(len(good) // 2)
        handle.write(bytes([good[len(good) // 2] ^ 0xFF]))
    os.utime(out, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _build(real_index, photon, out)["rewritten"] is True
    assert out.read_bytes() == good


def test_a_removed_or_replaced_archive_is_written_again(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    _build(real_index, photon, out)
    good = out.read_bytes()
    out.unlink()
    assert _build(real_index, photon, out)["rewritten"] is True
    assert out.read_bytes() == good
    out.unlink()
    out.write_bytes(good)  # the same bytes, copied back: another file, not the one written
    assert _build(real_index, photon, out)["rewritten"] is True
    result = CliRunner().invoke(
        cli, ["build", "-m", str(photon), "--index-url", real_index.url, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "unchanged since the last build, not rewritten" in result.output


def test_create_without_output_writes_no_archive_and_records_its_true_size(
    real_index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    built = _build(real_index, photon, out)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.chdir(tmp_path / "src")
    result = CliRunner().invoke(
        cli,
        ["create", "-n", "counter", "-m", str(photon), "--index-url", real_index.url, "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["digest"] == built["digest"]
    assert created["size"] == out.stat().st_size  # the archive push would send, byte for byte
    assert "path" not in created
    assert list(scratch.iterdir()) == [] and not list((tmp_path / "src").glob("*.photon"))
