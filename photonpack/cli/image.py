"""``image``: a verified photon on a base image -> an OCI image (layout, tarball, registry)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from photonpack._units import format_size
from photonpack.cli._app import cli, info, progress_shown
from photonpack.cli.registry import _registry_client, _registry_options, admit_photon
from photonpack.errors import PhotonpackError, UsageError


def _image_facts(built: Any) -> dict[str, Any]:
    """What the report says about one platform's image."""
    from photonpack.image.platforms import platform_of

    return {
        "platform": platform_of(built.platform),
        "digest": built.digest,
        "base_digest": built.base.digest,
        "target": str(built.target),
        "python": built.python.version,
        "layers": len(built.layers),
        "added_layers": built.added,
        "size": built.size,
    }


def _bases(
    spec: str, platforms: tuple[str, ...] | None, manifest: Any, store: Any, client_for: Any
) -> list[Any]:
    """The base image of each platform asked for (the archive's first target's by default)."""
    from photonpack.image import archive_architecture, base_platforms, check_platforms, open_base
    from photonpack.image.platforms import architecture_of

    if platforms is None:
        architectures = [archive_architecture(manifest.targets)]
    else:
        has, pinned = base_platforms(spec, store=store, client_for=client_for)
        check_platforms(platforms, base=spec, base_has=has, targets=manifest.targets)
        architectures = [architecture_of(platform) for platform in platforms]
        spec = pinned  # each platform from the index just listed
    return [
        open_base(spec, store=store, architecture=arch, client_for=client_for)
        for arch in architectures
    ]


def _counter(progress: Any, label: str, total: int) -> Callable[[int], None]:
    """A stage of ``progress`` (``cli/_progress.py``): called with each count of bytes done."""
    progress.retitle(label, total)
    done = 0

    def count(size: int) -> None:
        nonlocal done
        done += size
        progress.update(done)

    return count


def _admitted(
    store: Any,
    archive: str | None,
    name: str | None,
    digest: str | None,
    base: str | None,
    platforms: tuple[str, ...] | None,
    client_for: Any,
    progress: Any,
) -> tuple[Any, str, list[Any], list[Any]]:
    """The admitted photon, the base's name, each platform's base and its tree if read yet.

    With --base and an archive file, the bases are read while the archive is imported
    (both mostly inflating and hashing, in C): the archive's first member, its manifest
    not verified yet, only says which platform to read. Were the verified manifest's
    targets different, the bases are opened again from it.
    """
    from concurrent.futures import ThreadPoolExecutor

    from photonpack.admit import is_archive_path
    from photonpack.archive import read_manifest
    from photonpack.image import default_base
    from photonpack.image.rootfs import read_rootfs

    early = None
    if base is not None and archive is not None and is_archive_path(archive):
        with contextlib.suppress(PhotonpackError, OSError):  # admission says what is wrong
            early = read_manifest(Path(archive))
    if base is None or early is None:
        manifest = admit_photon(store, archive, name, digest)
        spec = base or manifest.photon.image or default_base(list(manifest.targets))
        bases = _bases(spec, platforms, manifest, store, client_for)
        return manifest, spec, bases, [None] * len(bases)

    def read(spec: str, described: Any) -> tuple[list[Any], list[Any]]:
        bases, trees = _bases(spec, platforms, described, store, client_for), []
        for one in bases:
            total = sum(blob.size for blob in one.layers)
            trees.append(read_rootfs(one, _counter(progress, f"reading {one.name}", total)))
        return bases, trees

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="photonpack-base") as side:
        reading = side.submit(read, base, early)
        manifest = admit_photon(store, archive, name, digest)
        bases, trees = reading.result()
    if tuple(manifest.targets) != tuple(early.targets):
        bases = _bases(base, platforms, manifest, store, client_for)
        trees = [None] * len(bases)
    return manifest, base, bases, trees


def _report(
    built: Any,
    manifest: Any,
    spec: str,
    facts: list[dict[str, Any]],
    compression: str,
    warnings: list[str],
) -> dict[str, Any]:
    """The --json report: one image's facts at the top, or each platform's in a list."""
    result: dict[str, Any] = {
        "digest": built.digest,
        "photon": {"name": manifest.name, "digest": manifest.digest},
        "compression": compression,
        "size": built.size,
        "warnings": warnings,
    }
    if len(facts) > 1:
        return result | {"base": {"name": spec}, "platforms": facts}
    one = facts[0]
    return result | {
        "base": {"name": spec, "digest": one["base_digest"]},
        **{key: one[key] for key in ("platform", "target", "python", "layers", "added_layers")},
    }


def _summary(digest: str, manifest: Any, facts: list[dict[str, Any]]) -> None:
    for fact in facts:
        on = f" for {fact['platform']}" if len(facts) > 1 else ""
        info(
            f"image {fact['digest']}{on} of {manifest.name} {manifest.digest}: {fact['layers']} "
            f"layers ({fact['added_layers']} added to the base), {format_size(fact['size'])}",
        )
    if len(facts) > 1:
        info(f"index {digest} over {len(facts)} platforms")


@cli.command()
@click.argument("archive", required=False)
@click.option("-n", "--name", help="Make the image of the photon of this name in the store.")
@click.option(
    "--base",
    metavar="REF | oci:DIR[:TAG] | docker-archive:FILE",
    help="The base image (default: the photon's `image`, else python:3.X-slim-bookworm).",
)
@click.option(
    "--platform",
    "platform_text",
    metavar="linux/ARCH[,linux/ARCH...]",
    help="Build for these platforms: one image each and an OCI index over them "
    "(default: the platform of the archive's first target).",
)
@click.option("--push", "push_ref", metavar="REF", help="Push the image to host[:port]/repo[:tag].")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a docker-archive tarball (podman load / docker load); one platform only.",
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
    platform_text: str | None,
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
    image's manifest digest (the index's, for several platforms).
    """
    from photonpack.cli._progress import ProgressLine
    from photonpack.image import (
        ImageOptions,
        build_image,
        image_index,
        parse_platforms,
        push_image,
        source_date_epoch,
        write_docker_archive,
        write_oci_layout,
    )
    from photonpack.image.platforms import platform_of
    from photonpack.image.scratch import scratch_dir
    from photonpack.oci.reference import parse_reference
    from photonpack.store import Store

    if (archive is None) == (name is None):
        raise UsageError("photonpack image needs exactly one photon: ARCHIVE, REF or -n NAME")
    if push_ref is None and output is None and oci_layout is None:
        raise UsageError(
            "photonpack image needs somewhere to put the image: --push REF, -o FILE.tar "
            "or --oci-layout DIR"
        )
    platforms = parse_platforms(platform_text) if platform_text is not None else None
    if output is not None and platforms is not None and len(platforms) > 1:
        raise UsageError(
            f"-o {output}: a docker-archive holds one image, not one per platform "
            f"({', '.join(platforms)}); write --oci-layout DIR or --push REF, or pass "
            "one --platform"
        )
    target_ref = parse_reference(push_ref) if push_ref else None
    line = ProgressLine("reading the base", 0, enabled=progress_shown())
    options = ImageOptions(
        epoch=source_date_epoch(),
        check_system=not skip_system_check,
        compression=compression,
        progress=line,
    )
    store = Store()

    def client_for(registry: str) -> Any:
        return _registry_client(registry, username, password_stdin, insecure)

    manifest, spec, bases, trees = _admitted(
        store, archive, name, digest, base, platforms, client_for, line
    )
    line.close()  # the base read so far: erased before the base is named
    for base_image in bases:
        described = {"os": "linux"} | dict(base_image.config)
        where = "" if len(bases) == 1 else f" {platform_of(described)}"
        info(f"base {spec}{where} {base_image.digest}")
    with scratch_dir(store, "image-") as work:  # removed after the command has answered
        images = []
        with line:  # one line for every stage of every platform, erased before the report
            for number, base_image in enumerate(bases):
                (work / str(number)).mkdir()
                folder, tree = work / str(number), trees[number]
                images.append(
                    build_image(store, manifest, base_image, folder, options, rootfs=tree)
                )
        built: Any = images[0] if len(images) == 1 else image_index(images)
        warnings = list(dict.fromkeys(w for one in images for w in one.warnings))
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        facts = [_image_facts(one) for one in images]
        result = _report(built, manifest, spec, facts, compression, warnings)
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
    _summary(built.digest, manifest, facts)
    click.echo(json.dumps(result, indent=2, sort_keys=True) if as_json else built.digest)
