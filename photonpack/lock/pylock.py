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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from photonpack.errors import LockFileError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib
from photonpack._digest import is_sha256_hex
from photonpack.lock.index import IndexSettings
from photonpack.lock.locations import location_problem, wheel_url_problem
from photonpack.lock.schema import Where, check_unique
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
    constraints: tuple[str, ...] = ()  # ``-c`` lines
    exclusions: tuple[str, ...] = ()  # ``uninstall`` lines: canonical names kept out of the lock

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the inputs (credentials excluded)."""
        data: dict[str, Any] = {
            "lock-format": LOCK_FORMAT,
            "requirements": list(self.requirements),
            "serving-requirements": list(self.serving_requirements),
            "targets": [str(t) for t in self.targets],
            "index": self.index.to_dict(),
        }
        data.update(self.optional())
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(canonical).hexdigest()

    def optional(self) -> dict[str, list[str]]:
        """Constraints and exclusions, only when there are some: older locks keep their digest."""
        data = {"constraints": list(self.constraints), "exclusions": list(self.exclusions)}
        return {key: value for key, value in data.items() if value}


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
                    **self.inputs.optional(),
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

    The fast path of an up-to-date ``photonpack lock``. A lock it answers with
    is validated exactly as :func:`parse_lock` validates it for every other
    command: "up to date" is never said of a file that build would refuse.
    """
    data = load_toml(text, path=path)
    tool = data.get("tool")
    section = tool.get("photonpack") if isinstance(tool, Mapping) else None
    if not isinstance(section, Mapping) or section.get("inputs-digest") != digest:
        return None
    return _validated(data, path)


def parse_lock(text: str, *, path: Path) -> Lock:
    """Validate pylock text (PEP 751 via ``packaging.pylock``, then photonpack's section)."""
    return _validated(load_toml(text, path=path), path)


def _validated(data: dict[str, Any], path: Path) -> Lock:
    from packaging.pylock import Pylock, PylockValidationError

    try:
        Pylock.from_dict(data)
    except PylockValidationError as exc:
        where = Where(path)
        # packaging's marker errors add the marker and a caret on lines of their own
        reason = (exc.message.splitlines() or [""])[0]
        if exc.context:
            raise where.error(exc.context, f"is not valid PEP 751: {reason}") from exc
        raise LockFileError(
            f"lock file {path} is not a valid PEP 751 lock: {reason}; "
            "fix it, or delete it and run photonpack lock again"
        ) from exc
    return _from_dict(data, path)


def _from_dict(data: Mapping[str, Any], path: Path) -> Lock:
    where = Where(path)
    tool = data.get("tool")
    section = tool.get("photonpack") if isinstance(tool, Mapping) else None
    if not isinstance(section, Mapping):
        raise where.error("tool.photonpack", "is missing: the file was not written by photonpack")
    at = "tool.photonpack"
    if section.get("lock-format") != LOCK_FORMAT:
        raise where.error(
            f"{at}.lock-format",
            f"is {section.get('lock-format')!r}, this photonpack reads format {LOCK_FORMAT}",
        )
    targets = []
    for i, text in enumerate(where.strings(section, "targets", at)):
        try:
            targets.append(Target.parse(text))
        except TargetError as exc:
            raise where.error(f"{at}.targets[{i}]", str(exc)) from exc
    index = where.table(section, "index", at)
    index_url = where.string(index, "index-url", f"{at}.index")
    if (problem := location_problem(index_url)) is not None:
        raise where.error(f"{at}.index.index-url", f"({index_url!r}) cannot be used: {problem}")
    inputs = LockInputs(
        requirements=tuple(where.strings(section, "requirements", at)),
        serving_requirements=tuple(where.strings(section, "serving-requirements", at)),
        targets=tuple(targets),
        index=IndexSettings(
            index_url=index_url,
            extra_index_urls=where.locations(
                index, "extra-index-urls", f"{at}.index", local_ok=False
            ),
            find_links=where.locations(index, "find-links", f"{at}.index", local_ok=True),
            pre=index.get("pre") is True,
        ),
        constraints=tuple(where.strings(section, "constraints", at))
        if "constraints" in section
        else (),
        exclusions=tuple(where.strings(section, "exclusions", at))
        if "exclusions" in section
        else (),
    )
    packages = tuple(
        _package(entry, f"packages[{i}]", where)
        for i, entry in enumerate(where.tables(data, "packages", ""))
    )
    check_unique(packages, inputs.targets, where)
    return Lock(
        path=path,
        targets=inputs.targets,
        packages=packages,
        inputs=inputs,
        inputs_digest=where.string(section, "inputs-digest", at),
    )


def _package(entry: Mapping[str, Any], at: str, where: Where) -> LockedPackage:
    name = where.string(entry, "name", at)
    if "version" not in entry or "wheels" not in entry:
        raise where.error(at, "has no version or no wheels: photonpack locks wheels only")
    version = where.string(entry, "version", at)
    wheels = tuple(
        _wheel(wheel, f"{at}.wheels[{j}]", name, version, where)
        for j, wheel in enumerate(where.tables(entry, "wheels", at))
    )
    if not wheels:
        raise where.error(f"{at}.wheels", f"is empty: {name} {version} needs at least one wheel")
    dependencies = tuple(
        where.string(dependency, "name", f"{at}.dependencies[{k}]")
        for k, dependency in enumerate(where.tables(entry, "dependencies", at))
    )
    marker = where.string(entry, "marker", at) if "marker" in entry else None
    return LockedPackage(
        name=name,
        version=version,
        marker=marker or None,
        dependencies=dependencies,
        wheels=wheels,
    )


def _wheel(wheel: Mapping[str, Any], at: str, name: str, version: str, where: Where) -> LockedWheel:
    sha256 = where.string(where.table(wheel, "hashes", at), "sha256", f"{at}.hashes")
    if not is_sha256_hex(sha256):
        raise where.error(f"{at}.hashes.sha256", f"is {sha256!r}, not 64 lowercase hex digits")
    url = where.string(wheel, "url", at)
    size = where.size(wheel, "size", at)
    filename = where.string(wheel, "name", at) if "name" in wheel else url.rpartition("/")[2]
    if (problem := wheel_url_problem(url, filename)) is not None:
        raise where.error(f"{at}.url", f"({url!r}) {problem}")
    return LockedWheel(
        name=name, version=version, filename=filename, url=url, size=size, sha256=sha256
    )
