"""ZIP confusion wheels (uv's rules after CVE-2025-54368) are refused at install, verify and run."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.archive import blob_member
from photonpack.cli import cli
from photonpack.errors import IntegrityError
from photonpack.install.installer import create_environment
from tests.support.archives import make_archive
from tests.support.wheels import build_wheel
from tests.support.zipcraft import central_entry, local_header, patch

MODULE = "tinydep/__init__.py"
METADATA = "tinydep-1.0.dist-info/METADATA"


def _info(path: Path, member: str = MODULE) -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as zf:
        return zf.getinfo(member)


def _values(crc: int, compressed: int, size: int) -> str:
    return f"CRC {crc:08x}, {compressed} bytes compressed, {size} bytes"


def local_name_differs(path: Path) -> str:
    at = local_header(path.read_bytes(), MODULE)
    patch(path, at + 30 + len(MODULE) - 1, "<B", ord("z"))  # __init__.py -> __init__.pz
    return (
        f"member {MODULE} is named 'tinydep/__init__.pz' in its local header "
        "(local header and central directory disagree)"
    )


def local_size_differs(path: Path) -> str:
    info = _info(path)
    patch(path, local_header(path.read_bytes(), MODULE) + 22, "<I", info.file_size + 1)
    central = _values(info.CRC, info.compress_size, info.file_size)
    local = _values(info.CRC, info.compress_size, info.file_size + 1)
    return f"member {MODULE} has {local} in its local header but {central} in the central directory"


def local_method_differs(path: Path) -> str:
    patch(path, local_header(path.read_bytes(), MODULE) + 8, "<H", zipfile.ZIP_STORED)
    return (
        f"member {MODULE} has compression method 0 in its local header but 8 in the "
        "central directory"
    )


def data_after_the_end_record(path: Path) -> str:
    path.write_bytes(path.read_bytes() + b"hidden")
    return "6 bytes follow the end-of-central-directory record"


def bytes_before_the_first_local_header(path: Path) -> str:
    path.write_bytes(b"#!/bin/sh\nexit\n" + path.read_bytes())
    return "15 bytes come before the first local header"


def members_overlap(path: Path) -> str:
    info, data = _info(path), path.read_bytes()
    longer = info.compress_size + 40  # reaches into the next member, in both headers alike
    patch(path, local_header(data, MODULE) + 18, "<I", longer)
    patch(path, central_entry(data, MODULE) + 20, "<I", longer)
    return f"members {MODULE} and {METADATA} overlap"


RULES: dict[str, Callable[[Path], str]] = {
    "local-name": local_name_differs,
    "local-size": local_size_differs,
    "local-method": local_method_differs,
    "trailing-data": data_after_the_end_record,
    "prefix-data": bytes_before_the_first_local_header,
    "overlap": members_overlap,
}


def crafted(tmp_path: Path, rule: str) -> tuple[Path, str]:
    wheel = build_wheel(tmp_path / "wheels", "tinydep", "1.0")
    return wheel, RULES[rule](wheel)


def message(reason: str) -> str:
    return (
        f"wheel tinydep-1.0-py3-none-any.whl cannot be trusted: {reason}. The archive that "
        "carries it was built from a broken or tampered wheel; rebuild it from a clean "
        "package index."
    )


@pytest.mark.parametrize("rule", sorted(RULES))
def test_install_refuses_a_zip_confusion_wheel_naming_it_and_the_rule(
    tmp_path: Path, rule: str
) -> None:
    wheel, reason = crafted(tmp_path, rule)
    destination = tmp_path / "env"
    with pytest.raises(IntegrityError) as info:
        create_environment(destination, wheels=[wheel], compile_bytecode=False)
    assert str(info.value) == message(reason)
    assert info.value.exit_code == 3
    assert not destination.exists()


@pytest.mark.parametrize("rule", sorted(RULES))
def test_verify_refuses_a_zip_confusion_wheel_with_exit_3(tmp_path: Path, rule: str) -> None:
    reasons: list[str] = []
    archive = make_archive(tmp_path, wheel_transform=lambda p: reasons.append(RULES[rule](p)))
    [wheel] = archive.manifest.wheels
    result = CliRunner().invoke(cli, ["verify", str(archive.path)])
    assert result.exit_code == 3
    assert result.stdout == (
        f"FAIL {blob_member(wheel.sha256)} (wheel:{wheel.filename}): expected a wheel that "
        f"follows the binary distribution format, found {reasons[0]}\n"
    )


@pytest.mark.parametrize("rule", ["local-name", "trailing-data"])
def test_run_refuses_a_zip_confusion_wheel_before_installing(
    tmp_path: Path, photonpack_home: Path, rule: str
) -> None:
    reasons: list[str] = []
    archive = make_archive(tmp_path, wheel_transform=lambda p: reasons.append(RULES[rule](p)))
    result = CliRunner().invoke(cli, ["run", str(archive.path), "--port", "0"])
    assert result.exit_code == 3, result.output
    assert f"found {reasons[0]}" in result.stderr
    assert "Traceback" not in result.output
    assert not (photonpack_home / "envs").exists()
    assert not (photonpack_home / "manifests").exists() or not any(
        (photonpack_home / "manifests").iterdir()
    )


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors (flag bit 3)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def _with_data_descriptors(wheel: Path) -> None:
    out = _Unseekable()
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(out, "w") as zf:
        for info in source.infolist():
            zf.writestr(info, source.read(info))
    wheel.write_bytes(bytes(out.data))


def test_a_wheel_with_data_descriptors_installs(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "wheels", "tinydep", "1.0")
    _with_data_descriptors(wheel)
    assert _info(wheel).flag_bits & 0x08
    create_environment(tmp_path / "env", wheels=[wheel], compile_bytecode=False)
    [installed] = (tmp_path / "env").glob(f"lib/*/site-packages/{MODULE}")
    assert installed.read_text() == "VERSION = '1.0'\n"


def test_a_data_descriptor_that_disagrees_with_the_central_directory_is_refused(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path / "wheels", "tinydep", "1.0")
    _with_data_descriptors(wheel)
    info = _info(wheel)
    data = wheel.read_bytes()
    start = local_header(data, MODULE) + 30 + len(MODULE)
    descriptor = start + info.compress_size  # signature, CRC, compressed size, size
    patch(wheel, descriptor + 12, "<I", info.file_size + 7)
    central = _values(info.CRC, info.compress_size, info.file_size)
    found = _values(info.CRC, info.compress_size, info.file_size + 7)
    with pytest.raises(IntegrityError) as raised:
        create_environment(tmp_path / "env", wheels=[wheel], compile_bytecode=False)
    assert str(raised.value) == message(
        f"member {MODULE} has {found} in its data descriptor but {central} in the central directory"
    )
    assert not (tmp_path / "env").exists()
