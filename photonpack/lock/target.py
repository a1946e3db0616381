"""Targets: the interpreter and platform a photon is locked for and will run on.

The canonical spelling is ``<interpreter tag>-<platform tag>``, as in wheel
filenames: ``cp311-manylinux_2_28_x86_64``, ``cp312-macosx_11_0_arm64``,
``cp311-win_amd64``. ``3.11-manylinux_2_28_x86_64`` is accepted as an alias,
and the word ``host`` names this interpreter on this machine.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from photonpack.errors import TargetError

if TYPE_CHECKING:
    from packaging import tags

# packaging.tags is imported where it is used: it pulls in logging and subprocess, and an
# up-to-date ``photonpack lock`` must start fast.

__all__ = ["Target", "TargetError", "host_compatible"]

_INTERPRETER = re.compile(r"^(?:cp(?P<cp>3)(?P<cpminor>\d{1,2})|(?P<major>3)\.(?P<minor>\d{1,2}))$")
_MANYLINUX = re.compile(r"^manylinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>\w+)$")
_LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}
_MUSLLINUX = re.compile(r"^musllinux_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>\w+)$")
_MACOS = re.compile(r"^macosx_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>\w+)$")
_WINDOWS = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}
_EXAMPLE = "cp311-manylinux_2_28_x86_64"
_FAST_ARCHS = {"x86_64", "aarch64"}


@dataclasses.dataclass(frozen=True, kw_only=True, order=True)
class Target:
    """One CPython interpreter on one platform, e.g. ``cp311-manylinux_2_28_x86_64``."""

    interpreter: str
    platform: str

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse the canonical form, the ``3.11-<platform>`` alias, or ``host``."""
        if text.strip() == "host":
            return cls.host()
        interpreter, sep, platform = text.strip().partition("-")
        match = _INTERPRETER.match(interpreter)
        if not sep or match is None:
            raise TargetError(
                f"invalid target {text!r}: expected <interpreter>-<platform>, "
                f"e.g. {_EXAMPLE} or 3.12-macosx_11_0_arm64"
            )
        minor = match["cpminor"] or match["minor"]
        target = cls(interpreter=f"cp3{minor}", platform=platform.replace(".", "_").lower())
        target._platform_family()  # validates the platform
        return target

    @classmethod
    def host(cls) -> Target:
        """This interpreter and the most specific platform tag of this machine."""
        interpreter = f"cp{sys.version_info.major}{sys.version_info.minor}"
        return cls(interpreter=interpreter, platform=_host_platform())

    def __str__(self) -> str:
        return f"{self.interpreter}-{self.platform}"

    @property
    def python_version(self) -> tuple[int, int]:
        """``(3, 11)`` for ``cp311``."""
        return 3, int(self.interpreter[3:])

    def platforms(self) -> list[str]:
        """Platform tags a wheel may carry to run here, best first."""
        from packaging import tags

        family, arch = self._platform_family()
        if family == "manylinux":
            glibc = _manylinux_version(self.platform)
            found = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc[1], 4, -1)]
            legacy = [f"{name}_{arch}" for name, v in _LEGACY_MANYLINUX.items() if v <= glibc]
            return found + legacy
        if family == "musllinux":
            match = _MUSLLINUX.match(self.platform)
            assert match is not None
            return [f"musllinux_1_{minor}_{arch}" for minor in range(int(match["minor"]), -1, -1)]
        if family == "macosx":
            match = _MACOS.match(self.platform)
            assert match is not None
            version = (int(match["major"]), int(match["minor"]))
            return list(tags.mac_platforms(version, arch))
        return [self.platform]

    def tags(self) -> list[tags.Tag]:
        """Wheel tags this target installs, best first (CPython ABI, abi3, pure)."""
        from packaging import tags

        version = self.python_version
        platforms = self.platforms()
        found = list(tags.cpython_tags(version, abis=[self.interpreter], platforms=platforms))
        found += tags.compatible_tags(version, self.interpreter, platforms)
        return list(dict.fromkeys(found))

    def environment(self) -> dict[str, str]:
        """The PEP 508 marker environment of this target (micro version ``.0``)."""
        family, arch = self._platform_family()
        system, sys_platform, os_name = {
            "manylinux": ("Linux", "linux", "posix"),
            "musllinux": ("Linux", "linux", "posix"),
            "linux": ("Linux", "linux", "posix"),
            "macosx": ("Darwin", "darwin", "posix"),
            "win": ("Windows", "win32", "nt"),
        }[family]
        machine = _WINDOWS.get(self.platform, arch)
        python = "{}.{}".format(*self.python_version)
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{python}.0",
            "os_name": os_name,
            "platform_machine": machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": f"{python}.0",
            "python_version": python,
            "sys_platform": sys_platform,
        }

    def marker(self) -> str:
        """A PEP 508 marker that holds in this target's environment and no other's."""
        env = self.environment()
        keys = ("sys_platform", "platform_machine", "python_version", "implementation_name")
        return " and ".join(f"{key} == {env[key]!r}".replace("'", '"') for key in keys)

    def supports(self, wheel_filename: str) -> bool:
        """Whether a wheel with this filename installs on this target."""
        return self.wheel_rank(wheel_filename) is not None

    def wheel_rank(self, wheel_filename: str) -> int | None:
        from packaging.utils import InvalidWheelFilename, parse_wheel_filename

        try:
            wheel_tags = parse_wheel_filename(wheel_filename)[3]
        except InvalidWheelFilename:
            return None
        ranks = [_tag_ranks(self)[tag] for tag in wheel_tags if tag in _tag_ranks(self)]
        return min(ranks) if ranks else None

    def _platform_family(self) -> tuple[str, str]:
        for pattern, family in ((_MANYLINUX, "manylinux"), (_MUSLLINUX, "musllinux")):
            match = pattern.match(self.platform)
            if match:
                return family, match["arch"]
        legacy = self.platform.partition("_")
        if legacy[0] in _LEGACY_MANYLINUX and legacy[2]:
            return "manylinux", legacy[2]
        match = _MACOS.match(self.platform)
        if match:
            return "macosx", match["arch"]
        if self.platform in _WINDOWS:
            return "win", self.platform
        if self.platform.startswith("linux_"):
            return "linux", self.platform.removeprefix("linux_")
        raise TargetError(
            f"unsupported platform {self.platform!r} in target {self}: expected a wheel "
            "platform tag such as manylinux_2_28_x86_64, musllinux_1_2_aarch64, "
            "macosx_11_0_arm64 or win_amd64"
        )


@functools.cache
def _tag_ranks(target: Target) -> dict[tags.Tag, int]:
    return {tag: rank for rank, tag in enumerate(target.tags())}


def _manylinux_version(platform: str) -> tuple[int, int]:
    match = _MANYLINUX.match(platform)
    if match:
        return int(match["major"]), int(match["minor"])
    return _LEGACY_MANYLINUX[platform.partition("_")[0]]


def _host_platforms() -> Iterator[str]:
    from packaging import tags

    yield from tags.platform_tags()


def _glibc_host() -> tuple[int, int, str] | None:
    """(glibc major, minor, machine) on a 64-bit glibc Linux of a common architecture."""
    glibc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    machine = os.uname().machine if hasattr(os, "uname") else ""
    if sys.platform == "linux" and glibc and sys.maxsize > 2**32 and machine in _FAST_ARCHS:
        major, _, minor = glibc.partition(" ")[2].partition(".")
        minor = minor.split(".")[0]
        if major.isdigit() and minor.isdigit():
            return int(major), int(minor), machine
    return None


def _fast_host_platforms() -> set[str] | None:
    """``set(packaging.tags.platform_tags())`` on a 64-bit glibc Linux, without importing it.

    What a warm ``photonpack run`` asks: packaging.tags (and the logging it pulls
    in) costs ~20 ms. ``tests/test_target.py`` checks it against packaging.
    """
    host = _glibc_host()
    if host is None or host[0] != 2:
        return None
    _major, minor, machine = host
    oldest = 5 if machine == "x86_64" else 17  # manylinux1 / manylinux2014
    platforms = {f"linux_{machine}"}
    platforms |= {f"manylinux_2_{m}_{machine}" for m in range(oldest, minor + 1)}
    platforms |= {
        f"{legacy}_{machine}"
        for legacy, (_two, version) in _LEGACY_MANYLINUX.items()
        if oldest <= version <= minor
    }
    return platforms


def _host_platform() -> str:
    # The common case, a 64-bit glibc Linux, without importing packaging.tags; it
    # gives the same answer as the first manylinux tag of packaging.tags.platform_tags().
    host = _glibc_host()
    if host is not None:
        return f"manylinux_{host[0]}_{host[1]}_{host[2]}"
    platforms = list(_host_platforms())
    # ``linux_<arch>`` is the tag of locally built wheels; indexes serve manylinux ones.
    portable = [p for p in platforms if not p.startswith("linux_")]
    return (portable or platforms)[0]


def host_compatible(targets: Iterable[Target]) -> Target | None:
    """The first of ``targets`` that this interpreter on this machine can run."""
    host = Target.host()
    platforms = _fast_host_platforms() or set(_host_platforms())
    for target in targets:
        if target.interpreter == host.interpreter and target.platform in platforms:
            return target
    return None
