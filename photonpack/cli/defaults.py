"""Project defaults: ``[tool.photonpack]`` of the ``pyproject.toml`` beside the photon.

A site's mirror, its targets and its registry are written once::

    [tool.photonpack]
    index-url = "https://mirror.example.org/simple"
    extra-index-url = ["https://other.example.org/simple"]
    find-links = ["wheels"]          # relative to the pyproject.toml
    targets = ["cp311-manylinux_2_28_x86_64"]
    registry = "registry.example.org:5000/team"

``lock``, ``build`` and ``create`` read the file of the photon's directory,
``push`` the one of the current directory. What the command line (or its
environment variable) gives wins; a key this module does not know, or a value
of the wrong type, is an error naming the file and the key.
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


@dataclass(frozen=True, kw_only=True)
class ProjectDefaults:
    """The values of ``[tool.photonpack]``; empty when there is no such table."""

    path: Path | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()  # local ones made absolute against the file's directory
    targets: tuple[str, ...] = ()
    registry: str | None = None


def read_defaults(directory: Path) -> ProjectDefaults:
    """The defaults of ``directory/pyproject.toml`` (none if it or its table is absent)."""
    path = directory / "pyproject.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ProjectDefaults()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML ({exc}); fix it or move it away") from exc
    table = document.get("tool", {}).get("photonpack")
    if table is None:
        return ProjectDefaults()
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.photonpack] must be a table of defaults")
    values = {key: _value(path, key, value) for key, value in table.items()}
    links = tuple(
        link if "://" in link else str((path.parent / link).resolve())
        for link in values.get("find-links", ())
    )
    return ProjectDefaults(
        path=path,
        index_url=values.get("index-url"),
        extra_index_urls=tuple(values.get("extra-index-url", ())),
        find_links=links,
        targets=tuple(values.get("targets", ())),
        registry=values.get("registry"),
    )


def _value(path: Path, key: str, value: Any) -> Any:
    if key not in KEYS:
        known = ", ".join(KEYS)
        raise UsageError(
            f"{path}: [tool.photonpack] has an unknown key {key!r}; the known keys are {known}"
        )
    if KEYS[key]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{path}: tool.photonpack.{key} must be a list of strings")
        return value
    if not isinstance(value, str):
        raise UsageError(f"{path}: tool.photonpack.{key} must be a string")
    return value
