"""Base images on disk: an OCI layout directory or a docker-archive tarball.

Either becomes a :class:`BaseImage`: its manifest digest (the base's
identity, recorded in the image), its parsed config, and its layers as
:class:`Blob` regions of local files. The manifest and config are hashed here;
the layers are hashed when their contents are read (``rootfs.py``), before
any of it is used. Registry bases are in ``pull.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from photonpack._json import load_json_object
from photonpack.errors import ImageError, IntegrityError
from photonpack.image.platforms import platform_of
from photonpack.oci.reference import Reference

__all__ = [
    "CONFIG_TYPE",
    "INDEX_TYPES",
    "LAYER_TYPES",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "BaseImage",
    "Blob",
    "canonical",
    "choose_platform",
    "layout_index",
    "parse_manifest",
    "read_docker_archive",
    "read_oci_layout",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
# Layer media types a base may use, and the OCI type (same bytes) the image gives them.
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar+gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": (
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ),
    "application/vnd.oci.image.layer.v1.tar+zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.v1.tar": "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
}
_MAX_JSON = 4 * 1024 * 1024


def canonical(value: object) -> bytes:
    """The JSON bytes photonpack writes for configs and manifests: sorted, compact."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, kw_only=True)
class Blob:
    """Content named by its digest: ``size`` bytes of ``path`` from ``offset``."""

    media_type: str
    digest: str
    size: int
    path: Path
    offset: int = 0

    def open(self) -> BinaryIO:
        """A reader of exactly this blob's bytes."""
        handle = self.path.open("rb")
        handle.seek(self.offset)
        return _Region(handle, self.size)  # type: ignore[return-value]

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class _Region(io.RawIOBase):
    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self._left]
        count = self._handle.readinto(view)  # type: ignore[attr-defined]
        self._left -= count
        return int(count)

    def close(self) -> None:
        self._handle.close()
        super().close()


@dataclass(frozen=True, kw_only=True)
class BaseImage:
    """A base image: where it came from, its manifest digest, config, and layers."""

    name: str  # as the user gave it: a reference, oci:DIR or docker-archive:FILE
    digest: str  # the manifest's digest: the base's identity
    config: Mapping[str, Any]
    config_blob: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]
    source: Reference | None = None  # the registry repository it was pulled from

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture", ""))


def choose_platform(index: Mapping[str, Any], architecture: str, where: str) -> dict[str, Any]:
    """The descriptor of the linux/``architecture`` manifest in an image index.

    ``architecture`` may name a variant (``arm/v7``): then only that variant's image
    is taken, so an arm/v6 base is never chosen for armv7l wheels, nor the reverse.
    """
    arch, _, variant = architecture.partition("/")
    entries = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    found = [
        m
        for m in entries
        if (p := m.get("platform") or {}).get("os") == "linux"
        and p.get("architecture") == arch
        and (not variant or platform_of(p) == f"linux/{architecture}")
    ]
    if not found:
        have = sorted(platform_of(p) for m in entries if (p := m.get("platform") or {}))
        raise ImageError(
            f"{where} has no image for linux/{architecture} (it has: {', '.join(have) or 'none'}); "
            "choose a base built for the archive's platform"
        )
    return dict(found[0])


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        return load_json_object(data)
    except ValueError as exc:
        raise ImageError(f"{what} is {exc}; the base image is damaged") from exc


def _check_digest(data: bytes, digest: str, what: str) -> None:
    found = "sha256:" + hashlib.sha256(data).hexdigest()
    if found != digest:
        raise IntegrityError(
            f"{what}: expected {digest}, found {found}; the base image was altered, copy it again"
        )


def parse_manifest(
    data: bytes, where: str, blob: Any
) -> tuple[dict[str, Any], Blob, tuple[Blob, ...]]:
    """The config (hashed) and layer blobs of an image manifest; ``blob(descriptor)`` locates."""
    manifest = _json(data, f"the manifest of {where}")
    try:
        config_desc = manifest["config"]
        config_blob = blob(config_desc, CONFIG_TYPE)
        layers = []
        for desc in manifest["layers"]:
            kind = LAYER_TYPES.get(desc.get("mediaType", ""))
            if kind is None:
                raise ImageError(
                    f"{where} has a layer of type {desc.get('mediaType')!r}, which photonpack "
                    f"cannot read (it reads {', '.join(sorted(set(LAYER_TYPES.values())))})"
                )
            layers.append(blob(desc, kind))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ImageError(
            f"the manifest of {where} lacks a config or layers; the base image is damaged"
        ) from exc
    with config_blob.open() as handle:
        raw = handle.read(_MAX_JSON + 1)
    _check_digest(raw, config_blob.digest, f"the config of {where}")
    return _json(raw, f"the config of {where}"), config_blob, tuple(layers)


def _diff_ids(config: Mapping[str, Any], layers: Sequence[Blob], where: str) -> tuple[str, ...]:
    diff_ids = tuple((config.get("rootfs") or {}).get("diff_ids") or ())
    if len(diff_ids) != len(layers):
        raise ImageError(
            f"the config of {where} lists {len(diff_ids)} layer digests for {len(layers)} "
            "layers; the base image is damaged"
        )
    return diff_ids


def _layout_top(directory: Path, tag: str | None) -> tuple[str, dict[str, Any]]:
    """The name of the layout (as ``--base`` spells it) and its index.json entry for ``tag``.

    An index.json listing one image per platform (no names, each with a
    ``platform``) is itself the image's index: it is returned as one entry.
    """
    where = f"oci:{directory}" + (f":{tag}" if tag else "")
    try:
        index = _json((directory / "index.json").read_bytes(), f"{where}/index.json")
    except OSError as exc:
        raise ImageError(
            f"cannot read {directory / 'index.json'} ({exc.strerror or exc}): --base oci:DIR "
            "expects an OCI layout directory, as `skopeo copy ... oci:DIR` writes"
        ) from exc
    entries = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    if tag is not None:
        entries = [m for m in entries if (m.get("annotations") or {}).get(_REF_NAME) in (tag, None)]
    if len(entries) > 1 and all(
        m.get("platform") and _REF_NAME not in (m.get("annotations") or {}) for m in entries
    ):
        return where, {"mediaType": OCI_INDEX, "index": {"manifests": entries}}
    if len(entries) != 1:
        names = sorted(str((m.get("annotations") or {}).get(_REF_NAME)) for m in entries)
        raise ImageError(
            f"{where} holds {len(entries)} images ({', '.join(names) or 'none'}); "
            "name one with --base oci:DIR:TAG"
        )
    return where, entries[0]


def _layout_blob(directory: Path) -> Any:
    def blob(desc: Mapping[str, Any], media_type: str) -> Blob:
        digest = str(desc["digest"])
        algorithm, _, hex_ = digest.partition(":")
        return Blob(
            media_type=media_type,
            digest=digest,
            size=int(desc["size"]),
            path=directory / "blobs" / algorithm / hex_,
        )

    return blob


def _layout_json(directory: Path, desc: Mapping[str, Any], where: str) -> bytes:
    if "index" in desc:  # index.json itself, as _layout_top made it
        return canonical(desc["index"])
    return _read_blob(_layout_blob(directory)(desc, str(desc.get("mediaType"))), where)


def layout_index(directory: Path, *, tag: str | None) -> dict[str, Any] | None:
    """The image index of an OCI layout's image (a multi-platform base), or None."""
    where, desc = _layout_top(directory, tag)
    for _ in range(3):  # an index of platforms, maybe nested once
        data = _layout_json(directory, desc, where)
        if desc.get("mediaType") not in INDEX_TYPES:
            return None
        index = _json(data, f"an index of {where}")
        entries = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
        if any(m.get("platform") for m in entries) or len(entries) != 1:
            return index
        desc = entries[0]
    return None


def read_oci_layout(directory: Path, *, tag: str | None, architecture: str) -> BaseImage:
    """The image of an OCI layout (the one it holds, or the one named ``tag``)."""
    where, desc = _layout_top(directory, tag)
    blob = _layout_blob(directory)
    for _ in range(3):  # an index of platforms, maybe nested once
        data = _layout_json(directory, desc, where)
        if desc.get("mediaType") not in INDEX_TYPES:
            break
        desc = choose_platform(_json(data, f"an index of {where}"), architecture, where)
    config, config_blob, layers = parse_manifest(data, where, blob)
    return BaseImage(
        name=where,
        digest=str(desc["digest"]),
        config=config,
        config_blob=config_blob,
        layers=layers,
        diff_ids=_diff_ids(config, layers, where),
    )


_REF_NAME = "org.opencontainers.image.ref.name"


def _read_blob(blob: Blob, where: str) -> bytes:
    if blob.size > _MAX_JSON:
        raise ImageError(f"{where}: a manifest of {blob.size} bytes is too big to be one")
    try:
        with blob.open() as handle:
            data = handle.read(blob.size + 1)
    except OSError as exc:
        raise ImageError(
            f"{where} lacks blob {blob.digest} ({exc.strerror or exc}); copy the image again"
        ) from exc
    _check_digest(data, blob.digest, f"{where} blob {blob.digest}")
    return data


def read_docker_archive(path: Path) -> BaseImage:
    """The image of a ``docker save`` / ``podman save`` tarball (its only image)."""
    where = f"docker-archive:{path}"
    try:
        with tarfile.open(path, "r:") as tar:
            members = {str(PurePosixPath(m.name)): m for m in tar.getmembers()}
            listing = _member_bytes(tar, members, "manifest.json", where)
            images = json.loads(listing)
            if not isinstance(images, list) or len(images) != 1:
                raise ImageError(
                    f"{where} holds {len(images) if isinstance(images, list) else 'no'} images; "
                    "save exactly one image into it"
                )
            config_name = str(images[0]["Config"])
            config_bytes = _member_bytes(tar, members, config_name, where)
            layer_members = [_regular(members, str(name), where) for name in images[0]["Layers"]]
    except (OSError, tarfile.TarError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(
            f"cannot read {where} ({exc}): --base docker-archive:FILE expects the tarball that "
            "`podman save` or `docker save` writes"
        ) from exc
    config = _json(config_bytes, f"the config of {where}")
    diff_ids = tuple((config.get("rootfs") or {}).get("diff_ids") or ())
    if len(diff_ids) != len(layer_members):
        raise ImageError(f"the config of {where} does not list its layers; the file is damaged")
    # The layers are uncompressed tars: their digests are their diff_ids, checked when read.
    layers = tuple(
        Blob(
            media_type="application/vnd.oci.image.layer.v1.tar",
            digest=diff_id,
            size=member.size,
            path=path,
            offset=member.offset_data,
        )
        for diff_id, member in zip(diff_ids, layer_members, strict=True)
    )
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    config_blob = Blob(
        media_type=CONFIG_TYPE,
        digest=config_digest,
        size=len(config_bytes),
        path=path,
        offset=members[str(PurePosixPath(config_name))].offset_data,
    )
    # No manifest travels in the file: the base's identity is that of the OCI manifest
    # listing exactly these blobs, which depends only on the image's content.
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    return BaseImage(
        name=where,
        digest="sha256:" + hashlib.sha256(canonical(manifest)).hexdigest(),
        config=config,
        config_blob=config_blob,
        layers=layers,
        diff_ids=diff_ids,
    )


def _regular(members: Mapping[str, tarfile.TarInfo], name: str, where: str) -> tarfile.TarInfo:
    member = members.get(str(PurePosixPath(name)))
    for _ in range(8):  # `docker save` links legacy layer paths to blobs
        if member is None or not member.issym():
            break
        target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
        member = members.get(target)
    if member is None or not member.isfile():
        raise ImageError(f"{where} lists {name} but does not hold it as a file; it is damaged")
    return member


def _member_bytes(
    tar: tarfile.TarFile, members: Mapping[str, tarfile.TarInfo], name: str, where: str
) -> bytes:
    member = _regular(members, name, where)
    if member.size > _MAX_JSON:
        raise ImageError(f"{where}: {name} is {member.size} bytes, too big for what it should be")
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()
