"""``push`` and ``pull``: photons through an OCI registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from photonpack._units import format_size
from photonpack.cli._app import cli, detail, info, progress_shown
from photonpack.errors import UsageError

# -- registry: push / pull / list --remote ---------------------------------


def admit_photon(store: Any, source: str | None, name: str | None, digest: str | None) -> Any:
    """ARCHIVE, REF or -n NAME, admitted into ``store`` (see photonpack.admit)."""
    import os

    from photonpack.admit import admit, admit_name, parse_expected

    expected = parse_expected(digest)
    if name is not None:
        return admit_name(name, store, expected=expected)
    assert source is not None
    username = os.environ.get("PHOTONPACK_REGISTRY_USERNAME")
    return admit(
        source,
        store,
        expected=expected,
        clients=lambda registry: _registry_client(registry, username, False, False),
    )


_CA_FILE = "photonpack.ca_file"


def _remember_ca_file(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    # Kept in the context rather than passed as an argument, so every command taking
    # the registry options gets it without a new parameter in its signature.
    if value is not None:
        ctx.meta[_CA_FILE] = value


def _registry_options(func: Any) -> Any:
    """--username / --password-stdin / --insecure / --ca-file, shared by the registry commands."""
    func = click.option(
        "--ca-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        envvar="PHOTONPACK_CA_FILE",
        show_envvar=True,
        expose_value=False,
        callback=_remember_ca_file,
        help="Trust the CA certificates in this PEM file for the registry "
        "(else $PHOTONPACK_CA_FILE; else the system's store, which honours $SSL_CERT_FILE).",
    )(func)
    func = click.option(
        "--insecure",
        is_flag=True,
        help="Allow plain HTTP to a registry that is not on localhost.",
    )(func)
    func = click.option(
        "--password-stdin",
        is_flag=True,
        help="Read the password from standard input (else $PHOTONPACK_REGISTRY_PASSWORD).",
    )(func)
    return click.option(
        "--username",
        "-u",
        envvar="PHOTONPACK_REGISTRY_USERNAME",
        show_envvar=True,
        help="Registry login (else $PHOTONPACK_REGISTRY_USERNAME; else the auth file of "
        "`photonpack login`, podman, skopeo or docker; anonymous without).",
    )(func)


def _registry_client(
    registry: str, username: str | None, password_stdin: bool, insecure: bool
) -> Any:
    return _client(registry, _credentials(username, password_stdin), insecure)


def _client(registry: str, credentials: Any, insecure: bool) -> Any:
    """A RegistryClient with ``credentials`` (else the auth files') and the --ca-file given."""
    from photonpack.oci.client import RegistryClient

    context = click.get_current_context(silent=True)
    ca_file = context.meta.get(_CA_FILE) if context is not None else None
    return RegistryClient(registry, credentials=credentials, insecure=insecure, ca_file=ca_file)


def _credentials(username: str | None, password_stdin: bool) -> Any:
    """The login of --username with --password-stdin or $PHOTONPACK_REGISTRY_PASSWORD, if any."""
    import os
    import sys

    from photonpack.oci.client import Credentials

    password = os.environ.get("PHOTONPACK_REGISTRY_PASSWORD")
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    if username and not password:
        raise UsageError(
            f"a login for {username!r} needs a password: pass --password-stdin or set "
            "PHOTONPACK_REGISTRY_PASSWORD"
        )
    if password and not username:
        raise UsageError(
            "a password was given without a username: pass --username or set "
            "PHOTONPACK_REGISTRY_USERNAME"
        )
    if username and password:
        return Credentials(username=username, password=password)
    return None


def _recent_repositories(store: Any) -> Any:
    from photonpack.oci.mounts import RecentRepositories

    return RecentRepositories(store.root / "oci" / "repositories.json")


def _fetch_referrers(
    client: Any, repository: str, referrers: list[Any], directory: Path
) -> dict[str, list[Path]]:
    """Each referrer's files into ``directory`` (named by their title's last part)."""
    from photonpack.oci.referrers import fetch_referrer

    written: dict[str, list[Path]] = {}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for referrer in referrers:
            for title, data in fetch_referrer(client, repository, referrer):
                path = directory / (Path(title).name or referrer.digest.replace(":", "-"))
                path.write_bytes(data)
                written.setdefault(referrer.digest, []).append(path)
    except OSError as exc:
        raise UsageError(f"cannot write the referrers into {directory}: {exc.strerror}") from exc
    return written


def inspect_remote(ref: str) -> dict[str, Any]:
    """The ``inspect`` report of the photon at ``ref``, with its referrers (blobs not fetched)."""
    from photonpack.oci.reference import parse_reference
    from photonpack.oci.referrers import list_referrers
    from photonpack.registry import fetch_remote_manifest
    from photonpack.summary import inspect_report

    reference = parse_reference(ref)
    with _client(reference.registry, None, False) as client:
        remote = fetch_remote_manifest(reference, client=client)
        referrers = list_referrers(client, reference.repository, remote.manifest_digest)
    return inspect_report(remote.manifest) | {
        "reference": str(reference),
        "manifest_digest": remote.manifest_digest,
        "referrers": [referrer.to_dict() for referrer in referrers],
    }


class _TransferLine:
    """The blob moving now on one progress line (``cli/_progress.py``), only on a terminal."""

    def __init__(self, verb: str) -> None:
        from photonpack.cli._progress import ProgressLine

        self._verb = verb
        self._line = ProgressLine(verb, 0, enabled=progress_shown())
        self._digest = ""

    def __enter__(self) -> _TransferLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self._line.close()

    def __call__(self, transfer: Any) -> None:
        if transfer.digest != self._digest:
            self._digest = transfer.digest
            self._line.retitle(f"{self._verb} {transfer.title}", transfer.total)
        self._line.update(transfer.done)


def _default_ref(registry: str, manifest: Any) -> str:
    """``REGISTRY/NAME:latest``: where push goes when [tool.photonpack] names the registry."""
    return f"{registry.rstrip('/')}/{manifest.name}:latest"


def _blob_details(manifest: Any, result: Any) -> None:
    """With -v: what push did with each blob (the manifest's config first)."""
    uploaded, mounted = set(result.uploaded), set(result.mounted)
    sizes = {manifest.digest: None} | {f"sha256:{h}": n for h, n in manifest.blobs().items()}
    for digest, size in sizes.items():
        what = "uploaded" if digest in uploaded else "mounted" if digest in mounted else "skipped"
        shown = f" ({format_size(size)})" if size is not None else " (photon.json)"
        detail(f"  {what} {digest}{shown}" + (", the registry has it" if what == "skipped" else ""))


@cli.command()
@click.argument("args", nargs=-1, metavar="ARCHIVE [REF] | -n NAME [REF]")
@click.option("-n", "--name", help="Push the photon of this name from the local store.")
@click.option(
    "--digest",
    metavar="sha256:HEX",
    help="Push only if the photon is this digest (as build printed it).",
)
@click.option(
    "--mount-from",
    "mount_from",
    multiple=True,
    metavar="REPO",
    help="A repository of the same registry to link shared blobs from instead of uploading "
    "them (repeatable; the repositories photonpack used lately are tried too).",
)
@click.option(
    "--sbom",
    "with_sbom",
    is_flag=True,
    help="Also attach the photon's SBOM as an OCI 1.1 referrer of it.",
)
@click.option(
    "--sbom-format",
    type=click.Choice(["cyclonedx", "spdx"]),
    default="cyclonedx",
    show_default=True,
    help="The format of the SBOM --sbom attaches.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_registry_options
def push(
    args: tuple[str, ...],
    name: str | None,
    digest: str | None,
    mount_from: tuple[str, ...],
    with_sbom: bool,
    sbom_format: str,
    as_json: bool,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Upload a .photon (or -n NAME from the store) to REF (host[:port]/repo[:tag]).

    Without REF: to REGISTRY/NAME:latest, REGISTRY from [tool.photonpack]
    registry in ./pyproject.toml.

    Only the blobs the registry lacks are uploaded; the manifest goes last.
    Blobs another repository of the registry holds are mounted, not uploaded.
    Prints the OCI manifest digest.
    """
    from photonpack.admit import Pushed, is_archive_path, parse_expected, push_archive
    from photonpack.oci.reference import parse_reference
    from photonpack.registry import push_photon
    from photonpack.store import Store

    photons = 0 if name else 1
    if len(args) not in (photons, photons + 1):
        raise click.UsageError("push takes ARCHIVE REF, or -n NAME REF")
    default_registry = None
    if len(args) == photons:
        from photonpack.cli.defaults import read_defaults

        default_registry = read_defaults(Path.cwd()).registry
        if default_registry is None:
            raise click.UsageError(
                "push takes ARCHIVE REF, or -n NAME REF (REF may be left out when "
                "./pyproject.toml [tool.photonpack] or ./photonpack.toml sets registry)"
            )
    store = Store()
    source = None if name else args[0]
    if source is not None and not is_archive_path(source):
        raise UsageError(f"{source} is not a .photon file; push takes ARCHIVE REF, or -n NAME REF")
    # A .photon file is read once, while it is pushed (push_archive); a name is in the store.
    manifest = None if source is not None else admit_photon(store, None, name, digest)
    if default_registry is None:
        target = args[-1]
    else:
        from photonpack.archive import read_manifest

        named = manifest or read_manifest(Path(str(source)))
        target = _default_ref(default_registry, named)
    reference = parse_reference(target)
    recent = _recent_repositories(store)
    sources = [*mount_from, *recent.get(reference.registry)]
    fmt = sbom_format if with_sbom else None
    client = _registry_client(reference.registry, username, password_stdin, insecure)
    with client, _TransferLine("pushing") as line:
        if manifest is None:
            pushed = push_archive(
                Path(str(source)), reference, store, client=client,
                expected=parse_expected(digest), mount_from=sources, progress=line, sbom=fmt,
            )  # fmt: skip
        else:
            result = push_photon(
                manifest, store.blob_path, reference, client=client, progress=line,
                mount_from=sources,
            )  # fmt: skip
            pushed = Pushed.attach(manifest, store.blob_path, result, client=client, sbom=fmt)
    manifest, result, attached = pushed.manifest, pushed.result, pushed.attached
    recent.add(reference.registry, reference.repository)
    _blob_details(manifest, result)
    mounted = f", mounted {len(result.mounted)}" if result.mounted else ""
    info(
        f"pushed {reference}: uploaded {len(result.uploaded)} of {result.total_blobs} blobs "
        f"({format_size(result.uploaded_bytes)} of {format_size(result.total_bytes)}){mounted}",
    )
    if attached is not None:
        info(
            f"attached the SBOM ({attached.referrer.artifact_type}) as "
            f"{attached.referrer.digest}, indexed by the {attached.indexed_by}",
        )
    if as_json:
        import json

        report = {
            "reference": str(reference),
            "manifest_digest": result.manifest_digest,
            "photon_digest": manifest.digest,
            "total_blobs": result.total_blobs,
            "uploaded_blobs": len(result.uploaded),
            "mounted_blobs": len(result.mounted),
            "uploaded_bytes": result.uploaded_bytes,
            "total_bytes": result.total_bytes,
            "sbom": None
            if attached is None
            else {
                "artifact_type": attached.referrer.artifact_type,
                "digest": attached.referrer.digest,
            },
        }
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo(result.manifest_digest)


@cli.command()
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the archive (default: <name>.photon in the current directory).",
)
@click.option(
    "--referrers",
    "referrers_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also fetch the artifacts attached to REF (its SBOM, ...) into this directory.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_registry_options
def pull(
    ref: str,
    output: Path | None,
    referrers_dir: Path | None,
    as_json: bool,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Download REF (host[:port]/repo:tag or repo@sha256:...) and rebuild its .photon.

    Every byte is verified against its digest before the file is written.
    The artifacts attached to it (referrers) are listed, and fetched with --referrers.
    Prints the photon digest (the one `build` printed).
    """
    from photonpack.admit import pull_reference
    from photonpack.oci.reference import parse_reference
    from photonpack.oci.referrers import list_referrers
    from photonpack.store import Store

    reference = parse_reference(ref)
    if output is not None and not output.absolute().parent.is_dir():
        raise UsageError(
            f"cannot write {output}: the directory {output.absolute().parent} does not exist; "
            "create it or choose another -o"
        )
    store = Store()

    def destination(manifest: Any) -> Path:
        return (output or Path.cwd() / f"{manifest.name}.photon").absolute()

    with _registry_client(reference.registry, username, password_stdin, insecure) as client:
        # Into the store (only the blobs it lacks) and the archive, written as they arrive.
        with _TransferLine("pulling") as line:
            pulled = pull_reference(
                reference,
                store,
                client=client,
                progress=line,
                output=destination,
            )
            manifest = pulled.manifest
            path = destination(manifest)
        referrers = list_referrers(client, reference.repository, pulled.manifest_digest)
        fetched = (
            _fetch_referrers(client, reference.repository, referrers, referrers_dir)
            if referrers_dir is not None
            else {}
        )
    _recent_repositories(store).add(reference.registry, reference.repository)
    moved = pulled.to_dict()
    reused = moved["total_blobs"] - moved["downloaded_blobs"]
    info(
        f"pulled {reference} to {path}: downloaded {moved['downloaded_blobs']} of "
        f"{moved['total_blobs']} blobs ({format_size(moved['downloaded_bytes'])} of "
        f"{format_size(moved['total_bytes'])})"
        + (f"; {reused} were already in the store" if reused else "")
    )
    for referrer in referrers:
        into = "".join(f" -> {path}" for path in fetched.get(referrer.digest, []))
        info(f"referrer {referrer.artifact_type} {referrer.digest}{into}")
    if as_json:
        import json

        report = {
            "reference": str(reference),
            "path": str(path),
            "photon_digest": manifest.digest,
            "manifest_digest": pulled.manifest_digest,
            **moved,
            "referrers": [
                {
                    "artifact_type": r.artifact_type,
                    "digest": r.digest,
                    "files": [str(path) for path in fetched.get(r.digest, [])],
                }
                for r in referrers
            ],
        }
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    click.echo(manifest.digest)
