"""Project defaults: ``[tool.photonpack]`` of ``pyproject.toml``, or ``photonpack.toml``.

A site's mirror, its targets and its registry are written once::

    [tool.photonpack]                # or the same keys, top level, in photonpack.toml
    index-url = "https://mirror.example.org/simple"
    extra-index-url = ["https://other.example.org/simple"]
    find-links = ["wheels"]          # relative to the file that names them
    targets = ["cp311-manylinux_2_28_x86_64"]
    registry = "registry.example.org:5000/team"

``lock``, ``build`` and ``create`` read the files of the photon's directory,
``push`` and ``deploy`` those of the current directory. Both files may be
there: their keys are merged, and a key both set to different values is an
error naming the two files (never a silent winner). What the command line (or
its environment variable) gives wins over either; a key this module does not
know, or a value of the wrong type, is an error naming the file and the key.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photonpack.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["KEYS", "ProjectDefaults", "read_defaults"]

# Each key and whether it holds a list of strings (else one string).
KEYS = {
    "index-url": False,
    "extra-index-url": True,
    "find-links": True,
    "targets": True,
    "registry": False,
}
PYPROJECT = "pyproject.toml"
PHOTONPACK_TOML = "photonpack.toml"


@dataclass(frozen=True, kw_only=True)
class ProjectDefaults:
    """The merged defaults of the directory's files; empty when neither sets any."""

    path: Path | None = None  # the file read (the first of the two when both are)
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()  # local ones made absolute against their file's directory
    targets: tuple[str, ...] = ()
    registry: str | None = None
    origins: tuple[tuple[str, Path], ...] = ()  # (key, the file that set it)

    def where(self, key: str) -> str:
        """``FILE: tool.photonpack.KEY`` (or ``FILE: KEY`` in photonpack.toml), for messages."""
        path = dict(self.origins).get(key, self.path)
        if path is None or path.name == PYPROJECT:
            return f"{path}: tool.photonpack.{key}"
        return f"{path}: {key}"


def read_defaults(directory: Path) -> ProjectDefaults:
    """The defaults of ``directory``'s ``pyproject.toml`` and ``photonpack.toml`` (or none)."""
    tables = [
        (path, table)
        for path, table in (
            _pyproject_table(directory / PYPROJECT),
            _photonpack_table(directory / PHOTONPACK_TOML),
        )
        if table is not None
    ]
    if not tables:
        return ProjectDefaults()
    values: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for path, table in tables:
        for key, raw in table.items():
            value = _value(path, key, raw)
            if key == "find-links":
                value = [
                    link if "://" in link else str((path.parent / link).resolve()) for link in value
                ]
            if key in values and values[key] != value:
                raise UsageError(
                    f"{origin[key]} and {path} both set {key}, to different values; "
                    f"keep it in one of them"
                )
            values.setdefault(key, value)
            origin.setdefault(key, path)
    return ProjectDefaults(
        path=tables[0][0],
        index_url=values.get("index-url"),
        extra_index_urls=tuple(values.get("extra-index-url", ())),
        find_links=tuple(values.get("find-links", ())),
        targets=tuple(values.get("targets", ())),
        registry=values.get("registry"),
        origins=tuple(origin.items()),
    )


def _pyproject_table(path: Path) -> tuple[Path, dict[str, Any] | None]:
    document = _load(path)
    if document is None:
        return path, None
    table = document.get("tool", {}).get("photonpack")
    if table is not None and not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.photonpack] must be a table of defaults")
    return path, table


def _photonpack_table(path: Path) -> tuple[Path, dict[str, Any] | None]:
    document = _load(path)
    if document is not None and isinstance(document.get("tool"), dict):
        raise UsageError(
            f"{path}: write the keys at the top of photonpack.toml, without [tool.photonpack]"
        )
    return path, document


def _load(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML ({exc}); fix it or move it away") from exc
    return document


def _value(path: Path, key: str, value: Any) -> Any:
    where = "[tool.photonpack]" if path.name == PYPROJECT else "it"
    name = f"tool.photonpack.{key}" if path.name == PYPROJECT else key
    if key not in KEYS:
        known = ", ".join(KEYS)
        raise UsageError(f"{path}: {where} has an unknown key {key!r}; the known keys are {known}")
    if KEYS[key]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{path}: {name} must be a list of strings")
        return value
    if not isinstance(value, str):
        raise UsageError(f"{path}: {name} must be a string")
    return value
