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


@cli.command()
@click.option("--dry-run", is_flag=True, help="Report what would be removed; remove nothing.")
@click.option(
    "--keep-recent",
    metavar="DURATION",
    default="7d",
    show_default=True,
    help="Keep the photons run within this time (30m, 12h, 7d, 0: only named and deployed).",
)
@click.option(
    "--no-wait",
    is_flag=True,
    help="Fail at once if another photonpack process is using the store, instead of waiting.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def gc(dry_run: bool, keep_recent: str, no_wait: bool, as_json: bool) -> None:
    """Remove from the store what no named, deployed or recently run photon needs.

    \b
    Kept: every named photon (photonpack list), every photon a deployment
    record names, and every archive run within --keep-recent: its manifest,
    blobs, working directory and environment. Also kept: an environment or
    working directory a live 'run' server uses, and an environment made or
    used within --keep-recent. Removed: the rest of blobs, manifests, environments,
    working directories, unpacked-wheel pointers, archive records and the
    handler-contract cache older than --keep-recent; lock files nobody holds;
    temporary files of processes that are gone or older than an hour.

    Safe while other photonpack commands run: gc waits for them (and they for
    it) on the store's lock. Reports what it freed, per area. The policy and
    the lock protocol: docs/internals.md.
    """
    import json

    from photonpack._units import format_duration, parse_duration
    from photonpack.install.environment import photon_environment
    from photonpack.store import Store
    from photonpack.store.gc import collect

    try:
        keep = parse_duration(keep_recent)
    except ValueError as exc:
        raise UsageError(f"--keep-recent {exc}") from None
    from photonpack.cli._app import progress_shown
    from photonpack.cli._progress import StepLine

    label = "finding what gc would remove" if dry_run else "collecting the store"
    with StepLine(label, enabled=progress_shown()):
        report = collect(
            Store(),
            environment_of=photon_environment,
            keep_recent=keep,
            dry_run=dry_run,
            wait=not no_wait,
        )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, sort_keys=True))
        return
    rows = [
        (a.area, str(a.items), str(a.files), format_size(a.size)) for a in report.areas if a.items
    ]
    rows.append(("total", str(report.items), "", format_size(report.size)))
    _table(("AREA", "ITEMS", "FILES", "WOULD FREE" if dry_run else "FREED"), rows)
    roots = (
        f"{len(report.named)} named, {len(report.deployed)} deployed, "
        f"{len(report.recent)} run within --keep-recent {format_duration(keep)}"
    )
    click.echo(f"kept {report.photons} photon{'' if report.photons == 1 else 's'} ({roots})")
    for item in report.in_use:
        click.echo(f"kept {item}: in use by a running photon")
    if report.moved:
        click.echo(f"moved {report.moved} unpacked-wheel pointers to kept environments")
    if dry_run:
        click.echo("dry run: nothing was removed")
