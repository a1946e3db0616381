"""Targets: parsing, wheel tags, and the marker environment of a machine we are not on."""

from __future__ import annotations

import os
import sys

import pytest
from packaging import tags

from photonpack.lock.target import Target, TargetError, _fast_host_platforms, host_compatible

X86 = Target.parse("cp311-manylinux_2_28_x86_64")
ARM = Target.parse("cp312-manylinux_2_28_aarch64")


def test_parse_canonical_form_round_trips() -> None:
    assert Target(interpreter="cp311", platform="manylinux_2_28_x86_64") == X86
    assert str(X86) == "cp311-manylinux_2_28_x86_64"


def test_parse_accepts_dotted_version_alias() -> None:
    assert Target.parse("3.12-manylinux_2_28_aarch64") == ARM


def test_parse_host_is_this_interpreter() -> None:
    assert Target.parse("host") == Target.host()


def test_parse_rejects_text_without_platform() -> None:
    with pytest.raises(TargetError) as info:
        Target.parse("linux")
    assert str(info.value) == (
        "invalid target 'linux': expected <interpreter>-<platform>, "
        "e.g. cp311-manylinux_2_28_x86_64 or 3.12-macosx_11_0_arm64"
    )


def test_parse_rejects_unknown_platform() -> None:
    with pytest.raises(
        TargetError, match=r"unsupported platform 'beos_x86' in target cp311-beos_x86"
    ):
        Target.parse("cp311-beos_x86")


def test_environment_describes_the_target_not_this_machine() -> None:
    env = ARM.environment()
    assert env["platform_machine"] == "aarch64"
    assert env["python_version"] == "3.12"
    assert env["sys_platform"] == "linux"
    assert env["platform_system"] == "Linux"
    assert env["implementation_name"] == "cpython"


def test_macos_and_windows_environments() -> None:
    mac = Target.parse("cp311-macosx_11_0_arm64").environment()
    win = Target.parse("cp311-win_amd64").environment()
    assert (mac["sys_platform"], mac["platform_machine"]) == ("darwin", "arm64")
    assert (win["sys_platform"], win["platform_machine"], win["os_name"]) == (
        "win32",
        "AMD64",
        "nt",
    )


def test_tags_accept_older_manylinux_abi3_and_pure_wheels() -> None:
    assert X86.supports("numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert X86.supports("cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl")
    assert X86.supports("six-1.16.0-py2.py3-none-any.whl")


def test_tags_reject_other_arch_python_or_newer_glibc() -> None:
    assert not X86.supports("numpy-2.1.0-cp311-cp311-manylinux_2_17_aarch64.whl")
    assert not X86.supports("numpy-2.1.0-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert not X86.supports("numpy-2.1.0-cp311-cp311-manylinux_2_34_x86_64.whl")
    assert not X86.supports("not-a-wheel.tar.gz")


def test_wheel_rank_prefers_the_most_specific_wheel() -> None:
    specific = X86.wheel_rank("x-1-cp311-cp311-manylinux_2_28_x86_64.whl")
    older = X86.wheel_rank("x-1-cp311-cp311-manylinux_2_17_x86_64.whl")
    pure = X86.wheel_rank("x-1-py3-none-any.whl")
    assert specific is not None and older is not None and pure is not None
    assert specific < older < pure


def test_host_uses_the_first_portable_platform_tag_of_packaging() -> None:
    expected = next(p for p in tags.platform_tags() if not p.startswith("linux_"))
    assert Target.host().platform == expected


def test_platforms_known_without_packaging_are_packagings() -> None:
    # The warm start's fast path: a 64-bit glibc Linux (this machine and CI); None elsewhere.
    glibc_linux = sys.platform == "linux" and os.confstr("CS_GNU_LIBC_VERSION") is not None
    common = os.uname().machine in {"x86_64", "aarch64"} and sys.maxsize > 2**32
    expected = set(tags.platform_tags()) if glibc_linux and common else None
    assert _fast_host_platforms() == expected


def test_host_compatible_picks_the_target_this_machine_runs() -> None:
    host = Target.host()
    assert host_compatible([ARM, host]) == host
    assert host_compatible([Target(interpreter="cp39", platform=host.platform)]) is None
