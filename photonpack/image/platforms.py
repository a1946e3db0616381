"""Platforms (``linux/arm64``): what ``--platform`` asks for, what the archive and base offer.

An image for a platform needs both a base image of that platform and a target
of the archive's for it: there is no emulation (installing wheels is unpacking
them, so none is needed), but nothing can make an amd64 wheel run on arm64.
So the platforms asked for are checked against both lists before anything is
built, and a missing one is one error naming both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from photonpack.errors import ImageError, UsageError
from photonpack.lock.target import Target

__all__ = [
    "architecture_of",
    "archive_architecture",
    "archive_platform",
    "archive_platforms",
    "check_platforms",
    "index_platforms",
    "parse_platforms",
    "platform_of",
    "target_platform",
]

# Wheel platform tags' machine names -> OCI (GOARCH) architecture and variant.
_MACHINES = {
    "x86_64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}
_PLATFORM = re.compile(r"linux/[a-z0-9]+(?:/v[0-9]+)?")


def parse_platforms(text: str) -> tuple[str, ...]:
    """``linux/amd64,linux/arm64`` -> the platforms, sorted and without duplicates."""
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    bad = [part for part in wanted if not _PLATFORM.fullmatch(part)]
    if bad or not wanted:
        raise UsageError(
            f"--platform {text!r}: expected a comma-separated list like linux/amd64,linux/arm64 "
            f"(found {', '.join(repr(b) for b in bad) or 'none'}); images are for linux only"
        )
    return tuple(sorted(set(wanted)))


def architecture_of(platform: str) -> str:
    """``linux/arm64`` -> ``arm64``, ``linux/arm/v7`` -> ``arm/v7``: what a base is opened for.

    The variant stays: arm/v6 and arm/v7 bases run different wheels (``armv6l``, ``armv7l``).
    """
    return platform.split("/", 1)[1]


def platform_of(described: Mapping[str, Any]) -> str:
    """``os/architecture[/variant]`` of an index entry's ``platform`` or an image config.

    arm64's only variant, v8, is left out: ``linux/arm64`` names it.
    """
    os_, arch = described.get("os") or "linux", described.get("architecture") or "unknown"
    variant = described.get("variant") or ""
    if arch == "arm64" and variant == "v8":
        variant = ""
    return f"{os_}/{arch}" + (f"/{variant}" if variant else "")


def target_platform(text: str) -> str | None:
    """``cp311-manylinux_2_17_armv7l`` -> ``linux/arm/v7``; None for a target not for Linux."""
    target = Target.parse(text)
    for machine, (arch, variant) in _MACHINES.items():
        if "linux" in target.platform and target.platform.endswith(f"_{machine}"):
            return f"linux/{arch}" + (f"/{variant}" if variant else "")
    return None


def archive_architecture(targets: Sequence[str]) -> str:
    """What ``open_base`` opens for the archive: ``amd64``, ``arm/v7`` (its first target's)."""
    return architecture_of(archive_platform(targets))


def archive_platform(targets: Sequence[str]) -> str:
    """The platform of the archive's first Linux target (this machine's without one)."""
    for text in targets:
        platform = target_platform(text)
        if platform is not None:
            return platform
    machine = os.uname().machine
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return f"linux/{arch}" + (f"/{variant}" if variant else "")


def archive_platforms(targets: Sequence[str]) -> dict[str, list[str]]:
    """The archive's Linux targets by the platform they run on: ``linux/amd64 -> [...]``."""
    found: dict[str, list[str]] = {}
    for text in targets:
        platform = target_platform(text)
        if platform is not None:
            found.setdefault(platform, []).append(text)
    return dict(sorted(found.items()))


def _targets_text(archive: Mapping[str, Sequence[str]], targets: Sequence[str]) -> str:
    if not archive:
        return f"none (its targets {', '.join(targets)} are not for Linux)"
    return ", ".join(f"{p} ({', '.join(ts)})" for p, ts in archive.items())


def check_platforms(
    wanted: Sequence[str], *, base: str, base_has: Sequence[str], targets: Sequence[str]
) -> None:
    """Raise one :class:`ImageError` naming both lists if a wanted platform lacks either."""
    archive = archive_platforms(targets)
    missing = [p for p in wanted if p not in base_has or p not in archive]
    if not missing:
        return
    both = [p for p in base_has if p in archive]
    raise ImageError(
        f"cannot build --platform {','.join(missing)}: the base {base} has images for "
        f"{', '.join(base_has) or 'no platform'}, and the archive has targets for "
        f"{_targets_text(archive, targets)}; ask for platforms both have "
        f"({','.join(both) or 'none'}), choose a base built for the others, or lock and "
        "build the archive with --target for them"
    )


def index_platforms(index: Mapping[str, Any]) -> tuple[str, ...]:
    """The platforms an image index has images for, sorted (attestations left out)."""
    found = {
        platform_of(m["platform"])
        for m in index.get("manifests") or []
        if isinstance(m, dict) and isinstance(m.get("platform"), dict)
    }
    return tuple(sorted(p for p in found if not p.endswith("/unknown")))
