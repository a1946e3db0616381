"""Container images from photons: daemonless, offline, deterministic.

``build_image(store, manifest, base, work, options)`` makes an OCI image of a
verified photon on a base read by ``open_base`` (an OCI layout, a
docker-archive, or a registry through photonpack's own client); the writers
put it in an OCI layout, a docker-archive or a registry. The same photon on
the same base digest gives the same image digest, wherever and by whomever it
is built. Modules, bottom up: ``base`` and ``pull`` (reading bases),
``rootfs`` (their layers), ``checks`` (Python, libc, system packages),
``environment`` (the venv, by photonpack's installer), ``users``,
``layering``, ``layer`` (deterministic tar+gzip), ``config``, ``build``, ``platforms``
and ``index`` (one image per platform, and the OCI index over them), ``output``.
"""

from __future__ import annotations

from photonpack.image.base import BaseImage, Blob
from photonpack.image.build import Image, ImageOptions, build_image
from photonpack.image.config import source_date_epoch
from photonpack.image.index import ImageIndex, image_index
from photonpack.image.output import PushedImage, push_image, write_docker_archive, write_oci_layout
from photonpack.image.platforms import (
    archive_architecture,
    archive_platforms,
    check_platforms,
    parse_platforms,
)
from photonpack.image.pull import DEFAULT_BASE, base_platforms, default_base, open_base

__all__ = [
    "DEFAULT_BASE",
    "BaseImage",
    "Blob",
    "Image",
    "ImageIndex",
    "ImageOptions",
    "PushedImage",
    "archive_architecture",
    "archive_platforms",
    "base_platforms",
    "build_image",
    "check_platforms",
    "default_base",
    "image_index",
    "open_base",
    "parse_platforms",
    "push_image",
    "source_date_epoch",
    "write_docker_archive",
    "write_oci_layout",
]
