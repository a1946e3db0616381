"""A wheel's tags read from its file name, as the lock's shared index pages need them."""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["installable", "named_wheel", "wheel_tags"]


def named_wheel(entry: dict[str, Any]) -> bool:
    """Whether a PEP 691 file entry names a wheel (valid or not: pip judges that)."""
    return str(entry.get("filename", "")).endswith(".whl")


def installable(filename: str, tags: frozenset[str]) -> bool:
    """Whether a target with ``tags`` may install ``filename``: an sdist, a wheel with one of
    the tags, or a name that is no wheel's (pip reports it)."""
    wheel = wheel_tags(filename)
    return wheel is None or not wheel.isdisjoint(tags)


def wheel_tags(filename: str) -> frozenset[str] | None:
    """A wheel's tags from its name; None for an sdist or a name that is no wheel's."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].lower().split("-")
    if len(parts) < 5:
        return None  # not a valid wheel name: pip reports it
    return _expanded(parts[-3], parts[-2], parts[-1])


@functools.lru_cache(maxsize=4096)
def _expanded(pythons: str, abis: str, platforms: str) -> frozenset[str]:
    """``cp311-cp311-a.b`` -> its tags; a project's releases repeat a few tag sets thousands
    of times (pydantic-core's page: 15,000 files)."""
    return frozenset(
        f"{p}-{a}-{s}"
        for p in pythons.split(".")
        for a in abis.split(".")
        for s in platforms.split(".")
    )
