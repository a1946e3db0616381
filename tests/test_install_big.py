"""Big members (a torch ``.so``, weights) are streamed: exact bytes, same checks, flat memory."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from photonpack.errors import IntegrityError
from photonpack.install.installer import create_environment
from tests.support.wheels import build_big_wheel, build_wheel
from tests.test_install import TRUST

MIB = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(MIB):
            digest.update(piece)
    return digest.hexdigest()


def _deflated_payload() -> bytes:
    """40 MiB that deflates well but not trivially: random words."""
    rng = random.Random(7)
    words = [rng.randbytes(4).hex().encode() for _ in range(4096)]
    return b" ".join(rng.choice(words) for _ in range(40 * MIB // 9))


def _data_offset(wheel: Path, member: str) -> int:
    with zipfile.ZipFile(wheel) as zf:
        offset = zf.getinfo(member).header_offset
    with wheel.open("rb") as handle:
        handle.seek(offset + 26)
        header = handle.read(4)
    return offset + 30 + int.from_bytes(header[:2], "little") + int.from_bytes(header[2:], "little")


def _poke(wheel: Path, position: int, value: int) -> None:
    with wheel.open("r+b") as handle:
        handle.seek(position)
        handle.write(bytes([value]))


def test_big_stored_and_deflated_members_install_byte_for_byte(tmp_path: Path) -> None:
    payload = _deflated_payload()
    deflated = build_wheel(tmp_path, "model", "1.0", files={"model/weights.txt": payload})
    stored = build_big_wheel(tmp_path, "blob", "1.0", 40 * MIB, member_size=24 * MIB)
    env = tmp_path / "env"
    create_environment(env, wheels=[deflated, stored], compile_bytecode=False)
    site = next(env.glob("lib/python*/site-packages"))
    assert _sha256(site / "model" / "weights.txt") == hashlib.sha256(payload).hexdigest()
    with zipfile.ZipFile(stored) as zf:
        for name in ("blob/weights-0.bin", "blob/weights-1.bin"):
            assert _sha256(site / name) == hashlib.sha256(zf.read(name)).hexdigest()


def test_flipped_byte_in_a_big_member_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    wheel = build_big_wheel(tmp_path, "blob", "1.0", 20 * MIB, member_size=20 * MIB)
    position = _data_offset(wheel, "blob/weights-0.bin") + 12 * MIB
    with wheel.open("rb") as handle:
        handle.seek(position)
        old = handle.read(1)[0]
    _poke(wheel, position, old ^ 0xFF)
    with pytest.raises(IntegrityError) as info:
        create_environment(tmp_path / "env", wheels=[wheel], compile_bytecode=False)
    message = str(info.value)
    assert message.startswith(
        "wheel blob-1.0-py3-none-any.whl cannot be trusted: member blob/weights-0.bin has sha256 "
    )
    assert ", but RECORD says " in message
    assert message.endswith(f". {TRUST}")
    assert not (tmp_path / "env").exists()


def test_broken_deflate_stream_in_a_big_member_is_refused(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "model", "1.0", files={"model/weights.txt": _deflated_payload()})
    _poke(wheel, _data_offset(wheel, "model/weights.txt"), 0xFF)  # BTYPE 11: reserved
    with pytest.raises(IntegrityError) as info:
        create_environment(tmp_path / "env", wheels=[wheel], compile_bytecode=False)
    assert str(info.value) == (
        "wheel model-1.0-py3-none-any.whl cannot be trusted: member model/weights.txt is not "
        f"valid deflate data. {TRUST}"
    )
    assert not (tmp_path / "env").exists()


INSTALL = """
import sys
from pathlib import Path
from photonpack.install.installer import create_environment
create_environment(Path(sys.argv[1]), wheels=[Path(sys.argv[2])], compile_bytecode=False)
status = Path("/proc/self/status").read_text().splitlines()
print([line.split()[1] for line in status if line.startswith("VmHWM:")][0])
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_installing_a_big_wheel_keeps_memory_well_below_its_size(tmp_path: Path) -> None:
    wheel = build_big_wheel(tmp_path, "blob", "1.0", 384 * MIB)
    done = subprocess.run(
        [sys.executable, "-c", INSTALL, tmp_path / "env", wheel],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    peak = int(done.stdout.split()[-1]) * 1024
    assert peak < 192 * MIB, f"peak RSS {peak / MIB:.0f} MiB for a 384 MiB wheel"


KEPT = """
import sys
from pathlib import Path
from photonpack.install.installer import create_environment
create_environment(Path(sys.argv[1]), wheels=[Path(sys.argv[2])], compile_bytecode=False)
status = Path("/proc/self/status").read_text().splitlines()
print([line.split()[1] for line in status if line.startswith("RssAnon:")][0])
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_memory_of_members_inflated_whole_is_given_back(tmp_path: Path) -> None:
    # The torch set's shape: hundreds of MiB in members of a few KiB to 16 MiB, each
    # inflated whole by a worker thread. glibc's adaptive mmap threshold kept their freed
    # buffers in per-thread heaps: the install's memory grew with what it wrote (316 MB
    # peak for torch's 3 GB); here 66 MiB were still held at the end, against 15 MiB now.
    rng = random.Random(19)
    files: dict[str, bytes] = {}
    total = 0
    while total < 300 * MIB:
        size = int(2 ** rng.uniform(12, 24))
        files[f"parts/part-{len(files)}.bin"] = rng.randbytes(size // 2) + bytes(size - size // 2)
        total += size
    wheel = build_wheel(tmp_path, "parts", "1.0", files=files)
    del files
    done = subprocess.run(
        [sys.executable, "-c", KEPT, tmp_path / "env", wheel],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    kept = int(done.stdout.split()[-1]) * 1024
    assert kept < 40 * MIB, f"{kept / MIB:.0f} MiB of anonymous memory kept after the install"
