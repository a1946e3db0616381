"""A built image into podman's storage, paying only for the layers podman does not hold yet.

``skopeo copy oci:DIR containers-storage:REPO:latest`` asks the storage for
each layer before reading it, so the base's layers (tens of MB, gzip) are
neither decompressed nor written again once any image on that base was
loaded: a changed photon costs its own small layers only. The layout it
reads is made of links to the blobs ``build_image`` left (no copy), and the
manifest goes in as built (``--preserve-digests``), so the pinned reference
is the digest ``photonpack image`` computes. Without skopeo the layout is
streamed to ``podman load`` as an oci-archive, which unpacks every blob first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from photonpack.deploy.errors import DeployError
from photonpack.deploy.podmancli import PodmanCli, last_line
from photonpack.image.base import OCI_INDEX, OCI_MANIFEST, Blob
from photonpack.image.build import Image

__all__ = ["link_layout", "load_image"]

SKOPEO = "skopeo"


def _place(blob: Blob, out: Path) -> None:
    """``out`` holds ``blob``: a hard link, else a symbolic one, else a copy of its bytes."""
    if blob.offset == 0 and blob.path.stat().st_size == blob.size:
        try:
            os.link(blob.path, out)
            return
        except OSError:
            pass  # another filesystem
        out.symlink_to(blob.path.resolve())
        return
    with blob.open() as src, out.open("wb") as dst:  # a member of a docker-archive base
        shutil.copyfileobj(src, dst, 1 << 20)


def link_layout(image: Image, directory: Path, *, tag: str) -> None:
    """An OCI layout of ``image`` in the new ``directory``, its blobs linked, not copied."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in {b.digest: b for b in (image.config, *image.layers)}.values():
        _place(blob, blobs / blob.digest.removeprefix("sha256:"))
    (blobs / image.digest.removeprefix("sha256:")).write_bytes(image.manifest)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": image.digest,
        "size": len(image.manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    (directory / "index.json").write_text(json.dumps(index, sort_keys=True))


def load_image(cli: PodmanCli, image: Image, repository: str, work: Path) -> str:
    """Put ``image`` in podman's storage as ``REPOSITORY:latest``; the pinned reference.

    ``work`` is an empty directory on the blobs' filesystem (the links' place).
    """
    tag = f"{repository}:latest"
    layout = work / "oci"
    try:
        link_layout(image, layout, tag=tag)
    except OSError as exc:
        raise DeployError(
            f"cannot write the image's layout under {work}: {exc.strerror or exc}"
        ) from exc
    if shutil.which(SKOPEO) is not None:
        _skopeo_copy(layout, tag)
    else:
        _podman_load(cli, layout)
    pinned = f"{repository}@{image.digest}"
    if cli.run("image", "exists", pinned).returncode != 0:
        raise DeployError(f"loading the photon's image did not give {pinned} in podman's storage")
    return pinned


def _skopeo_copy(layout: Path, tag: str) -> None:
    argv = [SKOPEO, "copy", "--quiet", "--preserve-digests",
            f"oci:{layout}:{tag}", f"containers-storage:{tag}"]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise DeployError("skopeo copy of the photon's image did not finish within 600 s") from None
    if done.returncode != 0:
        raise DeployError(
            f"skopeo copy of the photon's image into podman's storage failed: "
            f"{last_line(done.stderr)}"
        )


def _podman_load(cli: PodmanCli, layout: Path) -> None:
    """The layout as an oci-archive on ``podman load``'s stdin (it names the image by ref.name)."""
    process = subprocess.Popen(
        [cli.executable, "load", "-q"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    try:
        with tarfile.open(fileobj=process.stdin, mode="w|", dereference=True) as tar:
            for path in sorted(layout.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    except BrokenPipeError:
        pass  # podman stopped reading: its stderr says why
    _, stderr = process.communicate(timeout=600)  # closes stdin: the end of the archive
    if process.returncode != 0:
        raise DeployError(f"podman load of the photon's image failed: {last_line(stderr)}")
