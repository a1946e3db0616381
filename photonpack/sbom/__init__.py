"""SBOMs of a photon: CycloneDX 1.6 JSON and SPDX 2.3 JSON, both deterministic.

Both are pure functions of the manifest and its :class:`Facts` (the lock's
dependency graph and each wheel's METADATA, read from the archive's blobs by
:func:`read_facts`).
"""

from __future__ import annotations

from photonpack.sbom.cyclonedx import SBOM_NAMESPACE, purl, sbom, sbom_bytes
from photonpack.sbom.facts import Facts, WheelFacts, read_facts
from photonpack.sbom.spdx import spdx, spdx_bytes

__all__ = [
    "SBOM_NAMESPACE",
    "Facts",
    "WheelFacts",
    "purl",
    "read_facts",
    "sbom",
    "sbom_bytes",
    "spdx",
    "spdx_bytes",
]
