"""``push`` and ``pull``: photons through an OCI registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from photonpack._units import format_size
from photonpack.cli._app import cli
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


def _registry_options(func: Any) -> Any:
    """--username / --password-stdin / --insecure, shared by the registry commands."""
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
        help="Registry login (else $PHOTONPACK_REGISTRY_USERNAME; anonymous without).",
    )(func)


def _registry_client(
    registry: str, username: str | None, password_stdin: bool, insecure: bool
) -> Any:
    import os
    import sys

    from photonpack.oci.client import Credentials, RegistryClient

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
    credentials = None
    if username and password:
        credentials = Credentials(username=username, password=password)
    return RegistryClient(registry, credentials=credentials, insecure=insecure)


class _TransferBars:
    """Progress bars on stderr for blobs of 1 MiB and more, only when it is a terminal."""

    def __init__(self) -> None:
        import sys

        self.enabled = sys.stderr.isatty()
        self.bars: dict[str, tuple[Any, int]] = {}
        self.finished: set[str] = set()

    def __call__(self, transfer: Any) -> None:
        if not self.enabled or transfer.total < 1 << 20 or transfer.digest in self.finished:
            return
        bar, shown = self.bars.get(transfer.digest, (None, 0))
        if bar is None:
            bar = click.progressbar(length=transfer.total, label=transfer.title, file=None)
            bar.__enter__()
        bar.update(transfer.done - shown)
        self.bars[transfer.digest] = (bar, transfer.done)
        if transfer.done >= transfer.total:
            bar.__exit__(None, None, None)
            del self.bars[transfer.digest]
            self.finished.add(transfer.digest)


@cli.command()
@click.argument("args", nargs=-1, metavar="ARCHIVE REF | -n NAME REF")
@click.option("-n", "--name", help="Push the photon of this name from the local store.")
@click.option(
    "--digest",
    metavar="sha256:HEX",
    help="Push only if the photon is this digest (as build printed it).",
)
@_registry_options
def push(
    args: tuple[str, ...],
    name: str | None,
    digest: str | None,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Upload a .photon (or -n NAME from the store) to REF (host[:port]/repo[:tag]).

    Only the blobs the registry lacks are uploaded; the manifest goes last.
    Prints the OCI manifest digest.
    """
    from photonpack.admit import is_archive_path
    from photonpack.oci.reference import parse_reference
    from photonpack.registry import push_photon
    from photonpack.store import Store

    if len(args) != (1 if name else 2):
        raise click.UsageError("push takes ARCHIVE REF, or -n NAME REF")
    reference = parse_reference(args[-1])
    store = Store()
    source = None if name else args[0]
    if source is not None and not is_archive_path(source):
        raise UsageError(f"{source} is not a .photon file; push takes ARCHIVE REF, or -n NAME REF")
    manifest = admit_photon(store, source, name, digest)
    with _registry_client(reference.registry, username, password_stdin, insecure) as client:
        result = push_photon(
            manifest, store.blob_path, reference, client=client, progress=_TransferBars()
        )
    click.echo(
        f"pushed {reference}: uploaded {len(result.uploaded)} of {result.total_blobs} blobs "
        f"({format_size(result.uploaded_bytes)} of {format_size(result.total_bytes)})",
        err=True,
    )
    click.echo(result.manifest_digest)


@cli.command()
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the archive (default: <name>.photon in the current directory).",
)
@_registry_options
def pull(
    ref: str, output: Path | None, username: str | None, password_stdin: bool, insecure: bool
) -> None:
    """Download REF (host[:port]/repo:tag or repo@sha256:...) and rebuild its .photon.

    Every byte is verified against its digest before the file is written.
    Prints the photon digest (the one `build` printed).
    """
    from photonpack.oci.reference import parse_reference
    from photonpack.registry import pull_photon

    reference = parse_reference(ref)
    with _registry_client(reference.registry, username, password_stdin, insecure) as client:
        result = pull_photon(reference, output, client=client, progress=_TransferBars())
    click.echo(f"pulled {reference} to {result.path}", err=True)
    click.echo(result.photon_digest)
