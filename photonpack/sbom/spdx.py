"""``photonpack sbom --format spdx``: a deterministic SPDX 2.3 JSON document of an archive.

The photon is the package the document describes; it ``CONTAINS`` the files of
its working directory (each with its SHA-1, which SPDX requires, and SHA-256),
and each wheel is a package it ``DEPENDS_ON`` (directly, or through another
wheel, as the lock's graph says).
A wheel's declared license is its ``License-Expression``; free-text licenses
and classifiers, which are not SPDX expressions, go to ``licenseComments``.
Determinism: the namespace is derived from the archive digest and
``created`` is the archives' own fixed timestamp, so the same archive always
gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from photonpack.archive.manifest import Manifest, WheelEntry
from photonpack.sbom.cyclonedx import purl
from photonpack.sbom.facts import Facts, WheelFacts
from photonpack.sbom.graph import wheel_dependencies

__all__ = ["spdx", "spdx_bytes"]

# The archives' fixed mtime (1980-01-01, the zip epoch): SPDX requires a creation time,
# and the document must not change with the clock.
CREATED = "1980-01-01T00:00:00Z"
NAMESPACE = "https://photonpack.dev/spdx"
NOASSERTION = "NOASSERTION"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")
# The shape of an SPDX license expression: ids, LicenseRef-s, AND/OR/WITH, parentheses.
_EXPRESSION = re.compile(r"^[\sA-Za-z0-9.+()-]+$")
# SPDX 2.3's rule for downloadLocation and homepage URLs: a host name with a top-level
# domain. A mirror addressed by IP or a file:// path is not one; it goes to sourceInfo.
_SPDX_URL = re.compile(
    r"^(https?|ssh|git|svn|sftp|ftp)://([\w\-.!~*'()%;:&=+$,]+@)?"
    r"[a-z0-9]+([\-.][a-z0-9]+){0,100}\.[a-z]{2,5}(:[0-9]{1,5})?(/.*)?$",
    re.IGNORECASE,
)


def _ids(wheels: tuple[WheelEntry, ...]) -> dict[str, str]:
    """A stable SPDXID per wheel filename (unsafe characters become ``-``, clashes numbered)."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for wheel in wheels:
        base = "SPDXRef-Wheel-" + _ID_UNSAFE.sub("-", wheel.filename)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        ids[wheel.filename] = candidate
    return ids


def _files(manifest: Manifest, facts: Facts | None) -> list[dict[str, Any]]:
    """The photon's own files, in the manifest's (sorted) order; none without their SHA-1s."""
    sha1 = facts.file_sha1 if facts else {}
    if not manifest.files or any(f.path not in sha1 for f in manifest.files):
        return []
    ids: set[str] = set()
    files = []
    for entry in manifest.files:
        spdx_id, n = "SPDXRef-File-" + _ID_UNSAFE.sub("-", entry.path), 1
        while spdx_id in ids:
            n += 1
            spdx_id = f"SPDXRef-File-{_ID_UNSAFE.sub('-', entry.path)}-{n}"
        ids.add(spdx_id)
        files.append(
            {
                "SPDXID": spdx_id,
                "fileName": f"./{entry.path}",
                "checksums": [
                    {"algorithm": "SHA1", "checksumValue": sha1[entry.path]},
                    {"algorithm": "SHA256", "checksumValue": entry.sha256},
                ],
                "licenseConcluded": NOASSERTION,
                "copyrightText": NOASSERTION,
            }
        )
    return files


def _verification_code(files: list[dict[str, Any]]) -> str:
    """SPDX 2.3 section 7.9: the SHA-1 of the files' sorted SHA-1s, concatenated."""
    sha1s = sorted(f["checksums"][0]["checksumValue"] for f in files)
    return hashlib.sha1("".join(sha1s).encode(), usedforsecurity=False).hexdigest()


def _declared(facts: WheelFacts) -> tuple[str, str | None]:
    """(licenseDeclared, licenseComments) for a wheel."""
    expression = facts.license_expression
    if expression and _EXPRESSION.match(expression):
        return expression, None
    said = [s for s in (expression, facts.license, *facts.license_classifiers) if s]
    return NOASSERTION, ("Declared in METADATA: " + "; ".join(said)) if said else None


def _package(wheel: WheelEntry, spdx_id: str, facts: Facts | None) -> dict[str, Any]:
    known = facts.wheels.get(wheel.filename, WheelFacts()) if facts else WheelFacts()
    url = facts.wheel_urls.get(wheel.filename) if facts else None
    declared, comment = _declared(known)
    package: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": wheel.name,
        "versionInfo": wheel.version,
        "packageFileName": wheel.filename,
        "downloadLocation": url if url and _SPDX_URL.match(url) else NOASSERTION,
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": wheel.sha256}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": declared,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(wheel),
            }
        ],
    }
    if url and package["downloadLocation"] == NOASSERTION:
        package["sourceInfo"] = f"fetched from {url}"
    if comment:
        package["licenseComments"] = comment
    if known.summary:
        package["summary"] = known.summary
    homepage = next((u for label, u in known.urls if label.lower() in ("homepage", "home")), None)
    if homepage and _SPDX_URL.match(homepage):
        package["homepage"] = homepage
    return package


def spdx(manifest: Manifest, facts: Facts | None = None) -> dict[str, Any]:
    """The SPDX 2.3 document of ``manifest`` (with the lock's graph and METADATA in ``facts``)."""
    hex_ = manifest.digest.removeprefix("sha256:")
    tool = manifest.tools.get("photonpack", "unknown")
    ids = _ids(manifest.wheels)
    root: dict[str, Any] = {
        "SPDXID": "SPDXRef-Photon",
        "name": manifest.name,
        "versionInfo": manifest.digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "checksums": [{"algorithm": "SHA256", "checksumValue": hex_}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "APPLICATION",
    }
    if manifest.photon.description:
        root["description"] = manifest.photon.description
    files = _files(manifest, facts)
    if files:
        root["filesAnalyzed"] = True
        root["packageVerificationCode"] = {
            "packageVerificationCodeValue": _verification_code(files)
        }
    graph = wheel_dependencies(manifest, facts)
    relationships = [
        _relationship("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Photon"),
        *(_relationship("SPDXRef-Photon", "CONTAINS", f["SPDXID"]) for f in files),
        *(_relationship("SPDXRef-Photon", "DEPENDS_ON", ids[f]) for f in graph.direct),
        *(
            _relationship(ids[filename], "DEPENDS_ON", ids[dep])
            for filename, deps in graph.wheels.items()
            for dep in deps
        ),
    ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{manifest.name}-{hex_[:12]}",
        "documentNamespace": f"{NAMESPACE}/{manifest.name}-{hex_}",
        "creationInfo": {"created": CREATED, "creators": [f"Tool: photonpack-{tool}"]},
        "packages": [root, *(_package(w, ids[w.filename], facts) for w in manifest.wheels)],
        **({"files": files} if files else {}),
        "relationships": relationships,
    }


def _relationship(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}


def spdx_bytes(manifest: Manifest, facts: Facts | None = None) -> bytes:
    """The SPDX document as stable, indented UTF-8 JSON ending in a newline."""
    return (json.dumps(spdx(manifest, facts), indent=2, ensure_ascii=False) + "\n").encode()
