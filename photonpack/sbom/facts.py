"""What an SBOM says beyond the manifest: the lock's dependency graph and each wheel's METADATA.

Both are read from the archive's own verified blobs, never from the network:
the lock file the photon was built from (``packages[].dependencies``), and the
``*.dist-info/METADATA`` of every wheel (``Summary``, ``License-Expression``,
``License``, ``License ::`` classifiers, ``Home-page``, ``Project-URL``).
"""

from __future__ import annotations

import email.parser
import hashlib
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from photonpack.archive.manifest import Manifest
from photonpack.errors import PhotonpackError
from photonpack.lock.index import redact_url
from photonpack.lock.pylock import parse_lock

__all__ = ["Facts", "WheelFacts", "read_facts"]

# A METADATA file is a few kilobytes; a huge one is not read whole.
_MAX_METADATA_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class WheelFacts:
    """What one wheel's METADATA declares."""

    summary: str | None = None
    license_expression: str | None = None
    license: str | None = None  # the first line of the free-text ``License`` field
    license_classifiers: tuple[str, ...] = ()  # "MIT License", from "License :: OSI Approved :: …"
    urls: tuple[tuple[str, str], ...] = ()  # (label, url): "Homepage" and each Project-URL

    @property
    def has_license(self) -> bool:
        return bool(self.license_expression or self.license or self.license_classifiers)


@dataclass(frozen=True, kw_only=True)
class Facts:
    """The graph (canonical names) and the wheels' metadata, keyed by wheel filename."""

    dependencies: Mapping[str, tuple[str, ...]] | None = None  # None: no lock to read
    direct: tuple[str, ...] | None = None  # the photon's own requirements and the serving stack
    index_url: str | None = None
    wheel_urls: Mapping[str, str] = field(default_factory=dict)
    wheels: Mapping[str, WheelFacts] = field(default_factory=dict)
    # SHA-1 of each file of the photon's working directory, by path: SPDX requires one per file.
    file_sha1: Mapping[str, str] = field(default_factory=dict)


def read_facts(manifest: Manifest, blob_path: Callable[[str], Path]) -> Facts:
    """The facts of ``manifest``, read from its blobs (``blob_path(sha256_hex)``)."""
    dependencies: dict[str, tuple[str, ...]] | None = None
    direct: tuple[str, ...] | None = None
    index_url: str | None = None
    wheel_urls: dict[str, str] = {}
    lock_entry = next((f for f in manifest.files if f.path == manifest.lock), None)
    if lock_entry is not None:
        text = blob_path(lock_entry.sha256).read_text(encoding="utf-8")
        try:
            lock = parse_lock(text, path=Path(manifest.lock))
        except PhotonpackError:
            lock = None
        if lock is not None:
            dependencies = {}
            for package in lock.packages:
                name = canonicalize_name(package.name)
                deps = {canonicalize_name(d) for d in package.dependencies if d}
                dependencies[name] = tuple(sorted(deps | set(dependencies.get(name, ()))))
                wheel_urls |= {w.filename: redact_url(w.url) for w in package.wheels}
            requirements = (*lock.inputs.requirements, *lock.inputs.serving_requirements)
            direct = tuple(sorted({n for r in requirements if (n := _name(r))}))
            index_url = redact_url(lock.inputs.index.index_url) or None
    wheels = {w.filename: _wheel_facts(blob_path(w.sha256)) for w in manifest.wheels}
    file_sha1 = {f.path: _sha1(blob_path(f.sha256)) for f in manifest.files}
    return Facts(
        dependencies=dependencies,
        direct=direct,
        index_url=index_url,
        wheel_urls=wheel_urls,
        wheels=wheels,
        file_sha1=file_sha1,
    )


def _sha1(path: Path) -> str:
    # Not a security use: SPDX 2.3 names SHA-1 as the one checksum every file must carry.
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _name(requirement: str) -> str | None:
    try:
        # A line may carry --hash options (the lock records them as written).
        return canonicalize_name(Requirement(requirement.split(" --hash=", 1)[0]).name)
    except InvalidRequirement:
        return None


def _wheel_facts(path: Path) -> WheelFacts:
    try:
        with zipfile.ZipFile(path) as wheel:
            names = [
                n
                for n in wheel.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(names) != 1 or wheel.getinfo(names[0]).file_size > _MAX_METADATA_BYTES:
                return WheelFacts()
            raw = wheel.read(names[0])
    except (OSError, zipfile.BadZipFile):
        return WheelFacts()
    headers = email.parser.BytesHeaderParser().parsebytes(raw)
    license_text = (headers.get("License") or "").strip().splitlines()
    classifiers = tuple(
        c.rsplit("::", 1)[-1].strip()
        for c in headers.get_all("Classifier") or []
        if c.startswith("License ::") and c.count("::") >= 2
    )
    urls: list[tuple[str, str]] = []
    if home := (headers.get("Home-page") or "").strip():
        urls.append(("Homepage", home))
    for entry in headers.get_all("Project-URL") or []:
        label, _, url = str(entry).partition(",")
        if url.strip():
            urls.append((label.strip(), url.strip()))
    return WheelFacts(
        summary=(headers.get("Summary") or "").strip() or None,
        license_expression=(headers.get("License-Expression") or "").strip() or None,
        license=license_text[0].strip() if license_text and license_text[0].strip() else None,
        license_classifiers=tuple(dict.fromkeys(classifiers)),
        urls=tuple(dict.fromkeys(urls)),
    )
