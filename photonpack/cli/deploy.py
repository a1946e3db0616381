"""``deploy`` and ``deployment status|list|logs|remove``: photons on Kubernetes or podman."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from photonpack.cli._app import _table, cli, info
from photonpack.cli.registry import _registry_client, _registry_options, admit_photon
from photonpack.errors import UsageError

ENGINES = ("kubernetes", "podman")
# photonpack's images append `lepton` to the base's passwd at the first free id from 1000.
IMAGE_UID = 1000


def _engine(name: str, context: str | None = None) -> Any:
    if name == "podman":
        from photonpack.deploy.podman import PodmanEngine

        return PodmanEngine()
    from photonpack.deploy.kubernetes import KubernetesEngine

    return KubernetesEngine.from_kubeconfig(context=context)


def _recorded_engine(name: str) -> Any:
    from photonpack.deploy.record import Records

    record = Records().require(name)
    return _engine(record.engine, record.context)


def _image_for(
    manifest: Any,
    *,
    engine: str,
    base: str | None,
    registry: str | None,
    dry_run: bool,
    client_for: Any,
) -> str:
    """Build the photon's image; push it to ``registry`` or load it into podman: its pinned ref."""
    from photonpack.image import (
        ImageOptions,
        archive_architecture,
        build_image,
        default_base,
        open_base,
        push_image,
        source_date_epoch,
    )
    from photonpack.oci.reference import parse_reference
    from photonpack.store import Store

    store = Store()
    spec = base or manifest.photon.image or default_base(list(manifest.targets))
    base_image = open_base(
        spec,
        store=store,
        architecture=archive_architecture(manifest.targets),
        client_for=client_for,
    )
    info(f"base {spec} {base_image.digest}")
    options = ImageOptions(epoch=source_date_epoch(), check_system=True)
    with store.temp_dir("deploy-") as work:
        built = build_image(store, manifest, base_image, work, options)
        for warning in built.warnings:
            click.echo(f"warning: {warning}", err=True)
        info(f"image {built.digest} of {manifest.name} {manifest.digest}")
        if registry is not None:
            target = parse_reference(f"{registry.rstrip('/')}:{manifest.digest[7:19]}")
            if dry_run:
                return f"{target.registry}/{target.repository}@{built.digest}"
            with client_for(target.registry) as client:
                pushed = push_image(built, target, client=client)
            info(f"pushed {target} ({len(pushed.uploaded)} blobs uploaded)")
            return f"{target.registry}/{target.repository}@{built.digest}"
        repository = f"localhost/{manifest.name}"
        if dry_run:
            return f"{repository}@{built.digest}"
        from photonpack.deploy.podman import PodmanEngine

        if PodmanEngine().has_image(f"{repository}@{built.digest}"):
            info(f"{repository}@{built.digest} is in podman's storage already")
            return f"{repository}@{built.digest}"
        from photonpack.deploy.podmanimage import load_image

        with store.temp_dir("deploy-oci-") as out:
            ref: str = load_image(PodmanEngine().cli, built, repository, Path(out))
        info(f"loaded {ref} into podman's storage")
        return ref


def _default_registry(manifest: Any) -> str | None:
    """``REGISTRY/NAME`` when ``./pyproject.toml`` or ``./photonpack.toml`` sets ``registry``."""
    from photonpack.cli.defaults import read_defaults

    registry = read_defaults(Path.cwd()).registry
    return None if registry is None else f"{registry.rstrip('/')}/{manifest.name}"


def _registry_image_user(image: str, manifest: Any, client_for: Any) -> tuple[int, int | None]:
    """The uid (and gid) of ``--image``'s config, read from its registry as the cluster will.

    When this machine cannot read it (no route, no login), deploy says so and runs
    it as photonpack's ``lepton`` (1000): the cluster's runAsNonRoot check remains.
    """
    from photonpack.deploy.imageuser import registry_image_config, run_as
    from photonpack.errors import RegistryError
    from photonpack.image import archive_architecture
    from photonpack.image.pull import api_host
    from photonpack.oci.reference import parse_reference

    ref = parse_reference(image)
    if ref.digest is None:
        return IMAGE_UID, IMAGE_UID  # DeploymentSpec refuses a moving tag, naming it
    try:
        with client_for(api_host(ref.registry)) as client:
            config = registry_image_config(
                client, ref.repository, ref.digest, archive_architecture(manifest.targets)
            )
    except RegistryError as exc:
        click.echo(
            f"warning: cannot read the user of {image} ({exc}); running it as uid "
            f"{IMAGE_UID}, photonpack's lepton",
            err=True,
        )
        return IMAGE_UID, IMAGE_UID
    return run_as(config, image)


def _podman_image_user(image: str) -> tuple[int, int | None]:
    """The uid (and gid) ``--image`` runs as, when podman's storage holds it; else lepton's."""
    from photonpack.deploy.imageuser import run_as
    from photonpack.deploy.podmancli import PodmanCli

    found = PodmanCli().inspect("image", image)
    if found is None:
        return IMAGE_UID, IMAGE_UID  # kube play pulls it; photonpack's images run as lepton
    return run_as({"config": found.get("Config") or {}}, image)


@cli.command()
@click.argument("photon", required=False, metavar="ARCHIVE | REF")
@click.option("-n", "photon_name", help="Deploy the photon of this name in the store.")
@click.option("--name", "name", help="The deployment's name (default: the photon's).")
@click.option("--image", help="A pushed image of the photon, by digest: REPO@sha256:...")
@click.option(
    "--registry",
    metavar="HOST/REPO",
    help="Build the image and push it here (default on Kubernetes: REGISTRY/NAME when "
    "./pyproject.toml [tool.photonpack] or ./photonpack.toml sets registry).",
)
@click.option("--base", metavar="REF | oci:DIR[:TAG] | docker-archive:FILE", help="Image base.")
@click.option("--replicas", type=int, default=1, show_default=True)
@click.option("--max-replicas", type=int, help="Autoscale on CPU from --replicas up to this.")
@click.option(
    "--token",
    envvar="PHOTONPACK_TOKEN",
    show_envvar=True,
    help="Bearer token (default: $PHOTONPACK_TOKEN).",
)
@click.option("--token-secret", metavar="NAME", help="An existing Secret whose 'token' key is it.")
@click.option("--env", "env", multiple=True, metavar="K=V", help="An environment variable.")
@click.option(
    "--secret", "secrets", multiple=True, metavar="ENV=SECRET[:KEY]", help="Env from a Secret."
)
@click.option("--cpu", help="CPU request and limit (e.g. 1, 500m; default 1).")
@click.option("--memory", help="Memory request and limit (e.g. 2Gi; default 1Gi).")
@click.option("--gpu", type=int, help="nvidia.com/gpu devices.")
@click.option("--namespace", help="The Kubernetes namespace (default: the context's).")
@click.option("--context", help="The kubeconfig context (default: its current-context).")
@click.option("--engine", type=click.Choice(ENGINES), default="kubernetes", show_default=True)
@click.option("--host-port", type=int, help="podman: the port on this host (default: a free one).")
@click.option(
    "--force", is_flag=True, help="Take over objects of this name photonpack did not make."
)
@click.option("--timeout", type=float, default=300, show_default=True, help="Seconds to get ready.")
@click.option("--dry-run", is_flag=True, help="Print what would be applied; apply nothing.")
@click.option("-o", "--output", type=click.Choice(("yaml", "json")), default="yaml")
@click.option("--digest", metavar="sha256:HEX", help="Deploy only if the photon is this digest.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the deployment's record as JSON, with 'changed' (with --dry-run: -o json).",
)
@_registry_options
def deploy(
    photon: str | None,
    photon_name: str | None,
    name: str | None,
    image: str | None,
    registry: str | None,
    base: str | None,
    replicas: int,
    max_replicas: int | None,
    token: str | None,
    token_secret: str | None,
    env: tuple[str, ...],
    secrets: tuple[str, ...],
    cpu: str | None,
    memory: str | None,
    gpu: int | None,
    namespace: str | None,
    context: str | None,
    engine: str,
    host_port: int | None,
    force: bool,
    timeout: float,
    dry_run: bool,
    output: str,
    digest: str | None,
    as_json: bool,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Deploy a photon: ARCHIVE, REF or -n NAME, on Kubernetes or with podman.

    Without --image, builds the photon's image, pushes it to --registry (or,
    with --engine podman, loads it into podman), and deploys it by digest.
    Applied again, an unchanged photon changes nothing; a new one rolls out.
    """
    from photonpack.deploy import (
        DeployError,
        DeploymentSpec,
        dump_all,
        parse_env,
        parse_secret,
        render,
    )
    from photonpack.deploy.manifests import deployment
    from photonpack.deploy.podmancli import free_port
    from photonpack.deploy.record import Records
    from photonpack.deploy.spec import DEFAULT_PORT
    from photonpack.store import Store

    if (photon is None) == (photon_name is None):
        raise UsageError("photonpack deploy needs exactly one photon: ARCHIVE, REF or -n NAME")
    if image is not None and registry is not None:
        raise UsageError("pass either --image (already pushed) or --registry (build and push)")

    def client_for(host: str) -> Any:
        return _registry_client(host, username, password_stdin, insecure)

    manifest = admit_photon(Store(), photon, photon_name, digest)
    deployment_name = name or manifest.name
    port = None
    if engine == "podman":
        previous = Records().get(deployment_name)
        port = host_port or (previous.host_port if previous else None) or free_port()
    options: dict[str, Any] = {
        "name": deployment_name,
        "photon": manifest.name,
        "photon_digest": manifest.digest,
        "uid": IMAGE_UID,
        "gid": IMAGE_UID,
        "replicas": replicas,
        "max_replicas": max_replicas,
        # The image's entrypoint serves on the photon's exposed_port: no args to repeat it.
        "port": manifest.photon.exposed_port or DEFAULT_PORT,
        "host_port": port,
        "namespace": namespace,
        "token": token or None,
        "token_secret": token_secret,
        "env": parse_env(env),
        "secrets": [parse_secret(item) for item in secrets],
        "cpu": cpu,
        "memory": memory,
        "gpu": gpu,
    }
    # Check the options before building an image for them.
    DeploymentSpec.of(image=image or f"localhost/check@sha256:{'0' * 64}", **options)
    if image is None and registry is None and engine == "kubernetes":
        registry = _default_registry(manifest)
        if registry is None:
            raise DeployError(
                "a cluster pulls images from a registry: pass --registry HOST/REPO to build and "
                "push the photon's image (or set registry in [tool.photonpack] of "
                "./pyproject.toml or in ./photonpack.toml), or --image REPO@sha256:... of one "
                "already pushed"
            )
    target: Any = None if dry_run else _engine(engine, context)  # a bad kubeconfig fails first
    if image is not None and engine == "podman":
        options["uid"], options["gid"] = _podman_image_user(image)
    elif image is not None:
        options["uid"], options["gid"] = _registry_image_user(image, manifest, client_for)
    if image is None:
        image = _image_for(
            manifest,
            engine=engine,
            base=base,
            registry=registry,
            dry_run=dry_run,
            client_for=client_for,
        )
    spec = DeploymentSpec.of(image=image, **options)
    if as_json:
        output = "json"
    if dry_run:
        objects = [deployment(spec)] if engine == "podman" else render(spec)
        click.echo(
            dump_all(objects) if output == "yaml" else json.dumps(objects, indent=2), nl=False
        )
        if output == "json":
            click.echo()
        return
    started = time.monotonic()
    record, changed = target.deploy(spec, force=force, timeout=timeout)
    verb = "deployed" if changed else "unchanged:"
    info(
        f"{verb} {record.name} ({record.engine}): photon {record.photon} {record.photon_digest}, "
        f"image {record.image}, ready in {time.monotonic() - started:.1f} s"
        + (f", endpoint {record.url}" if record.url else ""),
    )
    if as_json:
        click.echo(json.dumps(record.to_dict() | {"changed": changed}, indent=2, sort_keys=True))
        return
    click.echo(record.url or record.name)


@cli.group()
def deployment() -> None:
    """Deployments made by photonpack deploy: status, list, logs, remove."""


@deployment.command("status")
@click.option("-n", "--name", required=True, help="The deployment.")
@click.option("--watch", is_flag=True, help="Print the status again every 2 s until ready.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(name: str, watch: bool, as_json: bool) -> None:
    """Replicas; the image and photon running, and whether they are the deployed ones; why not."""
    engine = _recorded_engine(name)
    while True:
        current = engine.status(name)
        if as_json:
            click.echo(json.dumps(current.to_dict(), indent=2))
        else:
            click.echo(current.summary())
            for event in current.events:
                click.echo(f"  warning: {event}")
        if not watch or current.ready >= current.desired:
            break
        time.sleep(2)
    if current.ready < current.desired:
        raise click.exceptions.Exit(1)


@deployment.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_deployments(as_json: bool) -> None:
    """Every deployment photonpack made from this machine, with its photon and digest."""
    from photonpack.deploy.record import Records

    records = Records().all()
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    rows = [
        (r.name, r.engine, r.photon, r.photon_digest[:19], r.url or r.namespace or "")
        for r in records
    ]
    _table(("NAME", "ENGINE", "PHOTON", "DIGEST", "ENDPOINT"), rows)


@deployment.command("logs")
@click.option("-n", "--name", required=True, help="The deployment.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--since", help="Only lines newer than this (10m, 1h, an RFC 3339 time).")
def logs(name: str, follow: bool, since: str | None) -> None:
    """The server's log lines, of every pod (each line prefixed [POD] when there are several)."""
    for line in _recorded_engine(name).logs(name, follow=follow, since=since):
        click.echo(line)


@deployment.command("remove")
@click.option("-n", "--name", required=True, help="The deployment.")
def remove(name: str) -> None:
    """Everything the deployment created, and nothing else."""
    removed = _recorded_engine(name).remove(name)
    info(f"removed {name}: {', '.join(removed) or 'nothing was running'}")
