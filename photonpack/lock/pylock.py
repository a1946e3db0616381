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
from typing import TYPE_CHECKING, Any

from photonpack.errors import LockFileError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib
from photonpack._digest import is_sha256_hex
from photonpack.lock.index import IndexSettings
from photonpack.lock.locations import location_problem, wheel_path_problem, wheel_url_problem
from photonpack.lock.relative import recorded, resolved_path, resolved_url
from photonpack.lock.schema import Where, check_unique
from photonpack.lock.sdist import LockedSdist
from photonpack.lock.target import Target, TargetError

if TYPE_CHECKING:
    from packaging.pylock import Pylock

__all__ = [
    "LOCK_FORMAT",
    "FromLock",
    "Lock",
    "LockInputs",
    "LockedPackage",
    "LockedWheel",
    "check_pep751",
    "fresh_lock",
    "parse_lock",
    "read_lock",
]

# Part of every inputs digest: bump it when the same inputs must give a different file.
LOCK_FORMAT = 1
_CREATED_BY = "photonpack"


@dataclasses.dataclass(frozen=True, kw_only=True)
class FromLock:
    """The lock whose pins are kept (``lock --from``): where it is, and its bytes' sha256."""

    path: Path
    sha256: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockInputs:
    """Everything a lock is computed from; its digest decides whether a lock is fresh."""

    requirements: tuple[str, ...]
    serving_requirements: tuple[str, ...]
    targets: tuple[Target, ...]
    index: IndexSettings
    # The lock file's directory: local locations are recorded relative to it, so the digest
    # does not depend on where the project lives (photonpack.lock.relative).
    directory: Path
    from_lock: FromLock | None = None
    constraints: tuple[str, ...] = ()  # ``-c`` lines
    exclusions: tuple[str, ...] = ()  # ``uninstall`` lines: canonical names kept out of the lock

    def recorded_index(self) -> dict[str, Any]:
        """The index settings as the lock records them: no credentials, local paths relative."""
        return self.index.recorded(self.directory).to_dict()

    def recorded_from(self) -> dict[str, str] | None:
        """``{"path", "sha256"}`` of the ``--from`` lock, its path relative to the lock's."""
        if self.from_lock is None:
            return None
        return {
            "path": recorded(self.from_lock.path, self.directory),
            "sha256": self.from_lock.sha256,
        }

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of the inputs (credentials excluded)."""
        data: dict[str, Any] = {
            "lock-format": LOCK_FORMAT,
            "requirements": list(self.requirements),
            "serving-requirements": list(self.serving_requirements),
            "targets": [str(t) for t in self.targets],
            "index": self.recorded_index(),
        }
        if self.from_lock is not None:  # absent otherwise: older digests stay valid
            data["from"] = self.recorded_from()
        data.update(self.optional())
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return "sha256:" + hashlib.sha256(canonical).hexdigest()

    def optional(self) -> dict[str, list[str]]:
        """Constraints and exclusions, only when there are some: older locks keep their digest."""
        data = {"constraints": list(self.constraints), "exclusions": list(self.exclusions)}
        return {key: value for key, value in data.items() if value}


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockedWheel:
    """One wheel file of a locked package.

    ``url`` is where its bytes are fetched from. A local wheel also has ``path``,
    what the lock records instead of the URL: relative to the lock's directory.
    """

    name: str
    version: str
    filename: str
    url: str
    size: int
    sha256: str
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The PEP 751 ``[[packages.wheels]]`` table."""
        where = {"path": self.path} if self.path is not None else {"url": self.url}
        return {
            "name": self.filename,
            **where,
            "size": self.size,
            "hashes": {"sha256": self.sha256},
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockedPackage:
    """One ``[[packages]]`` entry: a version, where it applies, its wheels and its sdist."""

    name: str
    version: str
    marker: str | None
    dependencies: tuple[str, ...]
    wheels: tuple[LockedWheel, ...]
    sdist: LockedSdist | None = None  # built into a wheel by build, for targets no wheel serves

    def to_dict(self) -> dict[str, Any]:
        """The PEP 751 ``[[packages]]`` table."""
        table: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.marker:
            table["marker"] = self.marker
        table["dependencies"] = [{"name": name} for name in self.dependencies]
        tables = self.sdist.package_tables() if self.sdist is not None else {}
        tool = tables.pop("tool", None)
        table.update(tables)
        if self.wheels or self.sdist is None:
            table["wheels"] = [w.to_dict() for w in self.wheels]
        if tool is not None:
            table["tool"] = tool
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
    # The build environments of the sdists: locked for build_target, wheels only.
    build_packages: tuple[LockedPackage, ...] = ()
    build_target: Target | None = None

    def sources_for(self, target: Target) -> list[LockedSdist]:
        """The sdists the target needs built: packages it needs that no locked wheel serves."""
        needed = []
        for package in self.packages:
            if package.sdist is None or not package.applies_to(target):
                continue
            if all(target.wheel_rank(w.filename) is None for w in package.wheels):
                needed.append(package.sdist)
        return sorted(needed, key=lambda s: s.filename)

    def sdists(self) -> list[LockedSdist]:
        """Every sdist in the lock, sorted by filename."""
        return sorted((p.sdist for p in self.packages if p.sdist), key=lambda s: s.filename)

    def with_source_archives(self, made: Mapping[str, tuple[str, int]]) -> Lock:
        """This lock with its pinned sources' archives as made here: sha256 -> (sha256, size).

        A source archive depends on the zlib that compressed it, so the one made on this
        machine from the same pin may have other bytes than the one the lock recorded;
        the pin (tree digest, commit, download sha256) is what was checked.
        """

        def replaced(package: LockedPackage) -> LockedPackage:
            sdist = package.sdist
            if sdist is None or sdist.source is None or sdist.sha256 not in made:
                return package
            sha256, size = made[sdist.sha256]
            return dataclasses.replace(
                package, sdist=dataclasses.replace(sdist, sha256=sha256, size=size)
            )

        return dataclasses.replace(self, packages=tuple(map(replaced, self.packages)))

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
                    "index": self.inputs.recorded_index(),
                    **({"from": kept} if (kept := self.inputs.recorded_from()) else {}),
                    **self._build_tables(),
                }
            },
        }

    def _build_tables(self) -> dict[str, Any]:
        if not self.build_packages:
            return {}
        return {
            "build-target": str(self.build_target),
            "build-packages": [p.to_dict() for p in self.build_packages],
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
    check_pep751(data, path)
    return _from_dict(data, path)


def check_pep751(data: Mapping[str, Any], path: Path, *, fix: str | None = None) -> Pylock:
    """``data`` as ``packaging.pylock`` reads it; a violation names its location (and ``fix``)."""
    from packaging.pylock import Pylock, PylockValidationError

    try:
        return Pylock.from_dict(data)
    except PylockValidationError as exc:
        where = Where(path) if fix is None else Where(path, fix)
        # packaging's marker errors add the marker and a caret on lines of their own
        reason = (exc.message.splitlines() or [""])[0]
        if exc.context:
            raise where.error(exc.context, f"is not valid PEP 751: {reason}") from exc
        raise LockFileError(
            f"lock file {path} is not a valid PEP 751 lock: {reason}; {where.fix}"
        ) from exc


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
    # A location without a scheme is relative to the lock's directory (photonpack.lock.relative).
    if (problem := location_problem(index_url, local_ok=True)) is not None:
        raise where.error(f"{at}.index.index-url", f"({index_url!r}) cannot be used: {problem}")
    recorded = IndexSettings(
        index_url=index_url,
        extra_index_urls=where.locations(index, "extra-index-urls", f"{at}.index", local_ok=True),
        find_links=where.locations(index, "find-links", f"{at}.index", local_ok=True),
        pre=index.get("pre") is True,
    )
    inputs = LockInputs(
        requirements=tuple(where.strings(section, "requirements", at)),
        serving_requirements=tuple(where.strings(section, "serving-requirements", at)),
        targets=tuple(targets),
        index=recorded.resolved(path.parent),
        directory=path.parent,
        from_lock=_from_lock(section, at, where),
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
    build_packages = tuple(
        _package(entry, f"{at}.build-packages[{i}]", where)
        for i, entry in enumerate(where.tables(section, "build-packages", at))
    ) if "build-packages" in section else ()  # fmt: skip
    build_target = None
    if build_packages:
        try:
            build_target = Target.parse(where.string(section, "build-target", at))
        except TargetError as exc:
            raise where.error(f"{at}.build-target", str(exc)) from exc
    return Lock(
        path=path,
        targets=inputs.targets,
        packages=packages,
        inputs=inputs,
        inputs_digest=where.string(section, "inputs-digest", at),
        build_packages=build_packages,
        build_target=build_target,
    )


def _from_lock(section: Mapping[str, Any], at: str, where: Where) -> FromLock | None:
    if "from" not in section:
        return None
    table = where.table(section, "from", at)
    sha256 = where.string(table, "sha256", f"{at}.from")
    if not is_sha256_hex(sha256):
        raise where.error(f"{at}.from.sha256", f"is {sha256!r}, not 64 lowercase hex digits")
    location = where.string(table, "path", f"{at}.from")
    return FromLock(path=Path(resolved_path(location, where.path.parent)), sha256=sha256)


# What a package table is installed from: wheels, an sdist, or a pinned source (PEP 751).
_DISTRIBUTIONS = ("wheels", "sdist", "vcs", "directory", "archive")


def _package(entry: Mapping[str, Any], at: str, where: Where) -> LockedPackage:
    name = where.string(entry, "name", at)
    if "version" not in entry or not any(k in entry for k in _DISTRIBUTIONS):
        raise where.error(at, "has no version, or neither wheels nor an sdist")
    version = where.string(entry, "version", at)
    wheels = tuple(
        _wheel(wheel, f"{at}.wheels[{j}]", name, version, where)
        for j, wheel in enumerate(where.tables(entry, "wheels", at) if "wheels" in entry else ())
    )
    sdist = (
        LockedSdist.from_dict(entry, at, where, name=name, version=version)
        if "sdist" in entry
        else LockedSdist.from_source(entry, at, where, name=name, version=version)
    )
    if not wheels and sdist is None:
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
        sdist=sdist,
    )


def _wheel(wheel: Mapping[str, Any], at: str, name: str, version: str, where: Where) -> LockedWheel:
    sha256 = where.string(where.table(wheel, "hashes", at), "sha256", f"{at}.hashes")
    if not is_sha256_hex(sha256):
        raise where.error(f"{at}.hashes.sha256", f"is {sha256!r}, not 64 lowercase hex digits")
    size = where.size(wheel, "size", at)
    path = where.string(wheel, "path", at) if "path" in wheel else None
    if path is not None:  # as pip does, a path wins over a URL
        filename = where.string(wheel, "name", at) if "name" in wheel else _last(path)
        if (problem := wheel_path_problem(path, filename)) is not None:
            raise where.error(f"{at}.path", f"({path!r}) {problem}")
        url = resolved_url(path, where.path.parent)
    else:
        url = where.string(wheel, "url", at)
        filename = where.string(wheel, "name", at) if "name" in wheel else _last(url)
        if (problem := wheel_url_problem(url, filename)) is not None:
            raise where.error(f"{at}.url", f"({url!r}) {problem}")
    return LockedWheel(
        name=name,
        version=version,
        filename=filename,
        url=url,
        size=size,
        sha256=sha256,
        path=path,
    )


def _last(location: str) -> str:
    return location.replace("\\", "/").rpartition("/")[2]
