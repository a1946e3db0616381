"""Container images from photons: daemonless, offline, deterministic.

``build_image(store, manifest, base, work, options)`` makes an OCI image of a
verified photon on a base read by ``open_base`` (an OCI layout, a
docker-archive, or a registry through photonpack's own client); the writers
put it in an OCI layout, a docker-archive or a registry. The same photon on
the same base digest gives the same image digest, wherever and by whomever it
is built. Modules, bottom up: ``base`` and ``pull`` (reading bases),
``rootfs`` (their layers), ``checks`` (Python, libc, system packages),
``environment`` (the venv, by photonpack's installer), ``users``,
``layering``, ``layer`` (deterministic tar+gzip), ``config``, ``build``, ``output``.
"""

from __future__ import annotations

from photonpack.image.base import BaseImage, Blob
from photonpack.image.build import Image, ImageOptions, build_image
from photonpack.image.output import PushedImage, push_image, write_docker_archive, write_oci_layout
from photonpack.image.pull import DEFAULT_BASE, default_base, open_base

__all__ = [
    "DEFAULT_BASE",
    "BaseImage",
    "Blob",
    "Image",
    "ImageOptions",
    "PushedImage",
    "build_image",
    "default_base",
    "open_base",
    "push_image",
    "write_docker_archive",
    "write_oci_layout",
]
