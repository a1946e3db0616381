"""The entries of a manifest: the photon's attributes, its handlers, its files and wheels.

Each is a frozen, keyword-only dataclass with ``from_dict`` (validated, naming
the exact location of a fault) and ``to_dict`` (the JSON-ready form that
``schema/photon.schema.json`` describes). ``manifest.py`` assembles them into
a :class:`~photonpack.archive.manifest.Manifest` and re-exports them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from photonpack._digest import SHA256_HEX
from photonpack.archive.validation import (
    Invalid,
    array,
    boolean,
    integer,
    json_object,
    number,
    obj,
    optional_string,
    relative_path,
    sorted_unique,
    string,
    unique,
)
from photonpack.sources.form import PIN

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_TIMEOUT_S",
    "TARGET",
    "BuildWheelEntry",
    "FileEntry",
    "Handler",
    "Parameter",
    "PhotonAttributes",
    "WheelEntry",
]

TARGET = re.compile(r"[A-Za-z0-9_.]+-[A-Za-z0-9_.]+")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# What a manifest may declare for serving: a thread per slot, and a deadline a
# client could wait for. Beyond these the value is a mistake or an attack.
MAX_CONCURRENCY = 10_000
MAX_TIMEOUT_S = 86_400.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhotonAttributes:
    """The photon's declared class attributes, as recorded at build time."""

    requirement_dependency: tuple[str, ...] = ()
    system_dependency: tuple[str, ...] = ()
    image: str | None = None
    handler_max_concurrency: int = 1
    handler_timeout: float | None = None
    description: str | None = None
    # Lepton's deployment attributes, recorded only when the photon sets them.
    deployment_template: dict[str, Any] | None = None
    cmd: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    exposed_port: int | None = None
    health_check_liveness_tcp_port: int | None = None
    # Lepton's runtime set, locked for a photon written for Lepton (LEPTON_REQUIREMENTS).
    lepton_dependencies: tuple[str, ...] | None = None
    # Lepton's ``uninstall X`` lines: packages kept out of the environment (recorded when set).
    exclusions: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, data: object, where: str = "photon") -> PhotonAttributes:
        """Validate and build from the manifest's ``photon`` object."""
        keys = ("requirement_dependency", "system_dependency", "image")
        optional = (
            "handler_max_concurrency", "handler_timeout", "description", "exclusions", *_LEPTON
        )  # fmt: skip
        d = obj(data, where, keys, optional)
        timeout = d.get("handler_timeout")
        if timeout is not None:
            number(timeout, f"{where}.handler_timeout", maximum=MAX_TIMEOUT_S)
        concurrency = integer(
            d.get("handler_max_concurrency", 1), f"{where}.handler_max_concurrency", 1
        )
        if concurrency > MAX_CONCURRENCY:
            raise Invalid(
                f"{where}.handler_max_concurrency",
                f"expected an integer <= {MAX_CONCURRENCY}, found {concurrency}",
            )
        return cls(
            requirement_dependency=array(
                d["requirement_dependency"], f"{where}.requirement_dependency", string
            ),
            system_dependency=array(d["system_dependency"], f"{where}.system_dependency", string),
            image=optional_string(d["image"], f"{where}.image"),
            handler_max_concurrency=concurrency,
            handler_timeout=timeout,
            description=optional_string(d.get("description"), f"{where}.description"),
            deployment_template=(
                json_object(d["deployment_template"], f"{where}.deployment_template")
                if "deployment_template" in d
                else None
            ),
            cmd=array(d["cmd"], f"{where}.cmd", string) if "cmd" in d else None,
            args=array(d["args"], f"{where}.args", string) if "args" in d else None,
            exposed_port=_port(d, "exposed_port", where),
            health_check_liveness_tcp_port=_port(d, "health_check_liveness_tcp_port", where),
            lepton_dependencies=(
                array(d["lepton_dependencies"], f"{where}.lepton_dependencies", string)
                if "lepton_dependencies" in d
                else None
            ),
            exclusions=(
                array(d["exclusions"], f"{where}.exclusions", string) if "exclusions" in d else None
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (Lepton's attributes only when set)."""
        recorded: dict[str, Any] = {
            "requirement_dependency": list(self.requirement_dependency),
            "system_dependency": list(self.system_dependency),
            "image": self.image,
            "handler_max_concurrency": self.handler_max_concurrency,
            "handler_timeout": self.handler_timeout,
            "description": self.description,
        }
        lepton = {
            "deployment_template": self.deployment_template,
            "cmd": None if self.cmd is None else list(self.cmd),
            "args": None if self.args is None else list(self.args),
            "exposed_port": self.exposed_port,
            "health_check_liveness_tcp_port": self.health_check_liveness_tcp_port,
            "lepton_dependencies": (
                None if self.lepton_dependencies is None else list(self.lepton_dependencies)
            ),
            "exclusions": None if self.exclusions is None else list(self.exclusions),
        }
        recorded.update({k: v for k, v in lepton.items() if v is not None})
        return recorded


_LEPTON = (
    "deployment_template",
    "cmd",
    "args",
    "exposed_port",
    "health_check_liveness_tcp_port",
    "lepton_dependencies",
)


def _port(d: dict[str, Any], key: str, where: str) -> int | None:
    return integer(d[key], f"{where}.{key}", 1) if key in d else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Parameter:
    """One handler parameter: its name, whether it is required and its JSON Schema."""

    name: str
    required: bool
    schema: dict[str, Any]

    @classmethod
    def from_dict(cls, data: object, where: str) -> Parameter:
        """Validate and build from a ``handlers[i].parameters[j]`` object."""
        d = obj(data, where, ("name", "required", "schema"))
        return cls(
            name=string(d["name"], f"{where}.name"),
            required=boolean(d["required"], f"{where}.required"),
            schema=json_object(d["schema"], f"{where}.schema"),
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
        d = obj(data, where, keys, ("mount", "description", "returns"))
        method = string(d["method"], f"{where}.method")
        if method not in _METHODS:
            raise Invalid(
                f"{where}.method", f"expected one of {sorted(_METHODS)}, found {method!r}"
            )
        path = string(d["path"], f"{where}.path")
        if not path.startswith("/"):
            raise Invalid(f"{where}.path", f"expected a URL path starting with '/', found {path!r}")
        parameters = array(d["parameters"], f"{where}.parameters", Parameter.from_dict)
        unique([p.name for p in parameters], f"{where}.parameters", "parameter")
        returns = d.get("returns")
        return cls(
            name=string(d["name"], f"{where}.name"),
            path=path,
            method=method,
            mount=boolean(d.get("mount", False), f"{where}.mount"),
            description=optional_string(d.get("description"), f"{where}.description"),
            parameters=parameters,
            returns=None if returns is None else json_object(returns, f"{where}.returns"),
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
        d = obj(data, where, ("path", "sha256", "size", "executable"))
        return cls(
            path=relative_path(d["path"], f"{where}.path"),
            sha256=string(d["sha256"], f"{where}.sha256", SHA256_HEX),
            size=integer(d["size"], f"{where}.size"),
            executable=boolean(d["executable"], f"{where}.executable"),
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
class BuildWheelEntry:
    """A wheel of the build environment a source was built in, carried as a blob.

    With them the archive holds every input of the build, so ``verify --rebuild``
    can build the source again with no network and an empty store.
    """

    filename: str
    sha256: str
    size: int

    @classmethod
    def from_dict(cls, data: object, where: str) -> BuildWheelEntry:
        """Validate and build from a ``wheels[i].source.build_wheels[j]`` object."""
        d = obj(data, where, ("filename", "sha256", "size"))
        filename = string(d["filename"], f"{where}.filename")
        if not filename.endswith(".whl") or "/" in filename:
            raise Invalid(f"{where}.filename", f"{filename!r} is not a wheel filename")
        return cls(
            filename=filename,
            sha256=string(d["sha256"], f"{where}.sha256", SHA256_HEX),
            size=integer(d["size"], f"{where}.size"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {"filename": self.filename, "sha256": self.sha256, "size": self.size}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SourceEntry:
    """The locked sdist a wheel was built from, carried as a blob beside it.

    ``build_wheels``: the wheels of its build environment, also blobs, sorted
    by filename (absent from archives made before photonpack carried them).
    ``pin``: what the source is checked by, whatever compressed its archive: a
    local project's ``tree:<hex>`` (its tree digest), ``git:<commit>``, or the
    ``sha256:<hex>`` of a downloaded sdist or archive (absent from older archives).
    """

    filename: str
    url: str
    sha256: str
    size: int
    build_wheels: tuple[BuildWheelEntry, ...] = ()
    pin: str | None = None

    @classmethod
    def from_dict(cls, data: object, where: str) -> SourceEntry:
        """Validate and build from a ``wheels[i].source`` object."""
        d = obj(data, where, ("filename", "url", "sha256", "size"), ("build_wheels", "pin"))
        filename = string(d["filename"], f"{where}.filename")
        if "/" in filename or not filename.endswith((".tar.gz", ".zip")):
            raise Invalid(f"{where}.filename", f"{filename!r} is not an sdist filename")
        build_wheels = array(
            d.get("build_wheels", []), f"{where}.build_wheels", BuildWheelEntry.from_dict
        )
        sorted_unique(
            tuple(w.filename for w in build_wheels), f"{where}.build_wheels", "build wheel"
        )
        return cls(
            filename=filename,
            url=string(d["url"], f"{where}.url"),
            sha256=string(d["sha256"], f"{where}.sha256", SHA256_HEX),
            size=integer(d["size"], f"{where}.size"),
            build_wheels=build_wheels,
            pin=string(d["pin"], f"{where}.pin", PIN) if "pin" in d else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (``build_wheels`` only when there are some)."""
        data: dict[str, Any] = {
            "filename": self.filename,
            "url": self.url,
            "sha256": self.sha256,
            "size": self.size,
        }
        if self.build_wheels:
            data["build_wheels"] = [w.to_dict() for w in self.build_wheels]
        if self.pin is not None:
            data["pin"] = self.pin
        return data


@dataclasses.dataclass(frozen=True, kw_only=True)
class WheelEntry:
    """A wheel the archive carries, with the targets that install it.

    A wheel built from a locked sdist names it in ``source`` (the sdist is a
    blob of the archive too); a wheel from the index has none.
    """

    filename: str
    name: str
    version: str
    sha256: str
    size: int
    targets: tuple[str, ...]
    source: SourceEntry | None = None

    @classmethod
    def from_dict(cls, data: object, where: str) -> WheelEntry:
        """Validate and build from a ``wheels[i]`` object."""
        d = obj(
            data, where, ("filename", "name", "version", "sha256", "size", "targets"), ("source",)
        )
        filename = string(d["filename"], f"{where}.filename")
        if not filename.endswith(".whl") or "/" in filename:
            raise Invalid(f"{where}.filename", f"{filename!r} is not a wheel filename")
        relative_path(filename, f"{where}.filename")
        targets = array(d["targets"], f"{where}.targets", lambda v, w: string(v, w, TARGET))
        if not targets:
            raise Invalid(f"{where}.targets", "expected at least one target, found none")
        sorted_unique(targets, f"{where}.targets", "target")
        name = string(d["name"], f"{where}.name")
        version = string(d["version"], f"{where}.version")
        _names_its_file(filename, name, version, where)
        return cls(
            filename=filename,
            name=name,
            version=version,
            sha256=string(d["sha256"], f"{where}.sha256", SHA256_HEX),
            size=integer(d["size"], f"{where}.size"),
            targets=targets,
            source=SourceEntry.from_dict(d["source"], f"{where}.source") if "source" in d else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (``source`` only for a wheel built from one)."""
        data: dict[str, Any] = {
            "filename": self.filename,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "size": self.size,
            "targets": list(self.targets),
        }
        if self.source is not None:
            data["source"] = self.source.to_dict()
        return data


def _names_its_file(filename: str, name: str, version: str, where: str) -> None:
    """A wheel entry must be the project and version its file name says (so that ``inspect``,
    ``sbom`` and ``diff``, which read the manifest only, cannot report another package)."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        project, file_version, _build, _tags = parse_wheel_filename(filename)
        same = canonicalize_name(name) == project and Version(version) == file_version
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise Invalid(
            f"{where}.filename", f"{filename!r} is not a valid wheel name ({exc})"
        ) from None
    if not same:
        raise Invalid(
            f"{where}.name",
            f"{name} {version} is not the project its file {filename} names "
            f"({project} {file_version})",
        )
