"""What a wheel says it is: its file name, its ``.dist-info`` directory and its METADATA agree.

A wheel named ``evilpkg-1.0-py3-none-any.whl`` must hold
``evilpkg-1.0.dist-info/`` whose METADATA says ``Name: evilpkg`` and
``Version: 1.0``; otherwise an installer, an SBOM and a diff each see another
package. Names compare as PEP 503 normalises them, versions as PEP 440 does.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.metadata import parse_email
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

__all__ = ["WheelMetadata", "identity_problem", "parse_metadata"]


@dataclass(frozen=True, kw_only=True)
class WheelMetadata:
    """The fields of a wheel's METADATA that photonpack checks."""

    name: str  # as METADATA writes it
    version: str
    requires_dist: tuple[str, ...]  # PEP 508 lines, markers included


def parse_metadata(data: bytes) -> WheelMetadata:
    """Read METADATA; ``ValueError`` with a one-line reason when Name or Version is missing."""
    raw, _unparsed = parse_email(data)
    name, version = raw.get("name"), raw.get("version")
    if not name or not version:
        raise ValueError("its METADATA has no Name or no Version")
    return WheelMetadata(
        name=name, version=version, requires_dist=tuple(raw.get("requires_dist", ()))
    )


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def identity_problem(filename: str, dist_info: str, metadata: WheelMetadata) -> str | None:
    """Why the wheel ``filename`` is not the project its dist-info and METADATA name, or None."""
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        return f"its file name is not a wheel's ({exc})"
    claimed = f"{name} {version}"
    dist_name, _, dist_version = dist_info.removesuffix(".dist-info").rpartition("-")
    if canonicalize_name(dist_name) != name or not _same_version(dist_version, str(version)):
        return f"its file name says {claimed} but its metadata directory is {dist_info}"
    if canonicalize_name(metadata.name) != name or not _same_version(
        metadata.version, str(version)
    ):
        return (
            f"its file name says {claimed} but its METADATA says "
            f"Name: {metadata.name}, Version: {metadata.version}"
        )
    return None
