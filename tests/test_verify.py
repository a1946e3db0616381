"""``photonpack verify``: every byte re-hashed, the lock checked against the wheels."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from photonpack._units import format_size
from photonpack.archive import Problem, blob_member, write_archive
from photonpack.archive.manifest import Manifest
from photonpack.cli import cli
from photonpack.lock.pylock import parse_lock
from photonpack.verify import check_lock, verify_archive
from tests.support.archives import (
    Archive,
    compress,
    decompress,
    make_archive,
    make_lock,
    member_data_offset,
)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def tamper(archive: Archive, tmp_path: Path, member: str, offset: int = 0) -> Path:
    tar = bytearray(decompress(archive.path))
    tar[member_data_offset(bytes(tar), member) + offset] ^= 0x01
    out = tmp_path / "tampered.photon"
    out.write_bytes(compress(bytes(tar)))
    return out


def test_verify_clean_archive_exits_0(small_archive: Archive) -> None:
    result = run("verify", str(small_archive.path))
    m = small_archive.manifest
    assert result.exit_code == 0
    assert result.stdout == (
        f"ok counter {m.digest} ({len(m.blobs())} blobs, {format_size(m.total_size)} verified)\n"
    )


def test_verify_rejects_flipped_byte_in_wheel_blob(small_archive: Archive, tmp_path: Path) -> None:
    wheel = small_archive.manifest.wheels[0]
    path = tamper(small_archive, tmp_path, blob_member(wheel.sha256), 100)
    result = run("verify", str(path))
    assert result.exit_code == 3
    [line] = result.stdout.splitlines()
    assert line.startswith(
        f"FAIL blobs/sha256/{wheel.sha256} (wheel:{wheel.filename}): "
        f"expected sha256 {wheel.sha256}, found sha256 "
    )
    assert result.stderr == (
        f"error: {path} failed verification (1 problem); the archive was damaged or altered: "
        "fetch or build it again\n"
    )


def test_verify_rejects_flipped_byte_in_extra_file(small_archive: Archive, tmp_path: Path) -> None:
    entry = small_archive.manifest.file("data/model.bin")
    assert entry is not None
    result = run("verify", str(tamper(small_archive, tmp_path, blob_member(entry.sha256), 5)))
    assert result.exit_code == 3
    assert f"FAIL blobs/sha256/{entry.sha256} (data/model.bin): expected sha256" in result.stdout


def test_verify_rejects_flipped_byte_in_manifest(small_archive: Archive, tmp_path: Path) -> None:
    wheel = small_archive.manifest.wheels[0]
    tar = decompress(small_archive.path)
    digit = next(i for i, c in enumerate(wheel.sha256) if c.isdigit())  # 0-9 ^ 1 stays a digit
    at = tar.index(wheel.sha256.encode()) + digit - member_data_offset(tar, "photon.json")
    path = tamper(small_archive, tmp_path, "photon.json", at)
    new = wheel.sha256[:digit] + chr(ord(wheel.sha256[digit]) ^ 1) + wheel.sha256[digit + 1 :]
    result = verify_archive(path)
    # Still valid JSON: the wheel entry now names bytes the archive lacks, and the lock disagrees.
    assert [(p.member, p.found) for p in result.problems] == [
        (blob_member(wheel.sha256), "an unlisted blob"),
        (blob_member(new), "no such member (missing)"),
        (blob_member(new), f"sha256 {new}"),
    ]
    assert run("verify", str(path)).exit_code == 3


def test_verify_rejects_truncated_archive(small_archive: Archive, tmp_path: Path) -> None:
    data = small_archive.path.read_bytes()
    path = tmp_path / "short.photon"
    path.write_bytes(data[:-10])
    result = run("verify", str(path))
    assert result.exit_code == 3
    assert result.stdout.startswith("FAIL ")
    assert "(truncated)" in result.stdout


def test_verify_rejects_appended_garbage(small_archive: Archive, tmp_path: Path) -> None:
    data = small_archive.path.read_bytes()
    path = tmp_path / "long.photon"
    path.write_bytes(data + b"\x00garbage")
    result = run("verify", str(path))
    assert result.exit_code == 3
    assert result.stdout == (
        f"FAIL (after the zstd frame): expected the end of the file at byte {len(data)}, "
        "found 8 bytes of trailing data\n"
    )


def test_verify_of_a_file_that_is_not_a_photon_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    result = run("verify", str(path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {path} is not a photon archive: it is not zstd-compressed "
        "(first bytes 68656c6c, expected 28b52ffd)\n"
    )


def test_verify_json_reports_each_problem(small_archive: Archive, tmp_path: Path) -> None:
    wheel = small_archive.manifest.wheels[0]
    path = tamper(small_archive, tmp_path, blob_member(wheel.sha256), 100)
    result = run("verify", str(path), "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    [problem] = doc.pop("problems")
    m = small_archive.manifest
    assert doc == {
        "path": str(path),
        "ok": False,
        "name": "counter",
        "digest": m.digest,
        "archive_size": path.stat().st_size,
        "blobs": len(m.blobs()),
        "payload_size": m.total_size,
    }
    assert problem["member"] == blob_member(wheel.sha256)
    assert problem["label"] == f"wheel:{wheel.filename}"
    assert problem["expected"] == f"sha256 {wheel.sha256}"
    assert problem["found"].startswith("sha256 ")
    assert problem["message"] == (
        f"{problem['member']} ({problem['label']}): expected {problem['expected']}, "
        f"found {problem['found']}"
    )
    clean = json.loads(run("verify", str(small_archive.path), "--json").stdout)
    assert clean["ok"] is True
    assert clean["problems"] == []


# ---------------------------------------------------------------- lock <-> wheels <-> manifest


def _without_wheel(archive: Archive, tmp_path: Path, filename: str) -> Path:
    """The same archive, but its manifest (and content) lacks one locked wheel."""
    m = archive.manifest
    manifest = dataclasses.replace(m, wheels=tuple(w for w in m.wheels if w.filename != filename))
    out = tmp_path / "partial.photon"
    with out.open("wb") as fh:
        write_archive(fh, manifest, archive.blob_path)
    return out


def test_verify_reports_locked_wheel_missing_from_archive(tmp_path: Path) -> None:
    archive = make_archive(tmp_path, packages=[("alpha", "1.0"), ("beta", "2.0")])
    beta = next(w for w in archive.manifest.wheels if w.name == "beta")
    lock_entry = archive.manifest.file(archive.manifest.lock)
    assert lock_entry is not None
    result = verify_archive(_without_wheel(archive, tmp_path, beta.filename))
    assert [str(p) for p in result.problems] == [
        f"{blob_member(lock_entry.sha256)} (wheel:{beta.filename}): expected in the archive: "
        f"the lock installs it on cp311-manylinux_2_28_x86_64 (sha256 {beta.sha256}, "
        f"{beta.size} bytes), found not listed in photon.json (missing)"
    ]


def test_check_lock_reports_extra_mismatched_and_untargeted_wheels(
    small_archive: Archive, tmp_path: Path
) -> None:
    m = small_archive.manifest
    lock = parse_lock(small_archive.lock_text, path=Path(m.lock))
    assert check_lock(m, lock) == []
    wheel = m.wheels[0]
    extra_wheel = dataclasses.replace(wheel, filename="zeta-1.0-py3-none-any.whl", name="zeta")
    forged = dataclasses.replace(wheel, sha256="0" * 64)
    problems = check_lock(dataclasses.replace(m, wheels=(forged, extra_wheel)), lock)
    assert problems == [
        Problem(
            member=blob_member("0" * 64),
            label=f"wheel:{wheel.filename}",
            expected=f"the locked sha256 {wheel.sha256}",
            found="sha256 " + "0" * 64,
        ),
        Problem(
            member=blob_member(wheel.sha256),
            label="wheel:zeta-1.0-py3-none-any.whl",
            expected="only wheels the lock installs on cp311-manylinux_2_28_x86_64",
            found="a wheel the lock does not list for that target (extra)",
        ),
    ]


def test_check_lock_reports_targets_that_disagree(small_archive: Archive, tmp_path: Path) -> None:
    m = small_archive.manifest
    wheels_dir = tmp_path / "w"
    wheels_dir.mkdir()
    wheel_path = wheels_dir / m.wheels[0].filename
    wheel_path.write_bytes(small_archive.blob_path(m.wheels[0].sha256).read_bytes())
    two = ["cp311-manylinux_2_28_x86_64", "cp312-manylinux_2_28_x86_64"]
    lock = make_lock([wheel_path], two, tmp_path / m.lock)
    problems = [str(p) for p in check_lock(m, lock)]
    assert problems == [
        f"photon.json (targets): expected the lock's targets {two}, "
        "found ['cp311-manylinux_2_28_x86_64']",
        f"{blob_member(m.wheels[0].sha256)} (wheel:{m.wheels[0].filename}): expected listed for "
        "target cp312-manylinux_2_28_x86_64, where the lock installs it, "
        "found targets ['cp311-manylinux_2_28_x86_64']",
    ]


def test_verify_reports_a_lock_blob_that_is_not_a_lock(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    m = archive.manifest
    lock_entry = m.file(m.lock)
    assert lock_entry is not None
    bogus = tmp_path / "bogus.toml"
    bogus.write_text("not = [valid")
    import hashlib

    sha = hashlib.sha256(bogus.read_bytes()).hexdigest()
    files = tuple(
        dataclasses.replace(f, sha256=sha, size=bogus.stat().st_size) if f.path == m.lock else f
        for f in m.files
    )
    manifest = Manifest.from_dict({**m.to_dict(), "files": [f.to_dict() for f in files]})
    out = tmp_path / "bogus.photon"
    with out.open("wb") as fh:
        write_archive(fh, manifest, lambda h: bogus if h == sha else archive.blob_path(h))
    [problem] = verify_archive(out).problems
    assert problem.member == blob_member(sha)
    assert problem.label == "pylock.counter.toml"
    assert problem.expected == "a valid photonpack pylock file"
    assert problem.found.startswith("lock file pylock.counter.toml is not valid TOML: ")


def test_verify_does_not_import_the_serving_stack(small_archive: Archive) -> None:
    code = (
        "import sys\n"
        "from photonpack.cli import cli\n"
        f"try:\n    cli(['verify', {str(small_archive.path)!r}])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'uvicorn', 'starlette', 'pydantic'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
