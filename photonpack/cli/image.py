"""``image``: a verified photon on a base image -> an OCI image (layout, tarball, registry)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import click

from photonpack._units import format_size
from photonpack.cli._app import cli, info
from photonpack.cli.registry import _registry_client, _registry_options, admit_photon
from photonpack.errors import PhotonpackError, UsageError

_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


def _epoch() -> int:
    text = os.environ.get("SOURCE_DATE_EPOCH", "0").strip() or "0"
    if not text.isdigit():
        raise PhotonpackError(
            f"SOURCE_DATE_EPOCH must be a whole number of seconds, found {text!r}; "
            "unset it or set it to e.g. $(git log -1 --format=%ct)"
        )
    return int(text)


def _architecture(targets: tuple[str, ...]) -> str:
    """The OCI architecture of the archive's first Linux target (the host's without one)."""
    for target in targets:
        for arch, oci in _ARCHITECTURES.items():
            if "linux" in target and target.endswith(f"_{arch}"):
                return oci
    return _ARCHITECTURES.get(os.uname().machine, os.uname().machine)


@cli.command()
@click.argument("archive", required=False)
@click.option("-n", "--name", help="Make the image of the photon of this name in the store.")
@click.option(
    "--base",
    metavar="REF | oci:DIR[:TAG] | docker-archive:FILE",
    help="The base image (default: the photon's `image`, else python:3.X-slim-bookworm).",
)
@click.option("--push", "push_ref", metavar="REF", help="Push the image to host[:port]/repo[:tag].")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a docker-archive tarball (podman load / docker load).",
)
@click.option(
    "--oci-layout",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write an OCI layout directory (skopeo / podman: oci:DIR).",
)
@click.option(
    "--digest",
    metavar="sha256:HEX",
    help="Build only if the photon is this digest (as build printed it).",
)
@click.option(
    "--compression",
    type=click.Choice(["gzip", "zstd"]),
    default="gzip",
    show_default=True,
    help="How the added layers are compressed (zstd: smaller, faster to unpack).",
)
@click.option(
    "--skip-system-check",
    is_flag=True,
    help="Do not refuse a base lacking system_dependency or shared libraries (libraries warn).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@_registry_options
def image(
    archive: str | None,
    name: str | None,
    base: str | None,
    push_ref: str | None,
    output: Path | None,
    oci_layout: Path | None,
    digest: str | None,
    compression: Literal["gzip", "zstd"],
    skip_system_check: bool,
    as_json: bool,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Make an OCI image of a photon: ARCHIVE, -n NAME, or a registry REF.

    No daemon, no pip, no network but for a registry base or --push: the
    environment is installed from the archive's verified wheels. The same
    photon on the same base digest gives the same image digest. Prints the
    image's manifest digest.
    """
    from photonpack.image import (
        ImageOptions,
        build_image,
        default_base,
        open_base,
        push_image,
        write_docker_archive,
        write_oci_layout,
    )
    from photonpack.oci.reference import parse_reference
    from photonpack.store import Store

    if (archive is None) == (name is None):
        raise UsageError("photonpack image needs exactly one photon: ARCHIVE, REF or -n NAME")
    if push_ref is None and output is None and oci_layout is None:
        raise UsageError(
            "photonpack image needs somewhere to put the image: --push REF, -o FILE.tar "
            "or --oci-layout DIR"
        )
    target_ref = parse_reference(push_ref) if push_ref else None
    options = ImageOptions(
        epoch=_epoch(), check_system=not skip_system_check, compression=compression
    )
    store = Store()
    manifest = admit_photon(store, archive, name, digest)
    spec = base or manifest.photon.image or default_base(list(manifest.targets))

    def client_for(registry: str) -> Any:
        return _registry_client(registry, username, password_stdin, insecure)

    base_image = open_base(
        spec, store=store, architecture=_architecture(manifest.targets), client_for=client_for
    )
    info(f"base {spec} {base_image.digest}")
    with store.temp_dir("image-") as work:
        built = build_image(store, manifest, base_image, work, options)
        for warning in built.warnings:
            click.echo(f"warning: {warning}", err=True)
        result: dict[str, Any] = {
            "digest": built.digest,
            "photon": {"name": manifest.name, "digest": manifest.digest},
            "base": {"name": spec, "digest": base_image.digest},
            "target": str(built.target),
            "python": built.python.version,
            "layers": len(built.layers),
            "added_layers": built.added,
            "compression": compression,
            "size": built.size,
            "warnings": list(built.warnings),
        }
        if oci_layout is not None:
            write_oci_layout(built, oci_layout)
            result["oci_layout"] = str(oci_layout)
            info(f"wrote {oci_layout} (oci:{oci_layout}:latest)")
        if output is not None:
            write_docker_archive(built, output, tag=f"localhost/{manifest.name}:latest")
            result["output"] = str(output)
            info(f"wrote {output} (podman load -i {output})")
        if target_ref is not None:
            with client_for(target_ref.registry) as client:
                pushed = push_image(built, target_ref, client=client)
            result["push"] = pushed.to_dict()
            info(
                f"pushed {target_ref}: uploaded {len(pushed.uploaded)} blobs "
                f"({format_size(pushed.uploaded_bytes)} of {format_size(pushed.total_bytes)}), "
                f"mounted {len(pushed.mounted)}, already there {len(pushed.present)}",
            )
    info(
        f"image {built.digest} of {manifest.name} {manifest.digest}: {len(built.layers)} layers "
        f"({built.added} added to the base), {format_size(built.size)}",
    )
    click.echo(json.dumps(result, indent=2, sort_keys=True) if as_json else built.digest)
