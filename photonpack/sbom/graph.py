"""The dependency graph of a photon's wheels, from the lock's ``packages[].dependencies``.

The lock names dependencies by project; the archive holds wheels, one or more
per project (one per target family). A wheel depends on the wheels of its
dependencies that serve one of its own targets, so a graph of several
targets never links an x86_64 wheel to an aarch64 one.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name

from photonpack.archive.manifest import Manifest, WheelEntry
from photonpack.sbom.facts import Facts

__all__ = ["Graph", "wheel_dependencies"]


@dataclass(frozen=True, kw_only=True)
class Graph:
    """Wheel filenames: those the photon needs directly, and each wheel's dependencies.

    ``wheels`` is empty when the graph is unknown (no lock in the archive).
    """

    direct: tuple[str, ...]
    wheels: dict[str, tuple[str, ...]]


def _shares_target(a: WheelEntry, b: WheelEntry) -> bool:
    return not a.targets or not b.targets or bool(set(a.targets) & set(b.targets))


def wheel_dependencies(manifest: Manifest, facts: Facts | None) -> Graph:
    """The graph over ``manifest.wheels`` that ``facts`` (the lock's) describes."""
    every = tuple(w.filename for w in manifest.wheels)
    if facts is None or facts.dependencies is None:
        return Graph(direct=every, wheels={})
    by_name: dict[str, list[WheelEntry]] = {}
    for wheel in manifest.wheels:
        by_name.setdefault(canonicalize_name(wheel.name), []).append(wheel)
    edges: dict[str, tuple[str, ...]] = {}
    for wheel in manifest.wheels:
        names = facts.dependencies.get(canonicalize_name(wheel.name), ())
        edges[wheel.filename] = tuple(
            sorted(
                d.filename
                for name in names
                for d in by_name.get(name, [])
                if d is not wheel and _shares_target(wheel, d)
            )
        )
    needed = set(facts.direct or ())
    if not needed:
        depended = {name for deps in facts.dependencies.values() for name in deps}
        needed = set(by_name) - depended
    direct = tuple(w.filename for w in manifest.wheels if canonicalize_name(w.name) in needed)
    return Graph(direct=direct or every, wheels=edges)
