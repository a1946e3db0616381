"""``login`` and ``logout``: registry logins in the auth file podman, skopeo and docker share."""

from __future__ import annotations

import json

import click

from photonpack.cli._app import cli, info
from photonpack.cli.registry import _client, _credentials, _registry_options
from photonpack.errors import RegistryError, UsageError

_JSON_HELP = "Print the result as JSON: registry, username, where the login is kept."


@cli.command()
@click.argument("registry")
@_registry_options
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def login(
    registry: str, username: str | None, password_stdin: bool, insecure: bool, as_json: bool
) -> None:
    """Check a login against REGISTRY (host[:port]) and record it for every later command.

    The login goes where podman keeps it ($REGISTRY_AUTH_FILE, else
    $XDG_RUNTIME_DIR/containers/auth.json, else $DOCKER_CONFIG/config.json or
    ~/.docker/config.json), or to the credential helper that file names;
    podman, skopeo, docker and ORAS read it as photonpack does.
    """
    import os
    import sys

    from photonpack.oci.authfile import AuthFiles
    from photonpack.oci.client import Credentials

    if not username:
        raise UsageError(
            f"login to {registry} needs a username: pass --username or set "
            "PHOTONPACK_REGISTRY_USERNAME"
        )
    if password_stdin or "PHOTONPACK_REGISTRY_PASSWORD" in os.environ:
        credentials = _credentials(username, password_stdin)
    elif sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, err=True)
        credentials = Credentials(username=username, password=password)
    else:
        raise UsageError(
            f"login to {registry} needs a password: pass --password-stdin or set "
            "PHOTONPACK_REGISTRY_PASSWORD"
        )
    with _client(registry, credentials, insecure) as client:
        client.check_login()
    where = AuthFiles().store(registry, credentials)
    info(f"logged in to {registry} as {username} (login kept in {where})")
    if as_json:
        report = {"registry": registry, "username": username, "kept_in": str(where)}
        click.echo(json.dumps(report, indent=2, sort_keys=True))


@cli.command()
@click.argument("registry")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON: registry, removed_from."
)
def logout(registry: str, as_json: bool) -> None:
    """Forget the login for REGISTRY in every auth file and credential helper that holds it."""
    from photonpack.oci.authfile import AuthFiles

    files = AuthFiles()
    removed = files.remove(registry)
    if not removed:
        searched = ", ".join(str(path) for path in files.paths())
        raise RegistryError(f"no login for {registry} to remove (looked in {searched})")
    info(f"logged out of {registry} (removed from {', '.join(removed)})")
    if as_json:
        report = {"registry": registry, "removed_from": [str(r) for r in removed]}
        click.echo(json.dumps(report, indent=2, sort_keys=True))
