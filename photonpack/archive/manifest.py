"""The manifest (``photon.json``): what an archive holds, as frozen dataclasses.

A manifest round-trips between a dict, canonical JSON bytes and these
classes. Its digest, ``sha256:`` of the canonical bytes, is the archive's
identity: every file and wheel is listed with its own sha256, so the digest is
a Merkle root over everything the archive contains. ``schema/photon.schema.json``
describes the same shape; ``from_dict`` checks it without needing jsonschema
and names the exact location of what is wrong (``wheels[3].sha256``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from photonpack.errors import ArchiveError

__all__ = [
    "SCHEMA_VERSION",
    "FileEntry",
    "Handler",
    "Manifest",
    "Parameter",
    "PhotonAttributes",
    "WheelEntry",
    "canonical_json",
]

SCHEMA_VERSION = 1

_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
_ENTRY = re.compile(r"[^:\s]+:[A-Za-z_][A-Za-z0-9_]*")
_TARGET = re.compile(r"[A-Za-z0-9_.]+-[A-Za-z0-9_.]+")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

T = TypeVar("T")


def canonical_json(value: object) -> bytes:
    """The one JSON encoding photonpack hashes: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


class _Invalid(Exception):
    """A validation failure at ``where``; becomes an ArchiveError at the boundary."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "an array" if isinstance(value, list) else "an object"
    )


def _obj(
    value: object, where: str, keys: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(where, f"expected an object, found {_kind(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise _Invalid(where, f"missing key {missing[0]!r}")
    extra = sorted(set(value) - set(keys) - set(optional))
    if extra:
        raise _Invalid(f"{where}.{extra[0]}", "unknown key (this photonpack does not know it)")
    return value


def _str(value: object, where: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        raise _Invalid(where, f"expected a string, found {_kind(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise _Invalid(where, f"{value!r} does not match {pattern.pattern}")
    return value


def _opt_str(value: object, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _int(value: object, where: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Invalid(where, f"expected an integer, found {_kind(value)}")
    if value < minimum:
        raise _Invalid(where, f"expected an integer >= {minimum}, found {value}")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(where, f"expected a boolean, found {_kind(value)}")
    return value


def _list(value: object, where: str, item: Callable[[object, str], T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise _Invalid(where, f"expected an array, found {_kind(value)}")
    return tuple(item(v, f"{where}[{i}]") for i, v in enumerate(value))


def _json_object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(where, f"expected an object, found {_kind(value)}")
    return value


def _sorted_unique(keys: Sequence[str], where: str, what: str) -> None:
    for i in range(1, len(keys)):
        if keys[i] == keys[i - 1]:
            raise _Invalid(f"{where}[{i}]", f"duplicate {what} {keys[i]!r}")
        if keys[i] < keys[i - 1]:
            raise _Invalid(
                f"{where}[{i}]", f"{what} {keys[i]!r} is not sorted after {keys[i - 1]!r}"
            )


def _relative_path(value: object, where: str) -> str:
    path = _str(value, where)
    parts = path.split("/")
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        raise _Invalid(where, f"{path!r} is not a normalized relative POSIX path")
    return path


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhotonAttributes:
    """The photon's declared class attributes, as recorded at build time."""

    requirement_dependency: tuple[str, ...] = ()
    system_dependency: tuple[str, ...] = ()
    image: str | None = None
    handler_max_concurrency: int = 1
    handler_timeout: float | None = None
    description: str | None = None

    @classmethod
    def from_dict(cls, data: object, where: str = "photon") -> PhotonAttributes:
        """Validate and build from the manifest's ``photon`` object."""
        keys = ("requirement_dependency", "system_dependency", "image")
        d = _obj(data, where, keys, ("handler_max_concurrency", "handler_timeout", "description"))
        timeout = d.get("handler_timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float)
        ):
            raise _Invalid(f"{where}.handler_timeout", f"expected a number, found {_kind(timeout)}")
        return cls(
            requirement_dependency=_list(
                d["requirement_dependency"], f"{where}.requirement_dependency", _str
            ),
            system_dependency=_list(d["system_dependency"], f"{where}.system_dependency", _str),
            image=_opt_str(d["image"], f"{where}.image"),
            handler_max_concurrency=_int(
                d.get("handler_max_concurrency", 1), f"{where}.handler_max_concurrency", 1
            ),
            handler_timeout=timeout,
            description=_opt_str(d.get("description"), f"{where}.description"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "requirement_dependency": list(self.requirement_dependency),
            "system_dependency": list(self.system_dependency),
            "image": self.image,
            "handler_max_concurrency": self.handler_max_concurrency,
            "handler_timeout": self.handler_timeout,
            "description": self.description,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class Parameter:
    """One handler parameter: its name, whether it is required and its JSON Schema."""

    name: str
    required: bool
    schema: dict[str, Any]

    @classmethod
    def from_dict(cls, data: object, where: str) -> Parameter:
        """Validate and build from a ``handlers[i].parameters[j]`` object."""
        d = _obj(data, where, ("name", "required", "schema"))
        return cls(
            name=_str(d["name"], f"{where}.name"),
            required=_bool(d["required"], f"{where}.required"),
            schema=_json_object(d["schema"], f"{where}.schema"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {"name": self.name, "required": self.required, "schema": self.schema}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Handler:
    """One served handler, as ``photonpack.serving.app.describe`` reports it."""

    name: str
    path: str
    method: str
    mount: bool = False
    description: str | None = None
    parameters: tuple[Parameter, ...] = ()
    returns: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: object, where: str) -> Handler:
        """Validate and build from a ``handlers[i]`` object."""
        keys = ("name", "path", "method", "parameters")
        d = _obj(data, where, keys, ("mount", "description", "returns"))
        method = _str(d["method"], f"{where}.method")
        if method not in _METHODS:
            raise _Invalid(
                f"{where}.method", f"expected one of {sorted(_METHODS)}, found {method!r}"
            )
        path = _str(d["path"], f"{where}.path")
        if not path.startswith("/"):
            raise _Invalid(
                f"{where}.path", f"expected a URL path starting with '/', found {path!r}"
            )
        parameters = _list(d["parameters"], f"{where}.parameters", Parameter.from_dict)
        _unique([p.name for p in parameters], f"{where}.parameters", "parameter")
        returns = d.get("returns")
        return cls(
            name=_str(d["name"], f"{where}.name"),
            path=path,
            method=method,
            mount=_bool(d.get("mount", False), f"{where}.mount"),
            description=_opt_str(d.get("description"), f"{where}.description"),
            parameters=parameters,
            returns=None if returns is None else _json_object(returns, f"{where}.returns"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "name": self.name,
            "path": self.path,
            "method": self.method,
            "mount": self.mount,
            "description": self.description,
            "parameters": [p.to_dict() for p in self.parameters],
            "returns": self.returns,
        }


def _unique(names: Sequence[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise _Invalid(f"{where}[{i}]", f"duplicate {what} {name!r}")
        seen.add(name)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FileEntry:
    """A file of the photon's working directory (or of photonpack's runtime)."""

    path: str
    sha256: str
    size: int
    executable: bool = False

    @classmethod
    def from_dict(cls, data: object, where: str) -> FileEntry:
        """Validate and build from a ``files[i]`` or ``runtime[i]`` object."""
        d = _obj(data, where, ("path", "sha256", "size", "executable"))
        return cls(
            path=_relative_path(d["path"], f"{where}.path"),
            sha256=_str(d["sha256"], f"{where}.sha256", _SHA256),
            size=_int(d["size"], f"{where}.size"),
            executable=_bool(d["executable"], f"{where}.executable"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "executable": self.executable,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class WheelEntry:
    """A locked wheel the archive carries, with the targets that install it."""

    filename: str
    name: str
    version: str
    sha256: str
    size: int
    targets: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: object, where: str) -> WheelEntry:
        """Validate and build from a ``wheels[i]`` object."""
        d = _obj(data, where, ("filename", "name", "version", "sha256", "size", "targets"))
        filename = _str(d["filename"], f"{where}.filename")
        if not filename.endswith(".whl") or "/" in filename:
            raise _Invalid(f"{where}.filename", f"{filename!r} is not a wheel filename")
        targets = _list(d["targets"], f"{where}.targets", lambda v, w: _str(v, w, _TARGET))
        if not targets:
            raise _Invalid(f"{where}.targets", "expected at least one target, found none")
        _sorted_unique(targets, f"{where}.targets", "target")
        return cls(
            filename=filename,
            name=_str(d["name"], f"{where}.name"),
            version=_str(d["version"], f"{where}.version"),
            sha256=_str(d["sha256"], f"{where}.sha256", _SHA256),
            size=_int(d["size"], f"{where}.size"),
            targets=targets,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "filename": self.filename,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "targets": list(self.targets),
        }


_TOP_KEYS = (
    "schema_version",
    "name",
    "entry",
    "photon",
    "handlers",
    "openapi",
    "targets",
    "lock",
    "files",
    "runtime",
    "wheels",
    "tools",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Manifest:
    """The content of ``photon.json``: everything an archive holds, by hash."""

    name: str
    entry: str
    photon: PhotonAttributes
    handlers: tuple[Handler, ...]
    openapi: dict[str, Any] | None
    targets: tuple[str, ...]
    lock: str
    files: tuple[FileEntry, ...]
    runtime: tuple[FileEntry, ...]
    wheels: tuple[WheelEntry, ...]
    tools: Mapping[str, str]
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        try:
            self._check()
        except _Invalid as exc:
            raise ArchiveError(f"invalid photon manifest at {exc.where}: {exc.problem}") from None

    def _check(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise _Invalid(
                "schema_version",
                f"this photonpack reads schema version {SCHEMA_VERSION}, found "
                f"{self.schema_version}; use the photonpack version that built the archive",
            )
        _str(self.name, "name", _NAME)
        _str(self.entry, "entry", _ENTRY)
        for i, target in enumerate(self.targets):
            _str(target, f"targets[{i}]", _TARGET)
        _sorted_unique(self.targets, "targets", "target")
        _sorted_unique([f.path for f in self.files], "files", "path")
        _sorted_unique([f.path for f in self.runtime], "runtime", "path")
        _sorted_unique([w.filename for w in self.wheels], "wheels", "filename")
        _unique([h.name for h in self.handlers], "handlers", "handler")
        if self.lock not in {f.path for f in self.files}:
            raise _Invalid("lock", f"{self.lock!r} is not listed in files")
        known = set(self.targets)
        for i, wheel in enumerate(self.wheels):
            for target in wheel.targets:
                if target not in known:
                    raise _Invalid(f"wheels[{i}].targets", f"{target!r} is not one of targets")
        sizes: dict[str, tuple[int, str]] = {}
        for where, entry in self._entries():
            seen = sizes.setdefault(entry.sha256, (entry.size, where))
            if seen[0] != entry.size:
                raise _Invalid(
                    f"{where}.size",
                    f"{entry.size} differs from {seen[0]} given for the same sha256 "
                    f"at {seen[1]}.size",
                )

    def _entries(self) -> list[tuple[str, FileEntry | WheelEntry]]:
        out: list[tuple[str, FileEntry | WheelEntry]] = []
        out += [(f"files[{i}]", e) for i, e in enumerate(self.files)]
        out += [(f"runtime[{i}]", e) for i, e in enumerate(self.runtime)]
        out += [(f"wheels[{i}]", e) for i, e in enumerate(self.wheels)]
        return out

    @classmethod
    def from_dict(cls, data: object) -> Manifest:
        """Validate a decoded ``photon.json``; ArchiveError names the bad location."""
        try:
            d = _obj(data, "photon.json", _TOP_KEYS)
            version = _int(d["schema_version"], "schema_version")
            tools = _json_object(d["tools"], "tools")
            for key, value in tools.items():
                _str(value, f"tools.{key}")
            openapi = d["openapi"]
            return cls(
                schema_version=version,
                name=_str(d["name"], "name"),
                entry=_str(d["entry"], "entry"),
                photon=PhotonAttributes.from_dict(d["photon"]),
                handlers=_list(d["handlers"], "handlers", Handler.from_dict),
                openapi=None if openapi is None else _json_object(openapi, "openapi"),
                targets=_list(d["targets"], "targets", _str),
                lock=_relative_path(d["lock"], "lock"),
                files=_list(d["files"], "files", FileEntry.from_dict),
                runtime=_list(d["runtime"], "runtime", FileEntry.from_dict),
                wheels=_list(d["wheels"], "wheels", WheelEntry.from_dict),
                tools=dict(tools),
            )
        except _Invalid as exc:
            raise ArchiveError(f"invalid photon manifest at {exc.where}: {exc.problem}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """Parse and validate ``photon.json`` bytes (any valid JSON layout)."""
        try:
            decoded = json.loads(
                data.decode("utf-8"),
                object_pairs_hook=_no_duplicate_keys,
                parse_constant=_no_constant,
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArchiveError(
                f"invalid photon manifest: photon.json is not valid JSON ({exc})"
            ) from exc
        return cls.from_dict(decoded)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form, the shape ``schema/photon.schema.json`` describes."""
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "entry": self.entry,
            "photon": self.photon.to_dict(),
            "handlers": [h.to_dict() for h in self.handlers],
            "openapi": self.openapi,
            "targets": list(self.targets),
            "lock": self.lock,
            "files": [f.to_dict() for f in self.files],
            "runtime": [f.to_dict() for f in self.runtime],
            "wheels": [w.to_dict() for w in self.wheels],
            "tools": dict(self.tools),
        }

    def to_bytes(self) -> bytes:
        """The canonical bytes: what the archive stores and what ``digest`` hashes."""
        return canonical_json(self.to_dict())

    @property
    def digest(self) -> str:
        """The archive's identity: ``sha256:`` of the canonical manifest bytes."""
        return "sha256:" + hashlib.sha256(self.to_bytes()).hexdigest()

    def blobs(self) -> dict[str, int]:
        """Every distinct content the archive holds: sha256 hex -> size, sorted by hex."""
        found = {entry.sha256: entry.size for _, entry in self._entries()}
        return dict(sorted(found.items()))

    def blob_labels(self) -> dict[str, list[str]]:
        """sha256 hex -> what it stands for (``counter.py``, ``runtime:x.py``, ``wheel:a.whl``)."""
        labels: dict[str, list[str]] = {}
        for f in self.files:
            labels.setdefault(f.sha256, []).append(f.path)
        for f in self.runtime:
            labels.setdefault(f.sha256, []).append(f"runtime:{f.path}")
        for w in self.wheels:
            labels.setdefault(w.sha256, []).append(f"wheel:{w.filename}")
        return labels

    def file(self, path: str) -> FileEntry | None:
        """The ``files`` entry at ``path``, if any."""
        return next((f for f in self.files if f.path == path), None)

    @property
    def total_size(self) -> int:
        """Sum of the sizes of the distinct blobs (the uncompressed payload)."""
        return sum(self.blobs().values())


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")
