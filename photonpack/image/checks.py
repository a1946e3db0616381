"""What the base holds, read from its own layers, against what the archive needs.

Checked before anything is written: a CPython whose version, C library and
architecture match one of the archive's targets, and the photon's
``system_dependency`` packages in the base's package database (dpkg's
``/var/lib/dpkg/status`` and ``status.d/``, or apk's ``/lib/apk/db/installed``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from photonpack.errors import ImageError
from photonpack.image.rootfs import RootFS
from photonpack.lock.target import Target

__all__ = ["BaseFacts", "BasePython", "base_facts", "match_target", "missing_packages"]

# OCI architecture (and variant) -> wheel machine; arm without a variant is v7, as Docker takes it.
_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7l", "arm/v7": "armv7l"}
_ARCH |= {"arm/v6": "armv6l", "386": "i686"}
_GLIBC_TEXT = re.compile(rb"GNU C Library[^\n]*?version (\d+)\.(\d+)")
_DEB_VERSION = re.compile(r"^(?:\d+:)?(\d+)\.(\d+)")
_PYTHON_DIRS = ("usr/local", "usr")
_MINORS = range(20, 5, -1)


@dataclass(frozen=True, kw_only=True)
class BasePython:
    """A CPython of the base: ``/usr/bin/python3.11``, version ``3.11.2``."""

    executable: str  # absolute path in the image
    version: str  # "3.11.2", or "3.11" when the patch level cannot be read
    minor: int

    @property
    def short_version(self) -> str:
        return f"3.{self.minor}"


@dataclass(frozen=True, kw_only=True)
class BaseFacts:
    """The base's architecture, C library, Pythons and installed packages."""

    architecture: str  # wheel spelling: "x86_64", "aarch64", "armv7l", "armv6l"
    libc: tuple[str, int, int] | None  # ("glibc", 2, 36) or ("musl", 1, 2)
    pythons: tuple[BasePython, ...]
    package_db: str | None  # "dpkg", "apk", or None
    packages: frozenset[str]

    def describe_python(self) -> str:
        if not self.pythons:
            return "no CPython (looked for /usr/local/bin/python3.N and /usr/bin/python3.N)"
        return ", ".join(f"CPython {p.version} at {p.executable}" for p in self.pythons)

    def describe_platform(self) -> str:
        libc = f"{self.libc[0]} {self.libc[1]}.{self.libc[2]}" if self.libc else "unknown libc"
        return f"{libc} on {self.architecture}"

    def target(self, python: BasePython) -> Target | None:
        """The target this Python on this base is: ``cp311-manylinux_2_36_x86_64``."""
        if self.libc is None:
            return None
        family = "manylinux" if self.libc[0] == "glibc" else "musllinux"
        platform = f"{family}_{self.libc[1]}_{self.libc[2]}_{self.architecture}"
        return Target(interpreter=f"cp3{python.minor}", platform=platform)


def _dpkg(fs: RootFS) -> dict[str, str] | None:
    """Installed Debian packages (name -> version), or None without a dpkg database."""
    texts = [fs.read("var/lib/dpkg/status")]
    texts += [data for path, data in sorted(fs.contents.items()) if "dpkg/status.d/" in path]
    if all(text is None for text in texts):
        return None
    found: dict[str, str] = {}
    for text in texts:
        for stanza in (text or b"").decode("utf-8", "replace").split("\n\n"):
            fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line[:80])
            status = fields.get("Status", "install ok installed")  # status.d omits it
            if "Package" in fields and status.endswith(" installed"):
                found[fields["Package"].split(":")[0]] = fields.get("Version", "")
    return found


def _apk(fs: RootFS) -> dict[str, str] | None:
    text = fs.read("lib/apk/db/installed")
    if text is None:
        return None
    found: dict[str, str] = {}
    name = ""
    for line in text.decode("utf-8", "replace").splitlines():
        if line.startswith("P:"):
            name = line[2:]
        elif line.startswith("V:") and name:
            found[name] = line[2:]
    return found


def _libc(fs: RootFS, packages: Mapping[str, str]) -> tuple[str, int, int] | None:
    if "musl" in packages or any(p.startswith("lib/ld-musl-") for p in fs.nodes):
        match = _DEB_VERSION.match(packages.get("musl", "1.2"))
        return ("musl", int(match[1]), int(match[2])) if match else ("musl", 1, 2)
    if (match := _DEB_VERSION.match(packages.get("libc6", ""))) is not None:
        return "glibc", int(match[1]), int(match[2])
    for path, data in sorted(fs.contents.items()):
        if path.endswith("libc.so.6") and (found := _GLIBC_TEXT.search(data)):
            return "glibc", int(found[1]), int(found[2])
    return None


def _pythons(fs: RootFS, packages: Mapping[str, str], env: Mapping[str, str]) -> list[BasePython]:
    found = []
    for minor in _MINORS:
        for prefix in _PYTHON_DIRS:
            executable = f"{prefix}/bin/python3.{minor}"
            if (
                fs.kind(executable) != "file"
                or fs.kind(f"{prefix}/lib/python3.{minor}/os.py") != "file"
            ):
                continue
            version = f"3.{minor}"
            deb = packages.get(f"python3.{minor}-minimal") or packages.get(f"python3.{minor}", "")
            if (match := re.match(rf"^(3\.{minor}\.\d+)", deb)) is not None:
                version = match[1]
            elif env.get("PYTHON_VERSION", "").startswith(f"3.{minor}."):
                version = env["PYTHON_VERSION"]
            found.append(BasePython(executable=f"/{executable}", version=version, minor=minor))
            break
    return found


def base_facts(fs: RootFS, config: Mapping[str, Any]) -> BaseFacts:
    """Read the facts the checks need from the base's tree and config."""
    architecture = str(config.get("architecture", ""))
    variant = str(config.get("variant") or "")
    architecture = _ARCH.get(f"{architecture}/{variant}", _ARCH.get(architecture, architecture))
    items = [str(item) for item in (config.get("config") or {}).get("Env") or []]
    env = dict(item.split("=", 1) for item in items if "=" in item)
    dpkg, apk = _dpkg(fs), _apk(fs)
    packages = dpkg if dpkg is not None else apk if apk is not None else {}
    return BaseFacts(
        architecture=architecture,
        libc=_libc(fs, packages),
        pythons=tuple(_pythons(fs, packages, env)),
        package_db="dpkg" if dpkg is not None else "apk" if apk is not None else None,
        packages=frozenset(packages),
    )


def match_target(
    facts: BaseFacts, targets: Sequence[str], *, base: str
) -> tuple[BasePython, Target, Target]:
    """The base's Python, its own target, and the archive's target it runs.

    Raises :class:`ImageError` naming the base's Pythons and the archive's targets.
    """
    for python in facts.pythons:
        own = facts.target(python)
        if own is None:
            continue
        platforms = set(own.platforms())
        for text in targets:
            target = Target.parse(text)
            if target.interpreter == own.interpreter and target.platform in platforms:
                return python, own, target
    raise ImageError(
        f"base {base} has {facts.describe_python()} ({facts.describe_platform()}), but the "
        f"archive was built for {', '.join(targets)}; choose a base with a matching CPython "
        "(e.g. --base for a python:3.X image of that platform) or rebuild with --target"
    )


def missing_packages(facts: BaseFacts, wanted: Sequence[str], *, base: str) -> list[str]:
    """The ``system_dependency`` packages the base lacks.

    Raises :class:`ImageError` when there is something to check but no package
    database photonpack can read.
    """
    if not wanted:
        return []
    if facts.package_db is None:
        raise ImageError(
            f"base {base} has no dpkg or apk package database, so its system packages "
            f"({', '.join(wanted)}) cannot be checked; choose a Debian or Alpine base, or pass "
            "--skip-system-check"
        )
    return [name for name in wanted if name.split(":")[0] not in facts.packages]
