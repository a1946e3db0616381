"""``lock``, ``build`` and ``create``: from a photon's source to an archive."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from photonpack._units import format_size
from photonpack.cli._app import cli, progress_shown

if TYPE_CHECKING:
    from photonpack.build import StoredBuild
    from photonpack.lock.lockfile import LockOptions, LockResult
    from photonpack.lock.pylock import Lock
    from photonpack.serving.source import PhotonSpec

# -- lock ---------------------------------------------------------------------


def _locations(local_ok: bool) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback refusing a location pip cannot reach, before anything runs."""

    def check(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        from photonpack.lock.locations import location_problem

        for location in (value,) if isinstance(value, str) else value or ():
            if (problem := location_problem(location, local_ok=local_ok)) is not None:
                raise click.BadParameter(f"{location!r}: {problem}")
        return value

    return check


def lock_index_options(func: Any) -> Any:
    """--target / --index-url / --extra-index-url / --find-links, shared by lock and build."""
    for option in reversed(
        [
            click.option(
                "--target",
                "targets",
                multiple=True,
                metavar="TARGET",
                help="Interpreter-platform to lock for, e.g. cp311-manylinux_2_28_x86_64 "
                "(repeatable; default: this machine).",
            ),
            click.option(
                "--index-url",
                envvar="PHOTONPACK_INDEX_URL",
                metavar="URL",
                callback=_locations(local_ok=False),
                help="Simple index (PEP 503/691) to lock from [default: PyPI; "
                "$PHOTONPACK_INDEX_URL].",
            ),
            click.option(
                "--extra-index-url",
                "extra_index_urls",
                multiple=True,
                metavar="URL",
                callback=_locations(local_ok=False),
                help="Another index to search as well (repeatable).",
            ),
            click.option(
                "--find-links",
                "find_links",
                multiple=True,
                metavar="DIR_OR_URL",
                callback=_locations(local_ok=True),
                help="A directory of wheels or an HTML page of links (repeatable).",
            ),
            click.option(
                "--from",
                "from_lock",
                type=click.Path(path_type=Path, dir_okay=False),
                metavar="PYLOCK",
                help="Keep the pins (versions and hashes) of this PEP 751 lock, written by "
                "uv or pip lock, and lock the serving stack on top.",
            ),
        ]
    ):
        func = option(func)
    return func


def with_project_defaults(directory: Path, index: dict[str, Any]) -> dict[str, Any]:
    """``index`` (the options above) with what ``[tool.photonpack]`` sets for those not given."""
    from photonpack.cli.defaults import read_defaults

    defaults = read_defaults(directory)
    given = {
        "targets": defaults.targets,
        "index_url": defaults.index_url,
        "extra_index_urls": defaults.extra_index_urls,
        "find_links": defaults.find_links,
    }
    merged = dict(index)
    for option, default in given.items():
        if not merged.get(option) and default:
            _check_default(defaults, option, default)
            merged[option] = default
    return merged


def _check_default(defaults: Any, option: str, value: str | tuple[str, ...]) -> None:
    """A location in ``[tool.photonpack]`` pip cannot reach: refused as on the command line."""
    from photonpack.errors import UsageError
    from photonpack.lock.locations import location_problem

    if option == "targets":
        return
    keys = {"index_url": "index-url", "extra_index_urls": "extra-index-url"}
    key = keys.get(option, "find-links")
    for location in (value,) if isinstance(value, str) else value:
        problem = location_problem(location, local_ok=option == "find_links")
        if problem is not None:
            raise UsageError(f"{defaults.where(key)} {location!r}: {problem}")


def lock_options_from(
    *,
    name: str | None,
    output: Path | None,
    targets: tuple[str, ...],
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    from_lock: Path | None = None,
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
) -> Any:
    """Build :class:`~photonpack.lock.lockfile.LockOptions` from the shared command-line options."""
    from photonpack.lock.index import PYPI, IndexSettings
    from photonpack.lock.lockfile import LockOptions
    from photonpack.lock.target import Target
    from photonpack.store import Store
    from photonpack.wheelbuild.prebuilt import lock_time_builder

    links = tuple(link if "://" in link else str(Path(link).resolve()) for link in find_links)
    return LockOptions(
        name=name,
        output=output.resolve() if output else None,
        targets=tuple(Target.parse(t) for t in targets),
        index=IndexSettings(
            index_url=index_url or PYPI, extra_index_urls=extra_index_urls, find_links=links
        ),
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        from_lock=from_lock.absolute() if from_lock else None,
        source_cache=Store().root / "cache",  # as build's (photonpack.build.source_cache)
        builder=lock_time_builder(Store()),  # build reuses a dynamic sdist's wheel built here
    )


@cli.command()
@click.option(
    "-m", "--photon", "--module", "photon", required=True, help="file.py[:Class] or module:Class."
)
@click.option("-n", "--name", help="Photon name [default: from the class name].")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Lock file to write."
)
@lock_index_options
@click.option("-U", "--upgrade", is_flag=True, help="Ignore existing pins.")
@click.option(
    "-P",
    "--upgrade-package",
    "upgrade_packages",
    multiple=True,
    metavar="NAME",
    help="Unpin one package (repeatable).",
)
@click.option("--check", is_flag=True, help="Exit 1 if the lock is missing or stale; no writes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def lock(
    photon: str,
    name: str | None,
    output: Path | None,
    targets: tuple[str, ...],
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    from_lock: Path | None,
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
    check: bool,
    as_json: bool,
) -> None:
    """Lock a photon's requirements and serving stack into pylock.<name>.toml.

    --target, --index-url, --extra-index-url and --find-links not given are
    taken from [tool.photonpack] of the photon directory's pyproject.toml.
    """
    from photonpack.lock.lockfile import check_lock, lock_inputs, read_lock
    from photonpack.serving.source import parse_spec

    spec = parse_spec(photon)
    index = with_project_defaults(
        spec.directory,
        {
            "targets": targets,
            "index_url": index_url,
            "extra_index_urls": extra_index_urls,
            "find_links": find_links,
        },
    )
    options = lock_options_from(
        name=name,
        output=output,
        from_lock=from_lock,
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
        **index,
    )
    if check:
        check_lock(spec, options)
        path = lock_inputs(spec, options)[0]
        if as_json:
            _echo_lock_json(read_lock(path), changed=False)
            return
        click.echo(f"{path.name} is up to date")
        return
    result = _lock_with_progress(spec, options)
    if as_json:
        _echo_lock_json(result.lock, changed=result.changed, added=result.added)
        return
    if from_lock is not None:
        kept = len({p.name for p in result.lock.packages}) - len(result.added)
        added = f": {', '.join(result.added)}" if result.added else ""
        click.echo(f"kept {kept} packages of {from_lock.name}; added {len(result.added)}{added}")
    if not result.changed:
        click.echo(f"{result.path.name} is up to date")
        return
    packages = len({p.name for p in result.lock.packages})
    targets_text = ", ".join(str(t) for t in result.lock.targets)
    sdists = len(result.lock.sdists())
    built = f", {sdists} sdist{'s' if sdists != 1 else ''} to build" if sdists else ""
    click.echo(
        f"locked {packages} packages, {len(result.lock.wheels())} wheels{built} "
        f"for {targets_text} -> {result.path}"
    )


def _lock_with_progress(spec: PhotonSpec, options: LockOptions) -> LockResult:
    """``lock_photon`` with ``resolving for N targets … M packages`` on a terminal."""
    from photonpack.cli._progress import CountLine
    from photonpack.lock.lockfile import lock_photon

    targets = options.targets  # none: this machine (drawn only when resolving, never no-op)
    label = "resolving"
    if len(targets) == 1:
        label += f" for {targets[0]}"
    elif targets:
        label += f" for {len(targets)} targets"
    with CountLine(label, "packages", enabled=progress_shown()) as line:
        return lock_photon(spec, dataclasses.replace(options, progress=line.update))


def _echo_lock_json(lock: Lock, *, changed: bool, added: tuple[str, ...] = ()) -> None:
    """``{"path", "changed", "targets", "packages": [{"name", "version", "marker"}], "wheels"}``.

    With ``--from``, also ``"from"`` (the kept lock) and ``"added"`` (``"name version"``).
    """
    import json

    document = {
        "path": str(lock.path),
        "changed": changed,
        "targets": [str(t) for t in lock.targets],
        "packages": [
            {"name": p.name, "version": p.version, "marker": p.marker} for p in lock.packages
        ],
        "wheels": len(lock.wheels()),
    }
    if lock.inputs.from_lock is not None:
        document["from"] = str(lock.inputs.from_lock.path)
        document["added"] = list(added)
    click.echo(json.dumps(document, indent=2, sort_keys=True))


# -- build / create / remove ----------------------------------------------------


def _build_command(output_help: str) -> Callable[[Any], Any]:
    """The options shared by build and create (they differ in what -o means)."""

    def decorate(func: Any) -> Any:
        func = click.option(
            "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help=output_help
        )(func)
        return _build_options(func)

    return decorate


def _build_options(func: Any) -> Any:
    func = lock_index_options(func)
    func = click.option(
        "--locked", is_flag=True, help="Fail if the lock is missing or stale instead of locking."
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)
    func = click.option("-n", "--name", help="Photon name [default: from the class name].")(func)
    return click.option(
        "-m",
        "--photon",
        "--module",
        "photon",
        required=True,
        help="file.py[:Class] or module:Class.",
    )(func)


_Built = TypeVar("_Built", bound="StoredBuild")


def _do_build(
    run: Callable[..., _Built],
    photon: str,
    name: str | None,
    output: Path | None,
    locked: bool,
    **index: Any,
) -> _Built:
    """Build ``photon`` with ``run`` (``build``: into ``output``; ``build_in_store``: no file)."""
    from photonpack.build import BuildOptions
    from photonpack.serving.source import parse_spec

    spec = parse_spec(photon)
    index = with_project_defaults(spec.directory, index)
    options = BuildOptions(
        name=name,
        output=output.resolve() if output else None,
        locked=locked,
        lock=lock_options_from(name=name, output=None, **index),
    )
    with _BuildProgress(progress_shown()) as progress:
        result = run(spec, options, progress=progress, writing=progress)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    return result


class _BuildProgress:
    """The wheels a build downloads, then the archive it writes, on one progress line.

    One line (``cli/_progress.py``) for both stages, so the second overwrites the first.
    """

    def __init__(self, enabled: bool) -> None:
        import threading

        from photonpack.cli._progress import ProgressLine

        self._enabled = enabled
        self._line = ProgressLine("downloading wheels", 0, enabled=enabled)
        self._received = 0
        self._lock = threading.Lock()

    def __enter__(self) -> _BuildProgress | None:
        return self if self._enabled else None

    def start(self, total_bytes: int) -> None:
        self._line.begin(total_bytes)

    def advance(self, _wheel: Any, received: int) -> None:
        # Called from the download threads, with the bytes just received.
        with self._lock:
            self._received += received
            self._line.update(self._received)

    def begin(self, total_bytes: int) -> None:
        self._line.retitle("writing", total_bytes)

    def update(self, done: int) -> None:
        self._line.update(done)

    def __exit__(self, *exc: object) -> None:
        self._line.close()


@cli.command()
@_build_command("Archive to write [default: ./<name>.photon].")
def build(
    photon: str, name: str | None, as_json: bool, locked: bool, output: Path | None, **index: Any
) -> None:
    """Build one deterministic, content-addressed .photon archive.

    --target, --index-url, --extra-index-url and --find-links not given are
    taken from [tool.photonpack] of the photon directory's pyproject.toml.
    """
    import json

    from photonpack.build import build as build_photon

    result = _do_build(build_photon, photon, name, output, locked, **index)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return
    unchanged = "" if result.rewritten else "; unchanged since the last build, not rewritten"
    click.echo(f"built {result.path} ({format_size(result.size)}{unchanged})")
    click.echo(result.digest)


@cli.command()
@_build_command("Also write the archive here.")
def create(
    photon: str, name: str | None, as_json: bool, locked: bool, output: Path | None, **index: Any
) -> None:
    """Build a photon and record it in the local store under its name (see `list`).

    --target, --index-url, --extra-index-url and --find-links not given are
    taken from [tool.photonpack] of the photon directory's pyproject.toml.
    """
    import json

    from photonpack.build import build as build_photon
    from photonpack.build import build_in_store
    from photonpack.store import Store

    # Without -o nothing is written but the store: the archive's bytes are only counted.
    run = build_photon if output is not None else build_in_store
    result = _do_build(run, photon, name, output, locked, **index)
    ref = Store().refs.put(result.manifest.name, result.digest, result.size)
    if as_json:
        click.echo(json.dumps({**result.to_dict(), **ref.to_dict()}, indent=2, sort_keys=True))
        return
    click.echo(
        f"created {ref.name} ({format_size(ref.size)}); run it with: photonpack run -n {ref.name}"
    )
    click.echo(ref.digest)
