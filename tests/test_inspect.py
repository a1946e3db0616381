"""``photonpack inspect``: the manifest's view of an archive, without reading the blobs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from photonpack import archive as bundle
from photonpack._units import format_size
from photonpack.cli import cli
from tests.support.archives import Archive, handler, make_archive


def test_inspect_shows_name_digest_handlers_packages_files(small_archive: Archive) -> None:
    m = small_archive.manifest
    result = CliRunner().invoke(cli, ["inspect", str(small_archive.path)])
    assert result.exit_code == 0
    sizes = {f.path: f.size for f in m.files}
    archive_size = small_archive.path.stat().st_size
    assert result.stdout == (
        f"counter  {m.digest}\n"
        "entry     counter.py:Counter\n"
        "targets   cp311-manylinux_2_28_x86_64\n"
        "image     -\n"
        "system    -\n"
        "handlers (2)\n"
        "  POST /add  add(x: integer) -> integer\n"
        "  POST /sub  sub(x: integer) -> integer\n"
        "packages (1)\n"
        f"  tinydep 1.0  {m.wheels[0].size} B\n"
        "files (3)\n"
        f"  counter.py  {sizes['counter.py']} B\n"
        "  data/model.bin  700 B\n"
        f"  pylock.counter.toml  {sizes['pylock.counter.toml']} B\n"
        "runtime   1 file, 10 B\n"
        f"size      {format_size(m.total_size)} uncompressed, {format_size(archive_size)} archive\n"
    )


def test_inspect_json_is_machine_readable(tmp_path: Path) -> None:
    archive = make_archive(
        tmp_path,
        handlers=[handler("add", [("x", True, "integer"), ("y", False, "number")], "integer")],
        image="python:3.11-slim",
        system_dependency=["wget"],
    )
    m = archive.manifest
    result = CliRunner().invoke(cli, ["inspect", str(archive.path), "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    wheel = m.wheels[0]
    assert doc == {
        "name": "counter",
        "digest": m.digest,
        "entry": "counter.py:Counter",
        "targets": ["cp311-manylinux_2_28_x86_64"],
        "image": "python:3.11-slim",
        "system_dependency": ["wget"],
        "requirement_dependency": ["tinydep"],
        "handlers": [
            {
                "name": "add",
                "method": "POST",
                "path": "/add",
                "parameters": [
                    {"name": "x", "type": "integer", "required": True},
                    {"name": "y", "type": "number", "required": False},
                ],
                "returns": "integer",
            }
        ],
        "packages": [
            {
                "name": "tinydep",
                "version": "1.0",
                "wheels": [
                    {
                        "filename": wheel.filename,
                        "size": wheel.size,
                        "targets": ["cp311-manylinux_2_28_x86_64"],
                    }
                ],
            }
        ],
        "files": [{"path": f.path, "size": f.size, "executable": False} for f in m.files],
        "runtime": {"files": 1, "size": 10},
        "tools": {"photonpack": "0.1.0"},
        "total_size": m.total_size,
        "archive_size": archive.path.stat().st_size,
    }


def test_inspect_reads_only_the_manifest(tmp_path: Path) -> None:
    archive = make_archive(tmp_path, extra_files={"big.bin": os.urandom(4 * bundle.CHUNK_SIZE)})
    head = tmp_path / "head.photon"
    head.write_bytes(archive.path.read_bytes()[: 512 * 1024])  # most blob bytes are missing
    result = CliRunner().invoke(cli, ["inspect", str(head), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["digest"] == archive.manifest.digest


def test_inspect_of_a_non_photon_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "x.photon"
    path.write_bytes(b"")
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {path} is not a photon archive: it is not zstd-compressed "
        "(first bytes none, expected 28b52ffd)\n"
    )
