"""Base images from a registry, through photonpack's own OCI client, and ``--base`` parsing.

A pulled base's blobs are verified by digest into the store's blob directory,
so the next image on the same base reads them from there without a network.
The manifest is fetched by tag once, then by its digest, which is the base's
identity: an index (multi-platform base) is resolved to the manifest of the
archive's architecture.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from photonpack._json import load_json_object
from photonpack.errors import ImageError, IntegrityError, RegistryError
from photonpack.image.base import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    BaseImage,
    Blob,
    choose_platform,
    layout_index,
    parse_manifest,
    read_docker_archive,
    read_oci_layout,
)
from photonpack.image.platforms import index_platforms, platform_of
from photonpack.oci.client import RegistryClient
from photonpack.oci.reference import Reference, parse_reference
from photonpack.store import Store

__all__ = ["DEFAULT_BASE", "api_host", "base_platforms", "default_base", "open_base", "pull_base"]

# The base when neither --base nor the photon's `image` names one: Debian 12's
# slim CPython image of the archive's Python version (glibc 2.36).
DEFAULT_BASE = "docker.io/library/python:{version}-slim-bookworm"
_ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
_API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}

ClientFactory = Callable[[str], RegistryClient]


def api_host(registry: str) -> str:
    """The host that serves a registry's API (Docker Hub's is not its name)."""
    return _API_HOSTS.get(registry, registry)


def default_base(targets: list[str]) -> str:
    """The documented default base for the archive's first target."""
    first = targets[0] if targets else "cp311"
    minor = first.partition("-")[0].removeprefix("cp3")
    return DEFAULT_BASE.format(version=f"3.{minor}")


def _manifest(
    client: RegistryClient, ref: Reference, reference: str, digest: str | None
) -> tuple[str, bytes]:
    media_type, data = client.get_manifest(ref.repository, reference, accept=_ACCEPT)
    if digest is not None:
        found = "sha256:" + hashlib.sha256(data).hexdigest()
        if found != digest:
            raise IntegrityError(
                f"{ref.registry}/{ref.repository} served a manifest hashing to {found} for "
                f"{digest}; refusing it"
            )
    return media_type, data


def _json(data: bytes, where: str) -> dict[str, Any]:
    try:
        return load_json_object(data)
    except ValueError as exc:
        raise ImageError(f"{where} answered with a manifest that is {exc}") from exc


def pull_base(
    ref: Reference, *, client: RegistryClient, store: Store, architecture: str
) -> BaseImage:
    """Fetch (or find in the store) the base's blobs, verified; return the base."""
    where = str(ref)
    media_type, data = _manifest(client, ref, ref.reference, ref.digest)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if media_type in INDEX_TYPES or "manifests" in _json(data, where):
        chosen = choose_platform(_json(data, where), architecture, where)
        digest = str(chosen["digest"])
        media_type, data = _manifest(client, ref, digest, digest)

    def blob(desc: Mapping[str, Any], kind: str) -> Blob:
        blob_digest, size = str(desc["digest"]), int(desc["size"])
        hex_ = blob_digest.removeprefix("sha256:")
        if not store.has_blob(hex_, size):
            with store.blob_writer(hex_, size) as out:
                client.fetch_blob(ref.repository, digest=blob_digest, size=size, out=out)
        return Blob(media_type=kind, digest=blob_digest, size=size, path=store.blob_path(hex_))

    config, config_blob, layers = parse_manifest(data, where, blob)
    diff_ids = tuple((config.get("rootfs") or {}).get("diff_ids") or ())
    if len(diff_ids) != len(layers):
        raise ImageError(f"the config of {where} does not list its layers; the base is damaged")
    return BaseImage(
        name=where,
        digest=digest,
        config=config,
        config_blob=config_blob,
        layers=layers,
        diff_ids=diff_ids,
        source=ref,
    )


def _layout_spec(spec: str) -> tuple[Path, str | None]:
    """``oci:DIR[:TAG]`` -> (DIR, TAG)."""
    directory, tag = Path(spec[4:]), None
    if not directory.is_dir() and ":" in spec[4:]:
        head, _, tag = spec[4:].rpartition(":")
        directory = Path(head)
    return directory, tag


def _pull_errors(spec: str, exc: RegistryError) -> ImageError:
    return ImageError(
        f"cannot pull the base {spec}: {exc.message}; on a machine without that registry, "
        "copy the base beforehand (skopeo copy docker://... oci:DIR) and pass --base oci:DIR"
    )


def open_base(
    spec: str, *, store: Store, architecture: str, client_for: ClientFactory
) -> BaseImage:
    """``oci:DIR[:TAG]``, ``docker-archive:FILE`` or a registry reference, as a base.

    A multi-platform base gives its linux/``architecture`` image.
    """
    if spec.startswith("oci:"):
        directory, tag = _layout_spec(spec)
        return read_oci_layout(directory, tag=tag, architecture=architecture)
    if spec.startswith("docker-archive:"):
        return read_docker_archive(Path(spec.removeprefix("docker-archive:")))
    try:
        ref = parse_reference(spec)
        with client_for(api_host(ref.registry)) as client:
            return pull_base(ref, client=client, store=store, architecture=architecture)
    except RegistryError as exc:
        raise _pull_errors(spec, exc) from exc


def _index(spec: str, client_for: ClientFactory) -> tuple[dict[str, Any] | None, str]:
    """The base's image index when it is a multi-platform one (else None), and the spec
    to open its platforms by: a registry tag pinned to the index's digest, so that every
    platform comes from the index that was listed even if the tag moves meanwhile."""
    if spec.startswith("oci:"):
        directory, tag = _layout_spec(spec)
        return layout_index(directory, tag=tag), spec
    if spec.startswith("docker-archive:"):
        return None, spec
    try:
        ref = parse_reference(spec)
        with client_for(api_host(ref.registry)) as client:
            media_type, data = _manifest(client, ref, ref.reference, ref.digest)
    except RegistryError as exc:
        raise _pull_errors(spec, exc) from exc
    index = _json(data, spec)
    if media_type not in INDEX_TYPES and "manifests" not in index:
        return None, spec
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return index, str(dataclasses.replace(ref, digest=digest))


def base_platforms(
    spec: str, *, store: Store, client_for: ClientFactory
) -> tuple[tuple[str, ...], str]:
    """The platforms the base has images for (its index's, or its one image's), and the
    spec that opens each of them (``open_base``) from that same index."""
    index, pinned = _index(spec, client_for)
    if index is not None:
        return index_platforms(index), pinned
    base = open_base(spec, store=store, architecture="", client_for=client_for)
    return (platform_of({"os": "linux"} | dict(base.config)),), spec
