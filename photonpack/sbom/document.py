"""An SBOM of a stored photon or of an archive, in either format, with the facts read first."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from photonpack.archive.manifest import Manifest
from photonpack.sbom.cyclonedx import sbom_bytes
from photonpack.sbom.facts import read_facts
from photonpack.sbom.spdx import spdx_bytes

__all__ = ["FORMATS", "MEDIA_TYPES", "archive_sbom", "photon_sbom"]

FORMATS = ("cyclonedx", "spdx")
# The registered media types, used as the artifact type of an attached SBOM.
MEDIA_TYPES = {"cyclonedx": "application/vnd.cyclonedx+json", "spdx": "application/spdx+json"}
SUFFIXES = {"cyclonedx": ".cdx.json", "spdx": ".spdx.json"}


def photon_sbom(manifest: Manifest, blob_path: Callable[[str], Path], fmt: str) -> bytes:
    """The SBOM bytes of ``manifest`` whose verified blobs are at ``blob_path(hex)``."""
    facts = read_facts(manifest, blob_path)
    return spdx_bytes(manifest, facts) if fmt == "spdx" else sbom_bytes(manifest, facts)


def archive_sbom(path: Path, fmt: str) -> bytes:
    """The SBOM bytes of the archive at ``path``, every blob re-hashed while it is read."""
    from photonpack.archive import DirectorySink, unpack

    with tempfile.TemporaryDirectory(prefix="photonpack-sbom-") as tmp:
        manifest = unpack(path, DirectorySink(Path(tmp)))
        return photon_sbom(manifest, lambda hex_: Path(tmp) / hex_, fmt)
