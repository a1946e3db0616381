"""``photonpack sbom``: a deterministic CycloneDX 1.6 JSON SBOM of an archive.

A pure function of the manifest and its facts (the lock's graph, the wheels'
METADATA: ``facts.py``): the serial number is a name-based UUID of the archive
digest and there is no timestamp, so the same archive always gives the same
bytes. Without facts, no wheel claims to depend on nothing: its dependencies
are left out (unknown), as CycloneDX reads an empty ``dependsOn`` as "none".
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from photonpack.archive.manifest import FileEntry, Manifest, WheelEntry
from photonpack.sbom.facts import Facts, WheelFacts
from photonpack.sbom.graph import wheel_dependencies

__all__ = ["SBOM_NAMESPACE", "purl", "sbom", "sbom_bytes"]

# Project-URL labels (lower case) and the CycloneDX reference type they are.
_URL_TYPES = {
    "homepage": "website",
    "home": "website",
    "source": "vcs",
    "source code": "vcs",
    "repository": "vcs",
    "code": "vcs",
    "documentation": "documentation",
    "docs": "documentation",
    "changelog": "release-notes",
    "release notes": "release-notes",
    "issues": "issue-tracker",
    "bug tracker": "issue-tracker",
    "tracker": "issue-tracker",
}

# The namespace of the serial numbers' UUIDv5: fixed forever, so serials are stable.
SBOM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://photonpack.dev/sbom")


def purl(wheel: WheelEntry) -> str:
    """The package URL of a wheel's project release: ``pkg:pypi/<name>@<version>``."""
    name = wheel.name.lower().replace("_", "-").replace(".", "-")
    return f"pkg:pypi/{name}@{wheel.version}"


def _hashes(sha256: str) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": sha256}]


def _licenses(facts: WheelFacts) -> list[dict[str, Any]]:
    """CycloneDX ``licenses``: the SPDX expression if declared, else each license named."""
    if facts.license_expression:
        return [{"expression": facts.license_expression}]
    names = [facts.license] if facts.license else []
    names += [c for c in facts.license_classifiers if c not in names]
    return [{"license": {"name": name}} for name in names]


def _references(facts: WheelFacts, url: str | None) -> list[dict[str, Any]]:
    refs = [{"type": "distribution", "url": url}] if url else []
    for label, target in facts.urls:
        kind = _URL_TYPES.get(label.lower(), "other")
        ref = {"type": kind, "url": target}
        if kind == "other":
            ref["comment"] = label
        if ref not in refs:
            refs.append(ref)
    return refs


def _wheel(wheel: WheelEntry, facts: Facts | None) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": f"wheel:{wheel.filename}",
        "name": wheel.name,
        "version": wheel.version,
    }
    known = facts.wheels.get(wheel.filename, WheelFacts()) if facts else WheelFacts()
    if known.summary:
        component["description"] = known.summary
    component |= {"purl": purl(wheel), "hashes": _hashes(wheel.sha256)}
    if licenses := _licenses(known):
        component["licenses"] = licenses
    if refs := _references(known, facts.wheel_urls.get(wheel.filename) if facts else None):
        component["externalReferences"] = refs
    component["properties"] = [
        {"name": "photonpack:wheel", "value": wheel.filename},
        {"name": "photonpack:size", "value": str(wheel.size)},
        *({"name": "photonpack:target", "value": t} for t in wheel.targets),
    ]
    if wheel.source is not None:  # built by photonpack from a locked sdist, carried beside it
        component["properties"] += [
            {"name": "photonpack:built-from", "value": wheel.source.filename},
            {"name": "photonpack:source-sha256", "value": wheel.source.sha256},
            {"name": "photonpack:source-url", "value": wheel.source.url},
        ]
    return component


def _file(entry: FileEntry, prefix: str) -> dict[str, Any]:
    return {
        "type": "file",
        "bom-ref": f"{prefix}{entry.path}",
        "name": entry.path,
        "hashes": _hashes(entry.sha256),
        "properties": [{"name": "photonpack:size", "value": str(entry.size)}],
    }


def sbom(manifest: Manifest, facts: Facts | None = None) -> dict[str, Any]:
    """The CycloneDX 1.6 document: the photon as root, its wheels and files as components."""
    digest = manifest.digest
    root_ref = f"photon:{manifest.name}@{digest}"
    tool_version = manifest.tools.get("photonpack", "unknown")
    wheels = [_wheel(w, facts) for w in manifest.wheels]
    graph = wheel_dependencies(manifest, facts)
    files = [_file(f, "file:") for f in manifest.files]
    runtime = [_file(f, "runtime:") for f in manifest.runtime]
    root_properties = [
        {"name": "photonpack:entry", "value": manifest.entry},
        {"name": "photonpack:digest", "value": digest},
        *({"name": "photonpack:target", "value": t} for t in manifest.targets),
        *(
            {"name": "photonpack:system_dependency", "value": d}
            for d in manifest.photon.system_dependency
        ),
    ]
    if manifest.photon.image:
        root_properties.append({"name": "photonpack:image", "value": manifest.photon.image})
    root: dict[str, Any] = {
        "type": "application",
        "bom-ref": root_ref,
        "name": manifest.name,
        "version": digest,
        "hashes": _hashes(digest.removeprefix("sha256:")),
        "properties": root_properties,
    }
    if manifest.photon.description:
        root["description"] = manifest.photon.description
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": uuid.uuid5(SBOM_NAMESPACE, digest).urn,
        "version": 1,
        "metadata": {
            "tools": {
                "components": [
                    {"type": "application", "name": "photonpack", "version": tool_version}
                ]
            },
            "component": root,
        },
        "components": wheels + files + runtime,
        "dependencies": [
            {"ref": root_ref, "dependsOn": [f"wheel:{f}" for f in graph.direct]},
            *(
                {"ref": f"wheel:{filename}", "dependsOn": [f"wheel:{d}" for d in deps]}
                for filename, deps in graph.wheels.items()
            ),
        ],
    }


def sbom_bytes(manifest: Manifest, facts: Facts | None = None) -> bytes:
    """The SBOM as stable, indented UTF-8 JSON ending in a newline."""
    text = json.dumps(sbom(manifest, facts), indent=2, ensure_ascii=False, sort_keys=False)
    return (text + "\n").encode()
