"""``photonpack lock`` on a terminal: one line counting what the resolution met, then the result."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.index import PackageIndex, add_serving_stack
from tests.test_progress import _on_tty, _piped, _visible

_PHOTON = """
from photonpack import Photon


class Counter(Photon):
    requirement_dependency = ["app"]
"""


def _photon(index: PackageIndex, tmp_path: Path) -> list[str]:
    add_serving_stack(index)
    index.add("app", "1.0", requires=["common"])
    index.add("common", "1.0")
    (tmp_path / "counter.py").write_text(_PHOTON)
    return [
        "lock", "-m", str(tmp_path / "counter.py"), "--index-url", index.url,
        "--target", "cp311-manylinux_2_28_x86_64", "--target", "cp312-manylinux_2_28_aarch64",
    ]  # fmt: skip


def test_lock_on_a_terminal_counts_packages_then_prints_the_result(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    code, output = _on_tty(*_photon(package_index, tmp_path))
    text = output.decode()
    assert code == 0, text
    draws = [part.strip() for part in text.split("\r") if part.startswith("resolving")]
    assert draws, text
    assert all(re.fullmatch(r"resolving for 2 targets … \d+ packages", d) for d in draws), draws
    visible = [line for line in _visible(text) if line.strip()]
    assert visible == [
        "locked 9 packages, 9 wheels for cp311-manylinux_2_28_x86_64, "
        f"cp312-manylinux_2_28_aarch64 -> {tmp_path / 'pylock.counter.toml'}"
    ]


def test_lock_into_a_pipe_or_with_q_prints_no_progress(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    args = _photon(package_index, tmp_path)
    piped = _piped(*args)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == b""
    code, output = _on_tty("-q", *args, "-U")
    assert code == 0
    assert "resolving" not in output.decode()


def test_lock_for_this_machine_on_a_terminal_says_resolving(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    args = _photon(package_index, tmp_path)[:5]  # no --target: this machine
    code, output = _on_tty(*args)
    text = output.decode()
    assert code == 0, text
    draws = [part.strip() for part in text.split("\r") if part.startswith("resolving")]
    assert draws, text
    assert all(re.fullmatch(r"resolving … \d+ packages", d) for d in draws), draws
