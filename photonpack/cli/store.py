"""``list`` and ``remove``: the named photons of the local store (``list --remote``: a registry)."""

from __future__ import annotations

import click

from photonpack._units import format_size
from photonpack.cli._app import _table, cli
from photonpack.cli.registry import _registry_client, _registry_options
from photonpack.errors import UsageError


@cli.command("list")
@click.option(
    "--remote",
    metavar="REPO",
    help="List the tags of a registry repository (host[:port]/repo) instead of the store.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@_registry_options
def list_(
    remote: str | None, as_json: bool, username: str | None, password_stdin: bool, insecure: bool
) -> None:
    """List named photons in the local store (newest first), or the tags of a repository."""
    import json

    if remote is None:
        from photonpack.store import Store

        refs = Store().refs.all()
        if as_json:
            click.echo(json.dumps([ref.to_dict() for ref in refs], indent=2, sort_keys=True))
            return
        rows = [(r.name, r.digest, format_size(r.size), r.created) for r in refs]
        _table(("NAME", "DIGEST", "SIZE", "CREATED"), rows)
        return
    from photonpack.oci.reference import parse_repository
    from photonpack.registry import list_remote

    registry, repository = parse_repository(remote)
    with _registry_client(registry, username, password_stdin, insecure) as client:
        tags = list_remote(repository, client=client)
    if as_json:
        found = [
            {"tag": t.tag, "manifest_digest": t.manifest_digest, "photon_digest": t.photon_digest}
            for t in tags
        ]
        click.echo(json.dumps(found, indent=2, sort_keys=True))
        return
    for tag in tags:
        click.echo(f"{tag.tag}\t{tag.manifest_digest}\t{tag.photon_digest or '-'}")


@cli.command()
@click.option("-n", "--name", help="Name of the photon to remove from the local store.")
@click.option("--all", "remove_all", is_flag=True, help="Remove every named photon.")
@click.option("--json", "as_json", is_flag=True, help="Print the removed photons as JSON.")
def remove(name: str | None, remove_all: bool, as_json: bool) -> None:
    """Remove named photons from the local store."""
    import json

    from photonpack.store import Store

    if (name is None) == (not remove_all):
        raise UsageError("photonpack remove needs exactly one of -n NAME or --all")
    store = Store()
    refs = store.refs.all() if remove_all else [store.refs.get(name or "")]
    for ref in refs:
        store.refs.remove(ref.name)
        if not as_json:
            click.echo(f"removed {ref.name} ({ref.digest})")
    if as_json:  # the shape of `list --json`: what was listed and is now gone
        click.echo(json.dumps([ref.to_dict() for ref in refs], indent=2, sort_keys=True))


@cli.group("store")
def store_group() -> None:
    """The local store ($PHOTONPACK_HOME): where its space goes."""


@store_group.command("du")
@click.option("--json", "as_json", is_flag=True, help="Print the usage as JSON.")
def store_du(as_json: bool) -> None:
    """Bytes by area of the store, each file counted once (hard links are not added twice)."""
    import json

    from photonpack.store import Store
    from photonpack.store.usage import store_usage

    store = Store()
    store.check_root()
    usage = store_usage(store.root)
    if as_json:
        click.echo(json.dumps(usage.to_dict(), indent=2, sort_keys=True))
        return
    rows = [
        (a.area, format_size(a.size), str(a.files), format_size(a.linked), a.description)
        for a in usage.areas
    ]
    rows.append(("total", format_size(usage.total), "", "", str(usage.root)))
    _table(("AREA", "SIZE", "FILES", "LINKED", "WHAT"), rows)
