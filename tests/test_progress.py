"""Progress on a terminal: one stderr line redrawn in place, and nothing at all elsewhere.

The real CLI runs in a child process whose stdout and stderr are a pty (as in
a terminal) or pipes (as in CI); the archive is a few MiB of incompressible
bytes, so reading it takes many reads.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from photonpack._units import format_size
from photonpack.admit import admit_archive
from photonpack.store import Store
from tests.support.archives import Archive, make_archive
from tests.support.index import PackageIndex
from tests.support.registry import Registry
from tests.support.stack import write_photon

_PAYLOAD = 12 << 20
_SIZE = r"[\d.]+ [KMG]?i?B"


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    directory = tmp_path_factory.mktemp("big")
    payload = {"data/weights.bin": os.urandom(_PAYLOAD), "data/more.bin": os.urandom(_PAYLOAD)}
    return make_archive(directory, extra_files=payload)


def _on_tty(*args: str, columns: int = 0) -> tuple[int, bytes]:
    """Run ``photonpack ARGS`` with stdout and stderr on one pty; its exit code and output."""
    leader, follower = pty.openpty()
    if columns:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    child = subprocess.Popen(
        [sys.executable, "-m", "photonpack", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            child.kill()
            raise AssertionError(f"no output for 60 s; so far: {output!r}")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return child.wait(), output


def _piped(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "photonpack", *args], capture_output=True, check=False
    )


def _ok_line(archive: Archive) -> str:
    m = archive.manifest
    return f"ok counter {m.digest} ({len(m.blobs())} blobs, {format_size(m.total_size)} verified)"


def test_verify_on_a_terminal_draws_progress_then_the_result(big_archive: Archive) -> None:
    code, output = _on_tty("verify", str(big_archive.path))
    text = output.decode().replace("\r\n", "\n")
    assert code == 0
    draws = [part for part in text.split("\r") if part.startswith("verifying  ")]
    assert draws, text
    size = format_size(big_archive.path.stat().st_size)
    assert all(f" / {size}" in draw for draw in draws), draws
    # The line is erased before the result: the last visible line is the normal one.
    last = text.split("\n")[-2].split("\r")[-1]
    assert last == _ok_line(big_archive)
    assert text.endswith(_ok_line(big_archive) + "\n")


def test_a_narrow_terminal_gets_lines_that_fit_it(big_archive: Archive) -> None:
    code, output = _on_tty("verify", str(big_archive.path), columns=40)
    text = output.decode()
    assert code == 0, text
    draws = [part for part in text.split("\r") if " / " in part]
    assert draws, text
    assert all(len(draw) < 40 for draw in draws), draws


def test_verify_by_name_on_a_terminal_draws_the_bytes_hashed(big_archive: Archive) -> None:
    store = Store()
    manifest = admit_archive(big_archive.path, store)
    store.refs.put("big", manifest.digest, big_archive.path.stat().st_size)
    code, output = _on_tty("verify", "-n", "big")
    text = output.decode()
    assert code == 0, text
    draws = [part for part in text.split("\r") if part.startswith("verifying  ")]
    total = format_size(manifest.total_size)
    assert draws, text
    assert all(re.fullmatch(rf"verifying  {_SIZE} / {total}(  {_SIZE}/s)? *", d) for d in draws)
    assert text.replace("\r\n", "\n").split("\n")[-2].split("\r")[-1] == _ok_line(big_archive)
    piped = _piped("verify", "-n", "big")
    assert piped.stdout == (_ok_line(big_archive) + "\n").encode()
    assert piped.stderr == b""


def test_verify_quiet_on_a_terminal_draws_no_progress(big_archive: Archive) -> None:
    code, output = _on_tty("-q", "verify", str(big_archive.path))
    assert code == 0
    assert output.decode() == _ok_line(big_archive) + "\r\n"


def test_verify_into_a_pipe_prints_only_the_result(big_archive: Archive) -> None:
    result = _piped("verify", str(big_archive.path))
    assert result.returncode == 0
    assert result.stdout == (_ok_line(big_archive) + "\n").encode()
    assert result.stderr == b""


def _visible(text: str) -> list[str]:
    """The lines a terminal ends up showing: what follows the last ``\\r`` of each line."""
    return [line.split("\r")[-1] for line in text.replace("\r\n", "\n").split("\n")]


_DRAW = re.compile(rf"((pushing|pulling) \S+|writing)  {_SIZE} / {_SIZE}(  {_SIZE}/s)? *")


def _assert_draws(text: str, verb: str) -> None:
    """At least one progress line was drawn (the first is never held back), each well formed."""
    draws = [part for part in text.split("\r") if part.startswith((f"{verb} ", "writing  "))]
    assert any(draw.startswith(f"{verb} ") for draw in draws), text
    assert all(_DRAW.fullmatch(draw) for draw in draws), draws


def test_push_and_pull_on_a_terminal_draw_progress_then_the_result(
    big_archive: Archive, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"{registry.host}/progress/counter:v1"
    code, output = _on_tty("push", str(big_archive.path), ref)
    text = output.decode()
    assert code == 0, text
    _assert_draws(text, "pushing")
    shown = [line for line in _visible(text) if line.strip()]
    assert shown[0].startswith(f"pushed {ref}: uploaded "), shown
    assert shown[1].startswith("sha256:"), shown
    assert len(shown) == 2, shown

    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "elsewhere"))  # nothing to reuse
    out = tmp_path / "pulled.photon"
    code, output = _on_tty("pull", ref, "-o", str(out))
    text = output.decode()
    assert code == 0, text
    _assert_draws(text, "pulling")
    shown = [line for line in _visible(text) if line.strip()]
    assert shown[0].startswith(f"pulled {ref} to {out}: downloaded "), shown
    assert shown[1:] == [big_archive.manifest.digest], shown
    assert out.read_bytes() == big_archive.path.read_bytes()


def test_push_and_pull_into_pipes_print_only_the_result(
    big_archive: Archive, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"{registry.host}/progress/piped:v1"
    pushed = _piped("push", str(big_archive.path), ref)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stderr.decode().startswith(f"pushed {ref}: uploaded ")
    assert pushed.stderr.count(b"\n") == 1
    assert b"\r" not in pushed.stderr + pushed.stdout
    assert pushed.stdout.startswith(b"sha256:")
    assert pushed.stdout.count(b"\n") == 1

    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "elsewhere"))  # nothing to reuse
    out = tmp_path / "pulled.photon"
    pulled = _piped("pull", ref, "-o", str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stderr.startswith(f"pulled {ref} to {out}: downloaded ".encode())
    assert pulled.stderr.count(b"\n") == 1 and b"\r" not in pulled.stderr
    assert pulled.stdout == f"{big_archive.manifest.digest}\n".encode()


def test_build_on_a_terminal_draws_downloads_and_writing_then_the_result(
    real_index: PackageIndex, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    photon = write_photon(
        source,
        "from photonpack import Photon\nclass Big(Photon):\n    extra_files = ['weights.bin']\n",
    )
    (source / "weights.bin").write_bytes(os.urandom(_PAYLOAD))
    out = tmp_path / "big.photon"
    args = ("build", "-m", str(photon), "--index-url", real_index.url, "-o", str(out))
    code, output = _on_tty(*args)  # cold: locks, downloads the wheels, writes the archive
    text = output.decode()
    assert code == 0, text
    for stage in ("downloading wheels", "writing"):
        draws = [part for part in text.split("\r") if part.startswith(f"{stage}  ")]
        assert draws, text
        drawn = re.compile(rf"{stage}  {_SIZE} / {_SIZE}(  {_SIZE}/s)? *")
        assert all(drawn.fullmatch(draw) for draw in draws), draws

    out.unlink()  # warm: the wheels are in the store, only the archive is written again
    code, output = _on_tty(*args)
    text = output.decode()
    assert code == 0, text
    assert "\rwriting  " in text, text
    out.unlink()
    warm = _piped(*args)
    assert warm.returncode == 0, warm.stderr
    assert b"\r" not in warm.stdout + warm.stderr
    expected = (warm.stderr + warm.stdout).decode().splitlines()
    assert sorted(line for line in _visible(text) if line) == sorted(expected)
