"""`photonpack build` / `create`: one deterministic, content-addressed archive."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from tests.support.index import PackageIndex
from tests.support.stack import write_photon


def _build(index: PackageIndex, photon: Path, *args: str) -> dict[str, object]:
    result = CliRunner().invoke(
        cli,
        ["build", "-m", str(photon), "--index-url", index.url, "--json", *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    built: dict[str, object] = json.loads(result.stdout)
    return built


def test_build_writes_an_archive_with_manifest_and_blobs_only(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    built = _build(real_index, photon, "-o", str(out))
    assert built["name"] == "counter"
    assert str(built["digest"]).startswith("sha256:")
    listing = subprocess.run(
        ["tar", "--zstd", "-tvf", str(out)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    names = [line.split()[-1] for line in listing]
    assert names[0] == "photon.json"
    assert all(name.startswith("blobs/sha256/") for name in names[1:])
    assert names[1:] == sorted(names[1:])
    assert all(line.startswith("-r--r--r--") or line.startswith("-rw-r--r--") for line in listing)


def test_a_big_archive_written_while_its_wheels_download_is_the_one_any_writer_writes(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    import io

    from photonpack.archive import SPLIT_SIZE, read_manifest, unpack, write_archive
    from photonpack.archive.sinks import NullSink
    from photonpack.store import Store
    from tests.support.archives import frames_of
    from tests.support.wheels import build_big_wheel

    build_big_wheel(real_index.files_dir, "ppsplit", "1.0", SPLIT_SIZE + (1 << 20))
    photon = write_photon(tmp_path / "src")
    photon.write_text(photon.read_text().replace('"tinydep>=1.0"', '"tinydep>=1.0", "ppsplit"'))
    out = tmp_path / "counter.photon"
    _build(real_index, photon, "-o", str(out))
    manifest = read_manifest(out)
    data = out.read_bytes()
    assert manifest.total_size >= SPLIT_SIZE and len(frames_of(data)) == 3  # head, pad, body
    again = io.BytesIO()  # the manifest first, then every blob: as a pull writes it
    write_archive(again, manifest, Store().blob_path)
    assert again.getvalue() == data
    assert unpack(out, NullSink()) == manifest
    elsewhere = tmp_path / "elsewhere.photon"
    _build(real_index, photon, "-o", str(elsewhere))
    assert elsewhere.read_bytes() == data
    # A contract far bigger than the head's room: written again from the start, the same way.
    import random

    doc = random.Random(7).randbytes(100 << 10).hex()
    photon.write_text(photon.read_text().replace("(Photon):", f'(Photon):\n    """{doc}"""\n', 1))
    documented = tmp_path / "documented.photon"
    _build(real_index, photon, "-o", str(documented))
    manifest = read_manifest(documented)
    assert manifest.photon.description == doc
    again = io.BytesIO()
    write_archive(again, manifest, Store().blob_path)
    assert again.getvalue() == documented.read_bytes()


def _copy_project(source: Path, destination: Path) -> Path:
    import shutil

    shutil.copytree(source, destination)
    return destination


def test_build_is_byte_identical_across_directories_umask_mtimes_and_timezones(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    import os
    import sys

    first = write_photon(tmp_path / "a" / "proj")
    (first.parent / "data").mkdir()
    (first.parent / "data" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    first.write_text(
        first.read_text().replace(
            'requirement_dependency = ["tinydep>=1.0"]',
            'requirement_dependency = ["tinydep>=1.0"]\n    extra_files = ["data"]',
        )
    )
    a = _build(real_index, first, "-o", str(tmp_path / "a.photon"))
    second = _copy_project(first.parent, tmp_path / "elsewhere" / "deeper" / "proj")
    for path in second.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    done = subprocess.run(
        [
            "sh",
            "-c",
            f"umask 077 && {sys.executable} -m photonpack build -m {second / 'counter.py'} "
            f"--index-url {real_index.url} -o {tmp_path / 'b.photon'}",
        ],
        env={**os.environ, "TZ": "Asia/Kolkata"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == a["digest"]
    assert (tmp_path / "a.photon").read_bytes() == (tmp_path / "b.photon").read_bytes()


def test_extra_files_in_both_forms_land_in_the_manifest(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    from photonpack.archive import read_manifest

    src = tmp_path / "src"
    (src / "assets" / "nested").mkdir(parents=True)
    (src / "assets" / "a.txt").write_text("a")
    (src / "assets" / "nested" / "b.txt").write_text("bb")
    (src / "model.bin").write_bytes(b"\0" * 10)
    tool = src / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    dict_photon = write_photon(
        src,
        "from photonpack import Photon\n"
        "class D(Photon):\n"
        "    extra_files = {'weights/model.bin': 'model.bin', 'bin/tool.sh': 'tool.sh'}\n",
        name="d.py",
    )
    list_photon = write_photon(
        src,
        "from photonpack import Photon\nclass L(Photon):\n    extra_files = ['assets']\n",
        name="l.py",
    )
    _build(real_index, dict_photon, "-o", str(tmp_path / "d.photon"))
    _build(real_index, list_photon, "-o", str(tmp_path / "l.photon"))
    d = read_manifest(tmp_path / "d.photon")
    assert {(f.path, f.size, f.executable) for f in d.files} == {
        ("bin/tool.sh", 18, True),
        ("d.py", dict_photon.stat().st_size, False),
        ("pylock.d.toml", (src / "pylock.d.toml").stat().st_size, False),
        ("weights/model.bin", 10, False),
    }
    listed = read_manifest(tmp_path / "l.photon")
    assert [f.path for f in listed.files] == [
        "assets/a.txt",
        "assets/nested/b.txt",
        "l.py",
        "pylock.l.toml",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("['missing.txt']", "missing.txt does not exist"),
        ("['../outside.txt']", "is outside the photon's directory"),
        ("{'/abs': 'f.txt'}", "must be relative and stay inside it"),
        ("['link.txt']", "is a symbolic link; copy the file instead"),
        ("['fifo']", "is not a regular file"),
    ],
)
def test_bad_extra_files_are_named_and_nothing_is_written(
    real_index: PackageIndex, tmp_path: Path, extra: str, message: str
) -> None:
    import os

    src = tmp_path / "proj"
    src.mkdir()
    (tmp_path / "outside.txt").write_text("x")
    (src / "f.txt").write_text("f")
    (src / "link.txt").symlink_to(src / "f.txt")
    os.mkfifo(src / "fifo")
    photon = write_photon(
        src, f"from photonpack import Photon\nclass X(Photon):\n    extra_files = {extra}\n"
    )
    out = tmp_path / "x.photon"
    out.write_bytes(b"previous build")
    result = CliRunner().invoke(
        cli, ["build", "-m", str(photon), "--index-url", real_index.url, "-o", str(out)]
    )
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert out.read_bytes() == b"previous build"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".x.photon")] == []


def test_photon_that_fails_to_import_in_its_environment_is_a_clear_error(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(
        tmp_path / "src",
        "import jsonschema  # installed here, but not locked\n"
        "from photonpack import Photon\n"
        "class Broken(Photon):\n    pass\n",
    )
    result = CliRunner().invoke(
        cli, ["build", "-m", str(photon), "--index-url", real_index.url, "-o", str(tmp_path / "b")]
    )
    assert result.exit_code == 1
    assert "fails to load in its locked environment" in result.stderr
    assert "jsonschema" in result.stderr
    assert not (tmp_path / "b").exists()


def test_tampered_wheel_from_the_index_is_refused(
    package_index: PackageIndex, real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    # Lock against the honest index, then serve other bytes for one wheel.
    _build(real_index, photon, "-o", str(tmp_path / "ok.photon"))
    lock_text = (photon.parent / "pylock.counter.toml").read_text()
    assert "tinydep-1.0-py3-none-any.whl" in lock_text or "tinydep-2.0" in lock_text
    filename = "tinydep-2.0-py3-none-any.whl"
    real_index.tamper(filename, b"evil bytes")
    try:
        home = tmp_path / "fresh-home"
        result = CliRunner().invoke(
            cli,
            ["build", "-m", str(photon), "--index-url", real_index.url, "-o", str(tmp_path / "t")],
            env={"PHOTONPACK_HOME": str(home)},
        )
    finally:
        real_index.tamper(filename, (real_index.files_dir / filename).read_bytes())
    assert result.exit_code == 3, result.output
    assert filename in result.stderr
    assert not (tmp_path / "t").exists()


def test_locked_build_fails_on_a_stale_lock(real_index: PackageIndex, tmp_path: Path) -> None:
    photon = write_photon(tmp_path / "src")
    _build(real_index, photon, "-o", str(tmp_path / "a.photon"))
    photon.write_text(photon.read_text().replace("tinydep>=1.0", "tinydep>=2.0"))
    result = CliRunner().invoke(
        cli, ["build", "-m", str(photon), "--index-url", real_index.url, "--locked"]
    )
    assert result.exit_code == 1
    assert "pylock.counter.toml is stale" in result.stderr


def test_bad_name_is_refused_with_the_rule(real_index: PackageIndex, tmp_path: Path) -> None:
    photon = write_photon(tmp_path / "src")
    result = CliRunner().invoke(
        cli, ["create", "-n", "Bad_Name", "-m", str(photon), "--index-url", real_index.url]
    )
    assert result.exit_code == 1
    assert "invalid photon name 'Bad_Name'" in result.stderr


def test_every_built_manifest_validates_against_the_schema(
    counter_archive: Path,
) -> None:
    import jsonschema

    from photonpack.archive import read_manifest

    schema = json.loads((Path(__file__).parents[1] / "schema" / "photon.schema.json").read_text())
    manifest = read_manifest(counter_archive)
    jsonschema.Draft202012Validator(schema).validate(manifest.to_dict())
    assert [h.path for h in manifest.handlers] == ["/add", "/sub"]
    assert manifest.openapi is not None


def test_verify_rebuild_proves_reproducibility_and_names_what_differs(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    built = _build(real_index, photon, "-o", str(out))
    same = CliRunner().invoke(cli, ["verify", str(out), "--rebuild", str(photon)])
    assert same.exit_code == 0, same.output
    assert f"reproducible: rebuilding {photon} gives {built['digest']}" in same.stdout

    photon.write_text(photon.read_text().replace("def sub(self, x: int)", "def sub(self, x: str)"))
    changed = CliRunner().invoke(cli, ["verify", str(out), "--rebuild", str(photon)])
    assert changed.exit_code == 3, changed.output
    assert "not reproducible" in changed.stderr
    assert "parameter x: integer -> string" in changed.stdout


def test_a_sibling_module_not_in_extra_files_fails_the_build_not_the_server(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "helpers.py").write_text("def double(x: int) -> int:\n    return 2 * x\n")
    photon = write_photon(
        src,
        "from helpers import double\n"
        "from photonpack import Photon\n"
        "class Twice(Photon):\n"
        "    @Photon.handler\n"
        "    def twice(self, x: int) -> int:\n"
        "        return double(x)\n",
    )
    result = CliRunner().invoke(cli, ["build", "-m", str(photon), "--index-url", real_index.url])
    assert result.exit_code == 1
    assert "it imports helpers, which is next to it in" in result.stderr
    assert "add 'helpers' to extra_files so that it travels with the photon" in result.stderr

    photon.write_text(
        photon.read_text().replace(
            "class Twice(Photon):\n", "class Twice(Photon):\n    extra_files = ['helpers.py']\n"
        )
    )
    _build(real_index, photon, "-o", str(tmp_path / "twice.photon"))


def test_a_photon_in_a_package_builds_with_the_package_sources(
    real_index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photonpack.archive import read_manifest

    root = tmp_path / "proj"
    (root / "service").mkdir(parents=True)
    (root / "service" / "__init__.py").write_text("")
    (root / "service" / "maths.py").write_text("def square(x: int) -> int:\n    return x * x\n")
    write_photon(
        root / "service",
        "from photonpack import Photon\n"
        "from service.maths import square\n"
        "class Square(Photon):\n"
        "    @Photon.handler\n"
        "    def square(self, x: int) -> int:\n"
        "        return square(x)\n",
        name="api.py",
    )
    monkeypatch.chdir(root)
    result = CliRunner().invoke(
        cli,
        ["build", "-m", "service.api:Square", "--index-url", real_index.url, "-o", "sq.photon"],
    )
    assert result.exit_code == 0, result.output
    manifest = read_manifest(root / "sq.photon")
    assert manifest.entry == "service.api:Square"
    assert [f.path for f in manifest.files] == [
        "pylock.square.toml",
        "service/__init__.py",
        "service/api.py",
        "service/maths.py",
    ]
    assert [h.path for h in manifest.handlers] == ["/square"]


# -- a warm build keeps the archive it wrote --------------------------------------


def _built_once(index: PackageIndex, tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A photon built once to ``counter.photon``: its source, the archive and its bytes."""
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    _build(index, photon, "-o", str(out))
    return photon, out, out.read_bytes()


def test_an_unchanged_build_keeps_the_file_and_a_changed_one_rewrites_it(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    first = _build(real_index, photon, "-o", str(out))
    assert first["rewritten"] is True
    before = out.stat()
    again = _build(real_index, photon, "-o", str(out))
    assert again["rewritten"] is False
    assert again["digest"] == first["digest"] and again["size"] == first["size"]
    after = out.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    photon.write_text(photon.read_text() + "\n# a new comment changes the source file\n")
    changed = _build(real_index, photon, "-o", str(out))
    assert changed["rewritten"] is True and changed["digest"] != first["digest"]


def test_a_file_edited_in_place_is_written_again_even_with_its_mtime_restored(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon, out, good = _built_once(real_index, tmp_path)
    stat = out.stat()
    with out.open("r+b") as handle:  # one byte flipped, size and mtime as they were
        handle.seek(len(good) // 2)
        handle.write(bytes([good[len(good) // 2] ^ 0xFF]))
    os.utime(out, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _build(real_index, photon, "-o", str(out))["rewritten"] is True
    assert out.read_bytes() == good


def test_a_removed_or_replaced_archive_is_written_again(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    photon, out, good = _built_once(real_index, tmp_path)
    out.unlink()
    assert _build(real_index, photon, "-o", str(out))["rewritten"] is True
    assert out.read_bytes() == good
    out.unlink()
    out.write_bytes(good)  # the same bytes, copied back: another file, not the one written
    assert _build(real_index, photon, "-o", str(out))["rewritten"] is True
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
    built = _build(real_index, photon, "-o", str(out))
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
