"""``photonpack diff``: what changed between two photons (or two locks), semantically.

Pure: sides go in, a :class:`Diff` comes out; ``Diff.to_dict`` is the stable
JSON document, and ``photonpack.diff_render`` turns a Diff into terminal text
or markdown for a pull-request comment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from packaging.version import InvalidVersion, Version

from photonpack.archive.manifest import FileEntry, Handler, Manifest, Parameter, WheelEntry
from photonpack.diff_sides import Side
from photonpack.summary import type_of

__all__ = [
    "DIFF_FORMAT_VERSION",
    "AttributeChange",
    "Diff",
    "FileChange",
    "HandlerChange",
    "PackageChange",
    "WheelChange",
    "diff",
    "type_of",
]

DIFF_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class PackageChange:
    """kind: added, removed, upgraded, downgraded, or rehashed (same version, new hash)."""

    name: str
    kind: str
    old: str | None
    new: str | None
    wheels: tuple[str, ...] = ()  # rehashed: "<filename> <old sha256> -> <new sha256>"


@dataclasses.dataclass(frozen=True, kw_only=True)
class WheelChange:
    """A wheel of an unchanged package version: added, removed or retargeted."""

    filename: str
    kind: str
    old_targets: tuple[str, ...]
    new_targets: tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class FileChange:
    """A file of the working directory (or of the runtime): added, removed or changed."""

    path: str
    kind: str
    old_size: int | None
    new_size: int | None
    runtime: bool = False

    @property
    def delta(self) -> int:
        """New size minus old size."""
        return (self.new_size or 0) - (self.old_size or 0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HandlerChange:
    """A handler added, removed or changed; ``breaking`` if old clients can fail."""

    name: str
    kind: str
    breaking: bool
    details: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class AttributeChange:
    """A photon attribute (image, system_dependency, entry, ...) with old and new values."""

    field: str
    old: Any
    new: Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class Diff:
    """Everything that differs between side ``a`` and side ``b``."""

    a: Side
    b: Side
    packages: tuple[PackageChange, ...]
    wheels: tuple[WheelChange, ...]
    targets_added: tuple[str, ...]
    targets_removed: tuple[str, ...]
    files: tuple[FileChange, ...]
    handlers: tuple[HandlerChange, ...]
    attributes: tuple[AttributeChange, ...]

    @property
    def identical(self) -> bool:
        """Same digest, or (for locks) nothing found that differs."""
        if self.a.digest is not None and self.b.digest is not None:
            return self.a.digest == self.b.digest
        return not (
            self.packages or self.wheels or self.targets_added or self.targets_removed
        ) and (self.a.size == self.b.size)

    @property
    def breaking(self) -> bool:
        """A handler was removed, gained a required parameter, or changed a type."""
        return any(h.breaking for h in self.handlers)

    @property
    def rehashed(self) -> tuple[PackageChange, ...]:
        """Packages whose bytes changed at the same version: a supply-chain red flag."""
        return tuple(p for p in self.packages if p.kind == "rehashed")

    @property
    def exit_code(self) -> int:
        """``--exit-code``: 0 identical, 1 different, 2 a breaking difference."""
        return 0 if self.identical else 2 if self.breaking else 1

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON document of ``diff --format json`` (format version 1)."""

        def side(s: Side) -> dict[str, Any]:
            kind = "archive" if s.manifest is not None else "lock"
            name = s.manifest.name if s.manifest else None
            return {
                "label": s.label,
                "kind": kind,
                "name": name,
                "digest": s.digest,
                "size": s.size,
            }

        return {
            "format": "photonpack-diff",
            "version": DIFF_FORMAT_VERSION,
            "a": side(self.a),
            "b": side(self.b),
            "identical": self.identical,
            "breaking": self.breaking,
            "size_delta": self.b.size - self.a.size,
            "packages": [dataclasses.asdict(p) for p in self.packages],
            "wheels": [dataclasses.asdict(w) for w in self.wheels],
            "targets": {"added": list(self.targets_added), "removed": list(self.targets_removed)},
            "files": [{**dataclasses.asdict(f), "delta": f.delta} for f in self.files],
            "handlers": [dataclasses.asdict(h) for h in self.handlers],
            "attributes": [dataclasses.asdict(a) for a in self.attributes],
        }


# ---------------------------------------------------------------- computing


def diff(a: Side, b: Side) -> Diff:
    """Compare two sides; handler, file and attribute changes need two archives.

    Targets are compared only when both sides have them: a lock written by
    another tool has none, so against it only packages and files count.
    """
    if not (a.targets and b.targets):
        a, b = _untargeted(a), _untargeted(b)
    packages, wheels = _packages(a.wheels, b.wheels)
    both = a.manifest is not None and b.manifest is not None
    handlers = _handlers(a.manifest, b.manifest) if both else ()
    return Diff(
        a=a,
        b=b,
        packages=packages,
        wheels=wheels,
        targets_added=tuple(sorted(set(b.targets) - set(a.targets))),
        targets_removed=tuple(sorted(set(a.targets) - set(b.targets))),
        files=_files(a.manifest, b.manifest) if both else (),
        handlers=handlers,
        attributes=(
            _attributes(a.manifest, b.manifest, handlers_changed=bool(handlers)) if both else ()
        ),
    )


def _untargeted(side: Side) -> Side:
    wheels = tuple(dataclasses.replace(w, targets=()) for w in side.wheels)
    return dataclasses.replace(side, wheels=wheels, targets=())


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return 1, Version(version)
    except InvalidVersion:
        return 0, version


def _packages(
    old: Sequence[WheelEntry], new: Sequence[WheelEntry]
) -> tuple[tuple[PackageChange, ...], tuple[WheelChange, ...]]:
    def versions(wheels: Sequence[WheelEntry]) -> dict[str, str]:
        found: dict[str, set[str]] = {}
        for w in wheels:
            found.setdefault(w.name, set()).add(w.version)
        return {name: ", ".join(sorted(v, key=_version_key)) for name, v in found.items()}

    va, vb = versions(old), versions(new)
    oa, ob = {w.filename: w for w in old}, {w.filename: w for w in new}
    packages: list[PackageChange] = []
    wheels: list[WheelChange] = []
    for name in sorted(va.keys() | vb.keys()):
        before, after = va.get(name), vb.get(name)
        if before is None or after is None:
            kind = "added" if before is None else "removed"
            packages.append(PackageChange(name=name, kind=kind, old=before, new=after))
        elif before != after:
            up = _version_key(after) > _version_key(before)
            kind = "upgraded" if up else "downgraded"
            packages.append(PackageChange(name=name, kind=kind, old=before, new=after))
        else:
            mine_a = {f: w for f, w in oa.items() if w.name == name}
            mine_b = {f: w for f, w in ob.items() if w.name == name}
            rehashed = tuple(
                f"{f} {mine_a[f].sha256} -> {mine_b[f].sha256}{_same_source(mine_a[f], mine_b[f])}"
                for f in sorted(mine_a.keys() & mine_b.keys())
                if mine_a[f].sha256 != mine_b[f].sha256
            )
            if rehashed:
                packages.append(
                    PackageChange(
                        name=name, kind="rehashed", old=before, new=after, wheels=rehashed
                    )
                )
            wheels += _coverage(mine_a, mine_b)
    return tuple(packages), tuple(wheels)


def _same_source(a: WheelEntry, b: WheelEntry) -> str:
    """What the sources of two wheels built from source say: the same pin (the build is not
    reproducible), or which pin changed. Compared by pin (a tree digest, a commit, a
    download's sha256), not by the source archive's bytes, which depend on the zlib that
    compressed them; an archive made before photonpack recorded pins, by those bytes."""
    if a.source is None or b.source is None:
        return ""
    old, new = a.source, b.source
    if old.pin is None or new.pin is None:
        old_pin, new_pin = f"sha256:{old.sha256}", f"sha256:{new.sha256}"
    else:
        old_pin, new_pin = old.pin, new.pin
    if old_pin == new_pin:
        return f" (both built from {new.filename} pin {new_pin}: not reproducible)"
    url = new.url if old.url == new.url else f"{old.url} -> {new.url}"
    return f" (source {url} changed: pin {old_pin} -> {new_pin})"


def _coverage(a: Mapping[str, WheelEntry], b: Mapping[str, WheelEntry]) -> list[WheelChange]:
    changes = []
    for filename in sorted(a.keys() | b.keys()):
        old, new = a.get(filename), b.get(filename)
        old_t = old.targets if old else ()
        new_t = new.targets if new else ()
        if old is None or new is None:
            kind = "added" if old is None else "removed"
        elif old_t != new_t:
            kind = "retargeted"
        else:
            continue
        changes.append(
            WheelChange(filename=filename, kind=kind, old_targets=old_t, new_targets=new_t)
        )
    return changes


def _files(a: Manifest | None, b: Manifest | None) -> tuple[FileChange, ...]:
    assert a is not None and b is not None
    changes = _file_changes(a.files, b.files, runtime=False)
    changes += _file_changes(a.runtime, b.runtime, runtime=True)
    return tuple(changes)


def _file_changes(
    old: Iterable[FileEntry], new: Iterable[FileEntry], *, runtime: bool
) -> list[FileChange]:
    fa, fb = {f.path: f for f in old}, {f.path: f for f in new}
    changes = []
    for path in sorted(fa.keys() | fb.keys()):
        x, y = fa.get(path), fb.get(path)
        if x is not None and y is not None and (x.sha256, x.executable) == (y.sha256, y.executable):
            continue
        kind = "added" if x is None else "removed" if y is None else "changed"
        changes.append(
            FileChange(
                path=path,
                kind=kind,
                old_size=x.size if x else None,
                new_size=y.size if y else None,
                runtime=runtime,
            )
        )
    return changes


def _comparable(schema: Any) -> Any:
    """A schema without the keys that only document (titles, descriptions, examples)."""
    if isinstance(schema, Mapping):
        return {
            k: _comparable(v)
            for k, v in schema.items()
            if k not in ("title", "description", "examples", "default")
        }
    if isinstance(schema, list):
        return [_comparable(v) for v in schema]
    return schema


def _handler_change(old: Handler, new: Handler) -> HandlerChange | None:
    details: list[str] = []
    breaking = False
    if (old.method, old.path) != (new.method, new.path):
        details.append(f"route {old.method} {old.path} -> {new.method} {new.path}")
        breaking = True
    pa: dict[str, Parameter] = {p.name: p for p in old.parameters}
    pb: dict[str, Parameter] = {p.name: p for p in new.parameters}
    for name in [p.name for p in new.parameters if p.name not in pa]:
        p = pb[name]
        if p.required:
            breaking = True
            details.append(f"new required parameter {name}: {type_of(p.schema)}")
        else:
            details.append(f"new optional parameter {name}: {type_of(p.schema)}")
    for name in [p.name for p in old.parameters if p.name not in pb]:
        details.append(f"parameter {name} removed")
    for name in [p.name for p in new.parameters if p.name in pa]:
        x, y = pa[name], pb[name]
        if _comparable(x.schema) != _comparable(y.schema):
            breaking = True
            details.append(f"parameter {name}: {type_of(x.schema)} -> {type_of(y.schema)}")
        if y.required and not x.required:
            breaking = True
            details.append(f"parameter {name} is now required")
        elif x.required and not y.required:
            details.append(f"parameter {name} is now optional")
    if _comparable(old.returns) != _comparable(new.returns):
        breaking = True
        details.append(f"returns {type_of(old.returns)} -> {type_of(new.returns)}")
    if not details:
        return None
    return HandlerChange(name=new.name, kind="changed", breaking=breaking, details=tuple(details))


def _handlers(a: Manifest | None, b: Manifest | None) -> tuple[HandlerChange, ...]:
    assert a is not None and b is not None
    ha, hb = {h.name: h for h in a.handlers}, {h.name: h for h in b.handlers}
    changes = []
    for name in sorted(ha.keys() | hb.keys()):
        old, new = ha.get(name), hb.get(name)
        if old is None and new is not None:
            route = f"{new.method} {new.path}"
            changes.append(HandlerChange(name=name, kind="added", breaking=False, details=(route,)))
        elif new is None and old is not None:
            route = f"{old.method} {old.path}"
            changes.append(
                HandlerChange(name=name, kind="removed", breaking=True, details=(route,))
            )
        elif old is not None and new is not None and (change := _handler_change(old, new)):
            changes.append(change)
    return tuple(changes)


def _attributes(
    a: Manifest | None, b: Manifest | None, *, handlers_changed: bool
) -> tuple[AttributeChange, ...]:
    assert a is not None and b is not None
    pairs: list[tuple[str, Any, Any]] = [
        ("name", a.name, b.name),
        ("entry", a.entry, b.entry),
        ("image", a.photon.image, b.photon.image),
        ("system_dependency", list(a.photon.system_dependency), list(b.photon.system_dependency)),
        (
            "requirement_dependency",
            list(a.photon.requirement_dependency),
            list(b.photon.requirement_dependency),
        ),
        (
            "handler_max_concurrency",
            a.photon.handler_max_concurrency,
            b.photon.handler_max_concurrency,
        ),
        ("handler_timeout", a.photon.handler_timeout, b.photon.handler_timeout),
        (
            "lepton_dependencies",
            list(a.photon.lepton_dependencies or ()),
            list(b.photon.lepton_dependencies or ()),
        ),
        ("exclusions", list(a.photon.exclusions or ()), list(b.photon.exclusions or ())),
        ("description", a.photon.description, b.photon.description),
        ("tools", dict(a.tools), dict(b.tools)),
    ]
    changes = [AttributeChange(field=f, old=x, new=y) for f, x, y in pairs if x != y]
    if (a.openapi is None) != (b.openapi is None):
        old, new = ("absent", "recorded") if a.openapi is None else ("recorded", "absent")
        changes.append(AttributeChange(field="openapi", old=old, new=new))
    elif a.openapi != b.openapi and not handlers_changed:
        # A handler change already explains a changed OpenAPI document.
        changes.append(AttributeChange(field="openapi", old="recorded", new="changed"))
    return tuple(changes)
