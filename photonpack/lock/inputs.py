"""What a lock is computed from: the photon's requirement lines, the options, ``--from``.

``read_inputs`` reads the photon's declaration and requirement lines (included
files expanded, sources checked) into :class:`~photonpack.lock.pylock.LockInputs`,
whose digest decides whether a lock is fresh; ``--from`` names another tool's
PEP 751 lock whose pins are kept (read by :func:`kept_lock`); ``what_changed``
says in one line why a lock is stale. Nothing here resolves or writes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from photonpack.errors import LockError, LockFileError
from photonpack.lock.declaration import read_declaration
from photonpack.lock.index import IndexSettings
from photonpack.lock.pylock import FromLock, LockInputs
from photonpack.lock.requirements import check_sources, read_requirements
from photonpack.lock.target import Target
from photonpack.serving.requirements import SERVING_REQUIREMENTS
from photonpack.serving.source import PhotonSpec

if TYPE_CHECKING:
    from photonpack.lock.buildreqs import SourceBuilder
    from photonpack.lock.standard import StandardLock
    from photonpack.sources.form import SourceForm

__all__ = [
    "LockOptions",
    "default_lock_path",
    "default_name",
    "kept_lock",
    "lock_inputs",
    "read_inputs",
    "what_changed",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockOptions:
    """What ``photonpack lock`` was asked for. No targets means this machine."""

    name: str | None = None
    output: Path | None = None
    targets: tuple[Target, ...] = ()
    index: IndexSettings = dataclasses.field(default_factory=IndexSettings)
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    from_lock: Path | None = None  # a PEP 751 lock whose pins are kept (photonpack.lock.kept)
    # Where git repositories and source archives are cached (the store's cache/); None: a
    # temporary directory, so every lock fetches its sources again.
    source_cache: Path | None = None
    # Builds a dynamic sdist's wheel at lock time, into the store's build cache, so that
    # build does not run its backend again (photonpack.wheelbuild.prebuilt); None: pip
    # prepares its metadata, and build builds it.
    builder: SourceBuilder | None = dataclasses.field(default=None, compare=False)
    # Told how many projects the resolution has met so far, as it meets them (any thread).
    progress: Callable[[int], None] | None = dataclasses.field(default=None, compare=False)


def default_name(class_name: str) -> str:
    """``CounterV2`` -> ``counter-v2``: the photon name when none is given."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", class_name).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", words).strip("-")[:32].rstrip("-")
    return name if name[:1].isalpha() else f"photon-{name}"[:32].rstrip("-")


def default_lock_path(spec: PhotonSpec, name: str) -> Path:
    """``pylock.<name>.toml`` in the photon's directory."""
    return spec.directory / f"pylock.{name}.toml"


def lock_inputs(spec: PhotonSpec, options: LockOptions) -> tuple[Path, LockInputs]:
    """The lock's path and everything it is computed from."""
    path, inputs, _ = read_inputs(spec, options)
    return path, inputs


def read_inputs(
    spec: PhotonSpec, options: LockOptions
) -> tuple[Path, LockInputs, tuple[SourceForm, ...]]:
    """The lock's path, its inputs, and the photon's source requirements (not pinned yet)."""
    declaration = read_declaration(spec)
    wanted = read_requirements(
        declaration.requirement_dependency, spec.directory, photon=declaration.class_name
    )
    check_sources(wanted, spec.directory, photon=declaration.class_name)
    name = options.name or default_name(declaration.class_name)
    path = options.output or default_lock_path(spec, name)
    inputs = LockInputs(
        # Lepton's runtime set (declaration.lepton_dependencies) is locked as declared ones are.
        # The lines as read, included files expanded: editing one makes the lock stale.
        # A source as written: its pin is the lock's (a moved branch changes nothing here).
        requirements=tuple(
            dict.fromkeys(
                (
                    *map(str, wanted.requirements),
                    *map(str, wanted.sources),
                    *declaration.lepton_dependencies,
                )
            )
        ),
        constraints=wanted.constraints,
        exclusions=wanted.exclusions,
        serving_requirements=SERVING_REQUIREMENTS,
        # Sorted: the lock is the same whatever order --target was given in.
        targets=tuple(sorted(set(options.targets), key=str)) or (Target.host(),),
        index=wanted.index(options.index),
        directory=path.parent,
        from_lock=_from_lock(options.from_lock, path),
    )
    return path, inputs, wanted.sources


def _from_lock(location: Path | None, output: Path) -> FromLock | None:
    if location is None:
        return None
    import hashlib

    if location.resolve() == output.resolve():
        raise LockError(
            f"--from {location} is the lock photonpack would write: keep the other tool's "
            "lock under another name (pylock.toml), or write this one elsewhere with -o"
        )
    try:
        data = location.read_bytes()
    except FileNotFoundError as exc:
        raise LockFileError(f"--from {location}: the lock file does not exist") from exc
    except OSError as exc:
        raise LockFileError(f"--from {location}: cannot read it: {exc.strerror or exc}") from exc
    return FromLock(path=location.absolute(), sha256=hashlib.sha256(data).hexdigest())


def kept_lock(inputs: LockInputs) -> StandardLock | None:
    """The ``--from`` lock whose pins are kept, read (any PEP 751 writer's), or None."""
    if inputs.from_lock is None:
        return None
    from photonpack.lock.standard import read_any_lock

    return read_any_lock(inputs.from_lock.path)


def what_changed(old: LockInputs, new: LockInputs) -> str:
    """Why a lock of ``old`` inputs is stale for ``new`` ones, in one line."""

    def delta(label: str, before: Sequence[str], after: Sequence[str]) -> str | None:
        added = [x for x in after if x not in before]
        removed = [x for x in before if x not in after]
        if not added and not removed:
            return None if list(before) == list(after) else f"{label} reordered"
        parts = [
            f"added {', '.join(added)}" if added else "",
            f"removed {', '.join(removed)}" if removed else "",
        ]
        return f"{label} changed ({'; '.join(p for p in parts if p)})"

    reasons = [
        delta("requirement_dependency", old.requirements, new.requirements),
        delta("constraints", old.constraints, new.constraints),
        delta("uninstall lines", old.exclusions, new.exclusions),
        delta("serving requirements", old.serving_requirements, new.serving_requirements),
        delta("targets", [str(t) for t in old.targets], [str(t) for t in new.targets]),
        "index settings changed" if old.recorded_index() != new.recorded_index() else None,
        _from_changed(old, new),
    ]
    found = [r for r in reasons if r]
    reason = "; ".join(found) if found else "it was written by another lock format"
    return f"{reason}; run photonpack lock"


def _from_changed(old: LockInputs, new: LockInputs) -> str | None:
    before, after = old.recorded_from(), new.recorded_from()
    if before == after:
        return None
    if before is None or after is None:
        return "--from added" if before is None else "--from removed"
    if before["path"] != after["path"]:
        return f"--from changed ({before['path']} -> {after['path']})"
    return f"{new.from_lock.path.name if new.from_lock else after['path']} changed"
