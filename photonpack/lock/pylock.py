"""The PEP 751 lock file model: frozen dataclasses <-> deterministic TOML.

A photonpack lock is a standard ``pylock.<name>.toml``: any PEP 751 installer
can use it. photonpack's own data lives under ``[tool.photonpack]``: the
targets, the inputs that produced the lock (with their digest), and the index
settings without credentials. Reading validates the file with
``packaging.pylock`` and then checks photonpack's section.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from photonpack.errors import LockFileError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib
from photonpack._digest import is_sha256_hex
from photonpack.lock.index import IndexSettings
from photonpack.lock.target import Target, TargetError

__all__ = [
    "LOCK_FORMAT",
    "Lock",
    "LockInputs",
    "LockedPackage",
    "LockedWheel",
    "fresh_lock",
    "parse_lock",
    "read_lock",
]

# Part of every inputs digest: bump it when the same inputs must give a different file.
LOCK_FORMAT = 1
_CREATED_BY = "photonpack"


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockInputs:
    """Everything a lock is computed from; its digest decides whether a lock is fresh."""

    requirements: tuple[str, ...]
    serving_requirements: tuple[str, ...]
    targets: tuple[Target, ...]
    index: IndexSettings

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the inputs (credentials excluded)."""
        data = {
            "lock-format": LOCK_FORMAT,
            "requirements": list(self.requirements),
            "serving-requirements": list(self.serving_requirements),
            "targets": [str(t) for t in self.targets],
            "index": self.index.to_dict(),
        }
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(canonical).hexdigest()


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockedWheel:
    """One wheel file of a locked package."""

    name: str
    version: str
    filename: str
    url: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """The PEP 751 ``[[packages.wheels]]`` table."""
        return {
            "name": self.filename,
            "url": self.url,
            "size": self.size,
            "hashes": {"sha256": self.sha256},
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockedPackage:
    """One ``[[packages]]`` entry: a version, where it applies, and its wheels."""

    name: str
    version: str
    marker: str | None
    dependencies: tuple[str, ...]
    wheels: tuple[LockedWheel, ...]

    def to_dict(self) -> dict[str, Any]:
        """The PEP 751 ``[[packages]]`` table."""
        table: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.marker:
            table["marker"] = self.marker
        table["dependencies"] = [{"name": name} for name in self.dependencies]
        table["wheels"] = [w.to_dict() for w in self.wheels]
        return table

    def applies_to(self, target: Target) -> bool:
        """Whether the package's marker holds in the target's environment."""
        if not self.marker:
            return True
        from packaging.markers import Marker

        return Marker(self.marker).evaluate(target.environment(), context="lock_file")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Lock:
    """A validated photonpack pylock file."""

    path: Path
    targets: tuple[Target, ...]
    packages: tuple[LockedPackage, ...]
    inputs: LockInputs
    inputs_digest: str

    def wheels_for(self, target: Target) -> list[LockedWheel]:
        """The best wheel of every package the target needs, sorted by filename."""
        chosen: list[LockedWheel] = []
        for package in self.packages:
            if not package.applies_to(target):
                continue
            ranked = [(target.wheel_rank(w.filename), w) for w in package.wheels]
            usable = [(rank, w) for rank, w in ranked if rank is not None]
            if usable:
                chosen.append(min(usable, key=lambda item: (item[0], item[1].filename))[1])
        return sorted(chosen, key=lambda w: w.filename)

    def wheels(self) -> list[LockedWheel]:
        """Every wheel in the lock, sorted by filename, unique."""
        unique = {w.filename: w for p in self.packages for w in p.wheels}
        return [unique[name] for name in sorted(unique)]

    def to_dict(self) -> dict[str, Any]:
        """The whole file as a TOML document, keys in PEP 751 order."""
        versions = sorted({t.python_version for t in self.targets})
        return {
            "lock-version": "1.0",
            "environments": [t.marker() for t in self.targets],
            "requires-python": ">={}.{}".format(*versions[0]) if versions else None,
            "created-by": _CREATED_BY,
            "packages": [p.to_dict() for p in self.packages],
            "tool": {
                "photonpack": {
                    "lock-format": LOCK_FORMAT,
                    "inputs-digest": self.inputs_digest,
                    "targets": [str(t) for t in self.targets],
                    "requirements": list(self.inputs.requirements),
                    "serving-requirements": list(self.inputs.serving_requirements),
                    "index": self.inputs.index.to_dict(),
                }
            },
        }

    def to_text(self) -> str:
        """Deterministic TOML: same lock, same bytes."""
        import tomli_w

        data = {k: v for k, v in self.to_dict().items() if v is not None}
        return tomli_w.dumps(data, multiline_strings=False)


def read_lock(path: Path) -> Lock:
    """Read and validate a pylock file written by photonpack."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LockFileError(
            f"lock file {path} does not exist; create it with photonpack lock"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LockFileError(f"cannot read lock file {path}: {exc}") from exc
    return parse_lock(text, path=path)


def load_toml(text: str, *, path: Path) -> dict[str, Any]:
    """Parse TOML, reporting line and column of a syntax error."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockFileError(
            f"lock file {path} is not valid TOML: {exc}; fix it or delete it and run "
            "photonpack lock again"
        ) from exc
    return data


def fresh_lock(text: str, *, path: Path, digest: str) -> Lock | None:
    """The lock in ``text`` if it records inputs ``digest``, else None.

    The fast path of an up-to-date ``photonpack lock``: TOML syntax and
    photonpack's own section are checked, the full PEP 751 validation (whose
    import costs more than the rest of the command) is not: photonpack ran it
    when it wrote the file, and :func:`read_lock` runs it for every consumer.
    """
    data = load_toml(text, path=path)
    tool = data.get("tool", {}).get("photonpack", {})
    if not isinstance(tool, Mapping) or tool.get("inputs-digest") != digest:
        return None
    return _from_dict(data, path)


def parse_lock(text: str, *, path: Path) -> Lock:
    """Validate pylock text (PEP 751 via ``packaging.pylock``, then photonpack's section)."""
    data = load_toml(text, path=path)
    from packaging.pylock import Pylock, PylockValidationError

    try:
        Pylock.from_dict(data)
    except PylockValidationError as exc:
        raise LockFileError(f"lock file {path} is not a valid PEP 751 lock: {exc}") from exc
    return _from_dict(data, path)


def _from_dict(data: Mapping[str, Any], path: Path) -> Lock:
    where = _Where(path)
    tool = data.get("tool", {}).get("photonpack")
    if not isinstance(tool, Mapping):
        raise where.error("tool.photonpack", "is missing: the file was not written by photonpack")
    if tool.get("lock-format") != LOCK_FORMAT:
        raise where.error(
            "tool.photonpack.lock.lockfile-format",
            f"is {tool.get('lock-format')!r}, this photonpack reads format {LOCK_FORMAT}",
        )
    try:
        targets = tuple(Target.parse(str(t)) for t in where.list(tool, "targets"))
    except TargetError as exc:
        raise where.error("tool.photonpack.targets", str(exc)) from exc
    index = where.table(tool, "index")
    inputs = LockInputs(
        requirements=tuple(str(r) for r in where.list(tool, "requirements")),
        serving_requirements=tuple(str(r) for r in where.list(tool, "serving-requirements")),
        targets=targets,
        index=IndexSettings(
            index_url=str(index.get("index-url", "")),
            extra_index_urls=tuple(str(u) for u in index.get("extra-index-urls", [])),
            find_links=tuple(str(u) for u in index.get("find-links", [])),
        ),
    )
    packages = tuple(
        _package(entry, f"packages[{i}]", where) for i, entry in enumerate(data["packages"])
    )
    return Lock(
        path=path,
        targets=targets,
        packages=packages,
        inputs=inputs,
        inputs_digest=str(tool.get("inputs-digest", "")),
    )


def _package(entry: Mapping[str, Any], at: str, where: _Where) -> LockedPackage:
    name, version = str(entry["name"]), str(entry.get("version", ""))
    if not version or "wheels" not in entry:
        raise where.error(at, "has no version or no wheels: photonpack locks wheels only")
    wheels = []
    for j, wheel in enumerate(entry["wheels"]):
        sha256 = str(wheel.get("hashes", {}).get("sha256", ""))
        if not is_sha256_hex(sha256):
            raise where.error(f"{at}.wheels[{j}].hashes.sha256", "is missing or not 64 hex digits")
        if not isinstance(wheel.get("size"), int) or "url" not in wheel:
            raise where.error(f"{at}.wheels[{j}]", "needs a url and an integer size")
        filename = str(wheel.get("name") or str(wheel["url"]).rpartition("/")[2])
        wheels.append(
            LockedWheel(
                name=name,
                version=version,
                filename=filename,
                url=str(wheel["url"]),
                size=int(wheel["size"]),
                sha256=sha256,
            )
        )
    dependencies = tuple(str(d.get("name", "")) for d in entry.get("dependencies", []))
    marker = entry.get("marker")
    return LockedPackage(
        name=name,
        version=version,
        marker=str(marker) if marker else None,
        dependencies=dependencies,
        wheels=tuple(wheels),
    )


@dataclasses.dataclass(frozen=True)
class _Where:
    path: Path

    def error(self, location: str, problem: str) -> LockFileError:
        return LockFileError(
            f"lock file {self.path}: {location} {problem}; "
            "fix it, or delete it and run photonpack lock again"
        )

    def list(self, table: Mapping[str, Any], key: str) -> Sequence[Any]:
        value = table.get(key)
        if not isinstance(value, list):
            raise self.error(f"tool.photonpack.{key}", "must be an array")
        return value

    def table(self, table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = table.get(key)
        if not isinstance(value, Mapping):
            raise self.error(f"tool.photonpack.{key}", "must be a table")
        return value
