"""``photonpack sbom``: a deterministic CycloneDX 1.6 JSON SBOM of an archive.

Pure function of the manifest: the serial number is a name-based UUID of the
archive digest and there is no timestamp, so the same archive always gives the
same bytes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from photonpack.archive.manifest import FileEntry, Manifest, WheelEntry

__all__ = ["SBOM_NAMESPACE", "purl", "sbom", "sbom_bytes"]

# The namespace of the serial numbers' UUIDv5: fixed forever, so serials are stable.
SBOM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://photonpack.dev/sbom")


def purl(wheel: WheelEntry) -> str:
    """The package URL of a wheel's project release: ``pkg:pypi/<name>@<version>``."""
    name = wheel.name.lower().replace("_", "-").replace(".", "-")
    return f"pkg:pypi/{name}@{wheel.version}"


def _hashes(sha256: str) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": sha256}]


def _wheel(wheel: WheelEntry) -> dict[str, Any]:
    return {
        "type": "library",
        "bom-ref": f"wheel:{wheel.filename}",
        "name": wheel.name,
        "version": wheel.version,
        "purl": purl(wheel),
        "hashes": _hashes(wheel.sha256),
        "properties": [
            {"name": "photonpack:wheel", "value": wheel.filename},
            {"name": "photonpack:size", "value": str(wheel.size)},
            *({"name": "photonpack:target", "value": t} for t in wheel.targets),
        ],
    }


def _file(entry: FileEntry, prefix: str) -> dict[str, Any]:
    return {
        "type": "file",
        "bom-ref": f"{prefix}{entry.path}",
        "name": entry.path,
        "hashes": _hashes(entry.sha256),
        "properties": [{"name": "photonpack:size", "value": str(entry.size)}],
    }


def sbom(manifest: Manifest) -> dict[str, Any]:
    """The CycloneDX 1.6 document: the photon as root, its wheels and files as components."""
    digest = manifest.digest
    root_ref = f"photon:{manifest.name}@{digest}"
    tool_version = manifest.tools.get("photonpack", "unknown")
    wheels = [_wheel(w) for w in manifest.wheels]
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
            {"ref": root_ref, "dependsOn": [w["bom-ref"] for w in wheels]},
            *({"ref": w["bom-ref"], "dependsOn": []} for w in wheels),
        ],
    }


def sbom_bytes(manifest: Manifest) -> bytes:
    """The SBOM as stable, indented UTF-8 JSON ending in a newline."""
    text = json.dumps(sbom(manifest), indent=2, ensure_ascii=False, sort_keys=False)
    return (text + "\n").encode()
