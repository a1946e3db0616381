"""Where a built image goes: an OCI layout, a docker-archive tarball, or a registry.

A multi-platform image (an :class:`ImageIndex`) goes to a layout or a
registry with every platform's image; a docker-archive holds one image.
Files are written beside their destination and renamed into place at the
end, so a failure leaves no partial output. A push uploads only the blobs
the repository lacks (mounting the base's from its own repository when the
registry offers it) and the manifest last, so a failed push leaves no tag.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from photonpack.errors import ImageError
from photonpack.image.base import OCI_INDEX, OCI_MANIFEST, Blob
from photonpack.image.build import Image
from photonpack.image.index import ImageIndex
from photonpack.image.rootfs import open_uncompressed
from photonpack.oci.client import RegistryClient
from photonpack.oci.reference import Reference

__all__ = ["PushedImage", "push_image", "write_docker_archive", "write_oci_layout"]

_CHUNK = 1 << 20


@contextlib.contextmanager
def _output_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise ImageError(
            f"cannot write {path}: {exc.strerror or exc}; choose a writable place with free space"
        ) from exc


def _blobs(image: Image) -> list[Blob]:
    """The config and the layers, each digest once."""
    unique = {blob.digest: blob for blob in (image.config, *image.layers)}
    return list(unique.values())


def _copy(blob: Blob, out: Path, work: Path | None = None) -> None:
    """Copy the blob to ``out``; one this build made under ``work`` is hard-linked.

    Only those: a link to a store blob or to the base's layout would let the
    output's files change them.
    """
    if work is not None and blob.offset == 0 and blob.path.is_relative_to(work):
        try:
            os.link(blob.path, out)
            return
        except OSError:
            pass  # another filesystem, or links not allowed: copy
    with blob.open() as src, out.open("wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)


def _images(built: Image | ImageIndex) -> tuple[Image, ...]:
    return built.images if isinstance(built, ImageIndex) else (built,)


def write_oci_layout(built: Image | ImageIndex, directory: Path, *, tag: str = "latest") -> None:
    """Write the image (or index) as a new OCI layout directory (``oci:DIR`` for skopeo, podman)."""
    with _output_errors(directory):
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise ImageError(
                f"{directory} already exists and is not empty; remove it or choose another "
                "--oci-layout directory"
            )
        temp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            blobs = temp / "blobs" / "sha256"
            blobs.mkdir(parents=True)
            written: set[str] = set()
            for image in _images(built):
                for blob in _blobs(image):
                    if blob.digest not in written:
                        written.add(blob.digest)
                        _copy(blob, blobs / blob.digest.removeprefix("sha256:"), image.work)
                (blobs / image.digest.removeprefix("sha256:")).write_bytes(image.manifest)
            if isinstance(built, ImageIndex):
                (blobs / built.digest.removeprefix("sha256:")).write_bytes(built.manifest)
            (temp / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
            index = {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_INDEX if isinstance(built, ImageIndex) else OCI_MANIFEST,
                        "digest": built.digest,
                        "size": len(built.manifest),
                        "annotations": {"org.opencontainers.image.ref.name": tag},
                    }
                ],
            }
            (temp / "index.json").write_text(json.dumps(index, sort_keys=True))
            if directory.exists():
                directory.rmdir()
            temp.chmod(0o755)
            temp.rename(directory)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info


def write_docker_archive(image: Image, path: Path, *, tag: str) -> None:
    """Write the image as a ``docker save`` tarball (``podman load`` / ``docker load``).

    Layers go in uncompressed, as ``docker save`` writes them, named by diff_id.
    """
    config_name = f"{image.config.digest.removeprefix('sha256:')}.json"
    names = [f"{diff_id.removeprefix('sha256:')}.tar" for diff_id in image.diff_ids]
    listing = [{"Config": config_name, "RepoTags": [tag], "Layers": names}]
    with _output_errors(path):
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
                data = json.dumps(listing).encode()
                tar.addfile(_member("manifest.json", len(data)), io.BytesIO(data))
                with image.config.open() as config:
                    tar.addfile(_member(config_name, image.config.size), config)
                done: set[str] = set()
                for blob, name, size in zip(image.layers, names, image.tar_sizes, strict=True):
                    if name not in done:
                        done.add(name)
                        with open_uncompressed(blob) as layer:
                            tar.addfile(_member(name, size), layer)
            temp.chmod(0o644)
            temp.replace(path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


@dataclass(frozen=True, kw_only=True)
class PushedImage:
    """What a push did: the manifest digest, and the blobs uploaded, mounted or present."""

    reference: str
    digest: str
    uploaded: tuple[str, ...]
    uploaded_bytes: int
    mounted: tuple[str, ...]
    present: tuple[str, ...]
    total_bytes: int

    def to_dict(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "uploaded": list(self.uploaded),
            "uploaded_bytes": self.uploaded_bytes,
            "mounted": list(self.mounted),
            "present": list(self.present),
            "total_bytes": self.total_bytes,
        }


def push_image(built: Image | ImageIndex, ref: Reference, *, client: RegistryClient) -> PushedImage:
    """Push the image's (or each image's) missing blobs, its manifests, then ``ref``'s."""
    if ref.digest is not None and ref.digest != built.digest:
        raise ImageError(
            f"{ref} names digest {ref.digest}, but the image is {built.digest}; "
            "push to a tag, or to the image's own digest"
        )
    repo = ref.repository
    uploaded: list[str] = []
    mounted: list[str] = []
    present: list[str] = []
    seen: set[str] = set()
    sent = 0
    images = _images(built)
    for image in images:
        source = image.base.source
        mountable = source is not None and source.registry == ref.registry
        base_blobs = {blob.digest for blob in image.base.layers} | {image.base.config_blob.digest}
        for blob in _blobs(image):
            if blob.digest in seen:
                continue
            seen.add(blob.digest)
            if client.has_blob(repo, blob.digest):
                present.append(blob.digest)
                continue
            if (
                mountable
                and source is not None
                and blob.digest in base_blobs
                and source.repository != repo
                and client.mount_blob(repo, blob.digest, source.repository)
            ):
                mounted.append(blob.digest)
                continue
            with blob.open() as stream:
                client.upload_blob(repo, digest=blob.digest, size=blob.size, stream=stream)
            uploaded.append(blob.digest)
            sent += blob.size
    tag = ref.digest or ref.tag or "latest"
    if isinstance(built, ImageIndex):
        for image in images:  # by digest: the index names them so
            client.put_manifest(repo, image.digest, image.manifest, OCI_MANIFEST)
            sent += len(image.manifest)
        client.put_manifest(repo, tag, built.manifest, OCI_INDEX)
    else:
        client.put_manifest(repo, tag, built.manifest, OCI_MANIFEST)
    return PushedImage(
        reference=str(ref),
        digest=built.digest,
        uploaded=tuple(uploaded),
        uploaded_bytes=sent + len(built.manifest),
        mounted=tuple(mounted),
        present=tuple(present),
        total_bytes=built.size,
    )
