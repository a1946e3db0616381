"""The manifest (``photon.json``): what an archive holds, as frozen dataclasses.

A manifest round-trips between a dict, canonical JSON bytes and these
classes. Its digest, ``sha256:`` of the canonical bytes, is the archive's
identity: every file and wheel is listed with its own sha256, so the digest is
a Merkle root over everything the archive contains. ``schema/photon.schema.json``
describes the same shape; ``from_dict`` checks it without needing jsonschema
and names the exact location of what is wrong (``wheels[3].sha256``). The
entry classes live in ``entries.py`` (re-exported here), the checks in
``validation.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import keyword
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from photonpack.archive.entries import (
    TARGET,
    BuildWheelEntry,
    FileEntry,
    Handler,
    Parameter,
    PhotonAttributes,
    SourceEntry,
    WheelEntry,
)
from photonpack.archive.validation import (
    MAX_JSON_DEPTH,
    Invalid,
    array,
    distinct_paths,
    integer,
    json_object,
    json_tree,
    obj,
    relative_path,
    sorted_unique,
    string,
    unique,
)
from photonpack.errors import ArchiveError

__all__ = [
    "SCHEMA_VERSION",
    "BuildWheelEntry",
    "FileEntry",
    "Handler",
    "Manifest",
    "Parameter",
    "PhotonAttributes",
    "SourceEntry",
    "WheelEntry",
    "canonical_json",
]

SCHEMA_VERSION = 1

# Lepton's rule (as photonpack.store.names.validate_name): no trailing hyphen, at most 32.
_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,30}[a-z0-9])?")
_ENTRY = re.compile(r"[^:\s]+:[A-Za-z_][A-Za-z0-9_]*")


def canonical_json(value: object) -> bytes:
    """The one JSON encoding photonpack hashes: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


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
        except Invalid as exc:
            raise ArchiveError(f"invalid photon manifest at {exc.where}: {exc.problem}") from None

    def _check(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise Invalid(
                "schema_version",
                f"this photonpack reads schema version {SCHEMA_VERSION}, found "
                f"{self.schema_version}; use the photonpack version that built the archive",
            )
        string(self.name, "name", _NAME)
        string(self.entry, "entry", _ENTRY)
        self._check_entry()
        for i, target in enumerate(self.targets):
            string(target, f"targets[{i}]", TARGET)
        sorted_unique(self.targets, "targets", "target")
        sorted_unique([f.path for f in self.files], "files", "path")
        sorted_unique([f.path for f in self.runtime], "runtime", "path")
        distinct_paths([f.path for f in self.files], "files")
        distinct_paths([f.path for f in self.runtime], "runtime")
        sorted_unique([w.filename for w in self.wheels], "wheels", "filename")
        unique([h.name for h in self.handlers], "handlers", "handler")
        if self.lock not in {f.path for f in self.files}:
            raise Invalid("lock", f"{self.lock!r} is not listed in files")
        known = set(self.targets)
        for i, wheel in enumerate(self.wheels):
            for target in wheel.targets:
                if target not in known:
                    raise Invalid(f"wheels[{i}].targets", f"{target!r} is not one of targets")
        sizes: dict[str, tuple[int, str]] = {}
        for where, entry in self._entries():
            seen = sizes.setdefault(entry.sha256, (entry.size, where))
            if seen[0] != entry.size:
                raise Invalid(
                    f"{where}.size",
                    f"{entry.size} differs from {seen[0]} given for the same sha256 "
                    f"at {seen[1]}.size",
                )

    def _check_entry(self) -> None:
        """The entry names a class in one of the photon's own files: nothing else is hashed."""
        where, _, class_name = self.entry.rpartition(":")
        if not class_name.isidentifier() or keyword.iskeyword(class_name):
            raise Invalid("entry", f"{class_name!r} in {self.entry!r} is not a Python class name")
        if where.endswith(".py") or "/" in where:
            form, candidates = "file.py:Class", [where]
            try:
                relative_path(where, "entry")
            except Invalid as exc:
                self._bad_entry(form, exc.problem)
        else:
            parts = where.split(".")
            if not all(part.isidentifier() for part in parts):
                self._bad_entry("file.py:Class or package.module:Class", "not a module name")
            form = "package.module:Class"
            candidates = ["/".join(parts) + ".py", "/".join(parts) + "/__init__.py"]
        if not any(self.file(path) is not None for path in candidates):
            listed = " or ".join(repr(path) for path in candidates)
            self._bad_entry(form, f"{listed} is not listed in files")

    def _bad_entry(self, form: str, why: str) -> NoReturn:
        raise Invalid(
            "entry",
            f"expected {form} naming one of the photon's own files, found {self.entry!r} ({why})",
        )

    def _entries(
        self,
    ) -> list[tuple[str, FileEntry | WheelEntry | SourceEntry | BuildWheelEntry]]:
        out: list[tuple[str, FileEntry | WheelEntry | SourceEntry | BuildWheelEntry]] = []
        out += [(f"files[{i}]", e) for i, e in enumerate(self.files)]
        out += [(f"runtime[{i}]", e) for i, e in enumerate(self.runtime)]
        out += [(f"wheels[{i}]", e) for i, e in enumerate(self.wheels)]
        out += [(f"wheels[{i}].source", e.source) for i, e in enumerate(self.wheels) if e.source]
        out += [
            (f"wheels[{i}].source.build_wheels[{j}]", b)
            for i, e in enumerate(self.wheels)
            if e.source
            for j, b in enumerate(e.source.build_wheels)
        ]
        return out

    @classmethod
    def from_dict(cls, data: object) -> Manifest:
        """Validate a decoded ``photon.json``; ArchiveError names the bad location."""
        try:
            json_tree(data, "photon.json")
            d = obj(data, "photon.json", _TOP_KEYS)
            version = integer(d["schema_version"], "schema_version")
            tools = json_object(d["tools"], "tools")
            for key, value in tools.items():
                string(value, f"tools.{key}")
            openapi = d["openapi"]
            return cls(
                schema_version=version,
                name=string(d["name"], "name"),
                entry=string(d["entry"], "entry"),
                photon=PhotonAttributes.from_dict(d["photon"]),
                handlers=array(d["handlers"], "handlers", Handler.from_dict),
                openapi=None if openapi is None else json_object(openapi, "openapi"),
                targets=array(d["targets"], "targets", string),
                lock=relative_path(d["lock"], "lock"),
                files=array(d["files"], "files", FileEntry.from_dict),
                runtime=array(d["runtime"], "runtime", FileEntry.from_dict),
                wheels=array(d["wheels"], "wheels", WheelEntry.from_dict),
                tools=dict(tools),
            )
        except Invalid as exc:
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
        except RecursionError:
            raise ArchiveError(
                "invalid photon manifest: photon.json nests deeper than the JSON decoder allows; "
                f"a manifest nests at most {MAX_JSON_DEPTH} levels"
            ) from None
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
            if w.source is not None:
                labels.setdefault(w.source.sha256, []).append(f"source:{w.source.filename}")
        for w in self.wheels:  # a build wheel several sources share is one blob, one label
            for b in w.source.build_wheels if w.source is not None else ():
                label = f"build:{b.filename}"
                if label not in (known := labels.setdefault(b.sha256, [])):
                    known.append(label)
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
