"""A multi-platform image: one image per platform, and the OCI image index over them.

The index is a pure function of its images: their manifests are listed by
platform, sorted, so the same images give the same index digest whatever
order ``--platform`` named them in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from photonpack.image.base import OCI_INDEX, OCI_MANIFEST, canonical
from photonpack.image.build import Image
from photonpack.image.config import LABEL_PREFIX
from photonpack.image.platforms import platform_of

__all__ = ["ImageIndex", "image_index"]


@dataclass(frozen=True, kw_only=True)
class ImageIndex:
    """The images (sorted by platform) and the index's bytes and digest."""

    images: tuple[Image, ...]
    manifest: bytes
    digest: str

    @property
    def size(self) -> int:
        """Bytes of every distinct blob and manifest: what a registry holds for it."""
        blobs = {b.digest: b.size for i in self.images for b in (i.config, *i.layers)}
        return len(self.manifest) + sum(len(i.manifest) for i in self.images) + sum(blobs.values())


def image_index(images: Sequence[Image]) -> ImageIndex:
    """The OCI image index over ``images`` (one per platform)."""
    ordered = sorted(images, key=lambda image: platform_of(image.platform))
    platforms = [platform_of(image.platform) for image in ordered]
    if len(set(platforms)) != len(platforms):
        raise ValueError(f"two images for one platform: {platforms}")
    index: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": image.digest,
                "size": len(image.manifest),
                "platform": image.platform,
            }
            for image in ordered
        ],
        "annotations": {f"{LABEL_PREFIX}.photon.digest": ordered[0].photon.digest},
    }
    data = canonical(index)
    return ImageIndex(
        images=tuple(ordered), manifest=data, digest="sha256:" + hashlib.sha256(data).hexdigest()
    )
