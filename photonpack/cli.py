"""The ``photonpack`` command line: parse, call one library function, print.

This is the only module that prints, and the only place where a
:class:`~photonpack.errors.PhotonpackError` becomes a message and an exit code.
Library modules are imported inside each command so that ``photonpack lock``
or ``photonpack verify`` never import the serving stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from photonpack.__about__ import __version__
from photonpack.errors import PhotonpackError


class _Group(click.Group):
    """A click group that turns photonpack errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PhotonpackError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="photonpack")
def cli() -> None:
    """Lock, build, verify and serve reproducible Python photons."""


# -- registry: push / pull / list --remote ---------------------------------


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

    from photonpack.oci import Credentials, RegistryClient

    password = os.environ.get("PHOTONPACK_REGISTRY_PASSWORD")
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    if username and not password:
        raise PhotonpackError(
            f"a login for {username!r} needs a password: pass --password-stdin or set "
            "PHOTONPACK_REGISTRY_PASSWORD"
        )
    if password and not username:
        raise PhotonpackError(
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


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


@cli.command()
@click.argument("args", nargs=-1, metavar="ARCHIVE REF | -n NAME REF")
@click.option("-n", "--name", help="Push the photon of this name from the local store.")
@_registry_options
def push(
    args: tuple[str, ...],
    name: str | None,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
) -> None:
    """Upload a .photon (or -n NAME from the store) to REF (host[:port]/repo[:tag]).

    Only the blobs the registry lacks are uploaded; the manifest goes last.
    Prints the OCI manifest digest.
    """
    from photonpack.reference import parse_reference
    from photonpack.registry import push_archive, push_photon

    if len(args) != (1 if name else 2):
        raise click.UsageError("push takes ARCHIVE REF, or -n NAME REF")
    reference = parse_reference(args[-1])
    with _registry_client(reference.registry, username, password_stdin, insecure) as client:
        if name is None:
            result = push_archive(Path(args[0]), reference, client=client, progress=_TransferBars())
        else:
            from photonpack.store import Store

            store = Store()
            manifest = store.manifest(store.get_ref(name).digest)
            result = push_photon(
                manifest, store.blob_path, reference, client=client, progress=_TransferBars()
            )
    click.echo(
        f"pushed {reference}: uploaded {len(result.uploaded)} of {result.total_blobs} blobs "
        f"({_size(result.uploaded_bytes)} of {_size(result.total_bytes)})",
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
    from photonpack.reference import parse_reference
    from photonpack.registry import pull_photon

    reference = parse_reference(ref)
    with _registry_client(reference.registry, username, password_stdin, insecure) as client:
        result = pull_photon(reference, output, client=client, progress=_TransferBars())
    click.echo(f"pulled {reference} to {result.path}", err=True)
    click.echo(result.photon_digest)


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

        refs = Store().list_refs()
        if as_json:
            click.echo(json.dumps([ref.to_dict() for ref in refs], indent=2, sort_keys=True))
            return
        rows = [(r.name, r.digest, _size(r.size), r.created) for r in refs]
        _table(("NAME", "DIGEST", "SIZE", "CREATED"), rows)
        return
    from photonpack.reference import parse_repository
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


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Print aligned columns; an empty table prints nothing."""
    if not rows:
        return
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


# -- run: serve a photon -------------------------------------------------------


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise PhotonpackError(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


@cli.command()
@click.argument("archive", required=False)
@click.option("-n", "--name", help="Run the photon of this name from the local store.")
@click.option(
    "-m", "--module", metavar="SPEC", help="Serve from source: file.py[:Class] or pkg.module:Class."
)
@click.option(
    "--host",
    default="0.0.0.0",  # noqa: S104 - a served photon is meant to be reached, as in Lepton
    show_default=True,
    help="Address to listen on (as in Lepton).",
)
@click.option("--port", default=8080, show_default=True, type=int, help="Port (0: any free one).")
@click.option("--token", help="Require 'Authorization: Bearer TOKEN' (else $PHOTONPACK_TOKEN).")
@click.option(
    "--env", "env_pairs", multiple=True, metavar="K=V", help="Set an environment variable."
)
@click.option(
    "--skip-system-check",
    is_flag=True,
    help="Serve even if system_dependency packages are missing.",
)
def run(
    archive: str | None,
    name: str | None,
    module: str | None,
    host: str,
    port: int,
    token: str | None,
    env_pairs: tuple[str, ...],
    skip_system_check: bool,
) -> None:
    """Serve a photon: from source with -m SPEC, or from ARCHIVE / -n NAME.

    From source it serves in the current environment (Lepton's `lep photon run
    --local`), from the photon's directory, through the same entry point as an
    archive (`python -m photonpack.runtime.serve`). SIGTERM or Ctrl-C drains
    in-flight requests, then it exits 0.
    """
    import os

    env = _parse_env(env_pairs)
    if sum(x is not None for x in (archive, name, module)) != 1:
        raise PhotonpackError(
            "photonpack run needs exactly one photon: ARCHIVE, -n NAME, or -m file.py[:Class]"
        )
    if module is None:
        _run_stored(
            archive,
            name,
            host=host,
            port=port,
            token=token,
            env=env,
            check_system=not skip_system_check,
        )
        return
    args, workdir = _source_serve_args(module, host, port)
    shown = "localhost" if host in ("0.0.0.0", "::") else host  # noqa: S104 - display only
    click.echo(
        f"serving {module} on http://{shown}:{port}; call it with:\n\n"
        "    from photonpack.client import Client, local\n"
        f"    c = Client({'local()' if port == 8080 else f'local(port={port})'}"
        f"{', token=...' if token or os.environ.get('PHOTONPACK_TOKEN') else ''})\n"
        "    c.paths()\n",
        err=True,
    )
    os.environ.update(env)
    if token:
        os.environ["PHOTONPACK_TOKEN"] = token  # not in argv, where `ps` would show it
    os.chdir(workdir)
    # The serve entry point itself, in this process: the same code path as an
    # archive run, without paying for a second interpreter start-up.
    from photonpack.runtime.serve import main as serve_main

    code = serve_main(args)
    if code:
        raise SystemExit(code)


def _run_stored(
    archive: str | None,
    name: str | None,
    *,
    host: str,
    port: int,
    token: str | None,
    env: dict[str, str],
    check_system: bool,
) -> None:
    """Verify, install offline and serve an archive, a stored name, or a registry REF."""
    import time

    from photonpack.runtime.run import ServeOptions, exec_serve, prepare
    from photonpack.store import Store

    store = Store()
    started = time.monotonic()
    manifest = _stored_manifest(store, archive, name)
    prepared = prepare(store, manifest, check_system=check_system)
    how = "installed" if prepared.installed else "reused"
    click.echo(
        f"verified {manifest.name} {manifest.digest}; environment {how} "
        f"for {prepared.target} in {time.monotonic() - started:.1f} s",
        err=True,
    )
    exec_serve(prepared, ServeOptions(host=host, port=port, token=token, env=env))


def _stored_manifest(store: Any, archive: str | None, name: str | None) -> Any:
    """The manifest of what to run, with all its blobs verified into ``store``."""
    if name is not None:
        return store.manifest(store.get_ref(name).digest)
    assert archive is not None
    path = Path(archive)
    if path.exists() or archive.endswith(".photon") or "/" not in archive:
        if not path.is_file():
            raise PhotonpackError(f"{archive} does not exist; pass a .photon file")
        return store.import_archive(path)
    return _pull_into_store(store, archive)


def _pull_into_store(store: Any, ref_text: str) -> Any:
    """`photonpack run REF`: fetch a photon from a registry, verified, into the store.

    Credentials come from $PHOTONPACK_REGISTRY_USERNAME / _PASSWORD, as for pull.
    """
    import os

    from photonpack.reference import parse_reference
    from photonpack.registry import fetch_photon

    ref = parse_reference(ref_text)
    with (
        store.temp_dir("pull-") as scratch,
        _registry_client(
            ref.registry, os.environ.get("PHOTONPACK_REGISTRY_USERNAME"), False, False
        ) as client,
    ):
        fetched = fetch_photon(ref, scratch, client=client)
        manifest = fetched.manifest
        for sha, size in manifest.blobs().items():
            store.add_blob_file(fetched.blob_path(sha), sha, size)
        store.put_manifest(manifest.digest, manifest.to_bytes())
    return manifest


def _source_serve_args(module: str, host: str, port: int) -> tuple[list[str], str]:
    """The serve entry point's arguments for a photon from source, and its working directory."""
    from photonpack.source import parse_spec

    spec = parse_spec(module)
    if spec.path is not None:
        entry = spec.path.name + (f":{spec.class_name}" if spec.class_name else "")
    else:
        entry = f"{spec.module}:{spec.class_name}"
    return ["--entry", entry, "--host", host, "--port", str(port)], str(spec.directory)


# -- CI: verify / inspect / diff / sbom ------------------------------------

_ARCHIVE = click.Path(path_type=Path, dir_okay=False)


@cli.command()
@click.argument("archive", type=_ARCHIVE, required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--store", "check_store", is_flag=True, help="Re-hash the local store instead of an archive."
)
@click.option(
    "--rebuild",
    "rebuild_from",
    metavar="SPEC",
    help="Also rebuild from this source (file.py[:Class]) and its lock; exit 3 unless "
    "the digest is identical.",
)
@click.pass_context
def verify(
    ctx: click.Context,
    archive: Path | None,
    as_json: bool,
    check_store: bool,
    rebuild_from: str | None,
) -> None:
    """Re-hash ARCHIVE offline: exit 0 if clean, 3 on any integrity failure."""
    import json

    from photonpack.summary import human_size
    from photonpack.verify import verify_archive

    if check_store:
        if archive is not None or rebuild_from is not None:
            raise PhotonpackError("verify --store takes no ARCHIVE and no --rebuild")
        ctx.exit(_verify_store(as_json))
    if archive is None:
        raise PhotonpackError("verify needs an ARCHIVE (or --store)")
    result = verify_archive(archive)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif result.ok and result.manifest is not None:
        m = result.manifest
        verified = f"{len(m.blobs())} blobs, {human_size(m.total_size)} verified"
        click.echo(f"ok {m.name} {m.digest} ({verified})")
    else:
        for problem in result.problems:
            click.echo(f"FAIL {problem}")
        count = len(result.problems)
        click.echo(
            f"error: {archive} failed verification ({count} problem{'s' * (count != 1)}); "
            "the archive was damaged or altered: fetch or build it again",
            err=True,
        )
    if not result.ok:
        ctx.exit(3)
    if rebuild_from is not None and result.manifest is not None:
        ctx.exit(_verify_rebuild(result.manifest, rebuild_from))


def _verify_store(as_json: bool) -> int:
    import json

    from photonpack.store import Store

    store = Store()
    problems = store.verify()
    if as_json:
        click.echo(json.dumps({"ok": not problems, "problems": problems}, indent=2))
    for problem in [] if as_json else problems:
        click.echo(f"FAIL {problem}")
    if problems:
        return 3
    if not as_json:
        click.echo(f"ok the store {store.root} is intact")
    return 0


def _verify_rebuild(built: Any, spec_text: str) -> int:
    import tempfile

    from photonpack.build import rebuild
    from photonpack.diff import diff, side_from_manifest
    from photonpack.diff_render import render_text
    from photonpack.source import parse_spec

    with tempfile.TemporaryDirectory(prefix="photonpack-rebuild-") as scratch:
        again = rebuild(parse_spec(spec_text), built, Path(scratch) / "rebuilt.photon")
    if again.digest == built.digest:
        click.echo(f"reproducible: rebuilding {spec_text} gives {built.digest}")
        return 0
    changes = diff(side_from_manifest(built, "archive"), side_from_manifest(again, "rebuild"))
    click.echo(render_text(changes))
    click.echo(
        f"error: not reproducible: the archive is {built.digest}, rebuilding {spec_text} "
        f"gives {again.digest}",
        err=True,
    )
    return 3


@cli.command("inspect")
@click.argument("archive", type=_ARCHIVE)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect_(archive: Path, as_json: bool) -> None:
    """Show what ARCHIVE holds, from its manifest alone (fast; not a verification)."""
    import json

    from photonpack.bundle import read_manifest
    from photonpack.summary import inspect_report, render_inspect

    report = inspect_report(read_manifest(archive), archive_size=archive.stat().st_size)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        click.echo(render_inspect(report), nl=False)


@cli.command("diff")
@click.argument("a", type=_ARCHIVE)
@click.argument("b", type=_ARCHIVE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 if A and B differ, 2 if a difference breaks the handler API.",
)
@click.pass_context
def diff_(ctx: click.Context, a: Path, b: Path, fmt: str, exit_code: bool) -> None:
    """Compare two archives (or two pylock .toml files): packages, hashes, API, files."""
    import json
    import os
    import sys

    from photonpack.diff import diff, load_side
    from photonpack.diff_render import render_markdown, render_text

    result = diff(load_side(a), load_side(b))
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(render_markdown(result), nl=False)
    else:
        colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        click.echo(render_text(result, colour=colour), nl=False, color=colour)
    if exit_code:
        ctx.exit(result.exit_code)


@cli.command()
@click.argument("archive", type=_ARCHIVE)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE."
)
def sbom(archive: Path, output: Path | None) -> None:
    """Print a deterministic CycloneDX 1.6 JSON SBOM of ARCHIVE."""
    from photonpack.bundle import read_manifest
    from photonpack.sbom import sbom_bytes

    data = sbom_bytes(read_manifest(archive))
    if output is None:
        click.echo(data.decode(), nl=False)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise PhotonpackError(f"cannot write {output}: {exc.strerror or exc}") from exc


# -- lock ---------------------------------------------------------------------


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
                help="Simple index (PEP 503/691) to lock from [default: PyPI; "
                "$PHOTONPACK_INDEX_URL].",
            ),
            click.option(
                "--extra-index-url",
                "extra_index_urls",
                multiple=True,
                metavar="URL",
                help="Another index to search as well (repeatable).",
            ),
            click.option(
                "--find-links",
                "find_links",
                multiple=True,
                metavar="DIR_OR_URL",
                help="A directory of wheels or an HTML page of links (repeatable).",
            ),
        ]
    ):
        func = option(func)
    return func


def lock_options_from(
    *,
    name: str | None,
    output: Path | None,
    targets: tuple[str, ...],
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    upgrade: bool = False,
    upgrade_packages: tuple[str, ...] = (),
) -> Any:
    """Build :class:`~photonpack.lock.LockOptions` from the shared command-line options."""
    from photonpack.index import PYPI, IndexSettings
    from photonpack.lock import LockOptions
    from photonpack.target import Target

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
    )


@cli.command()
@click.option("-m", "--photon", "photon", required=True, help="file.py[:Class] or module:Class.")
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
def lock(
    photon: str,
    name: str | None,
    output: Path | None,
    targets: tuple[str, ...],
    index_url: str | None,
    extra_index_urls: tuple[str, ...],
    find_links: tuple[str, ...],
    upgrade: bool,
    upgrade_packages: tuple[str, ...],
    check: bool,
) -> None:
    """Lock a photon's requirements and serving stack into pylock.<name>.toml."""
    from photonpack.lock import check_lock, lock_inputs, lock_photon
    from photonpack.source import parse_spec

    spec = parse_spec(photon)
    options = lock_options_from(
        name=name,
        output=output,
        targets=targets,
        index_url=index_url,
        extra_index_urls=extra_index_urls,
        find_links=find_links,
        upgrade=upgrade,
        upgrade_packages=upgrade_packages,
    )
    if check:
        check_lock(spec, options)
        click.echo(f"{lock_inputs(spec, options)[0].name} is up to date")
        return
    result = lock_photon(spec, options)
    if not result.changed:
        click.echo(f"{result.path.name} is up to date")
        return
    packages = len({p.name for p in result.lock.packages})
    targets_text = ", ".join(str(t) for t in result.lock.targets)
    click.echo(
        f"locked {packages} packages, {len(result.lock.wheels())} wheels "
        f"for {targets_text} -> {result.path}"
    )


# -- build / create / remove ----------------------------------------------------


def _build_command(func: Any) -> Any:
    """The options shared by build and create."""
    func = lock_index_options(func)
    func = click.option(
        "--locked", is_flag=True, help="Fail if the lock is missing or stale instead of locking."
    )(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)
    func = click.option("-n", "--name", help="Photon name [default: from the class name].")(func)
    return click.option(
        "-m", "--photon", "photon", required=True, help="file.py[:Class] or module:Class."
    )(func)


def _do_build(
    photon: str, name: str | None, output: Path | None, locked: bool, **index: Any
) -> Any:
    import sys

    from photonpack.build import BuildOptions, build
    from photonpack.source import parse_spec

    options = BuildOptions(
        name=name,
        output=output.resolve() if output else None,
        locked=locked,
        lock=lock_options_from(name=name, output=None, **index),
    )
    with _DownloadProgress(sys.stderr.isatty()) as progress:
        result = build(parse_spec(photon), options, progress=progress)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    return result


class _DownloadProgress:
    """A progress bar of the wheels a build downloads, drawn only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        import threading

        self._enabled = enabled
        self._bar: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> _DownloadProgress | None:
        return self if self._enabled else None

    def start(self, total_bytes: int) -> None:
        import sys

        self._bar = click.progressbar(
            length=total_bytes, label="downloading wheels", file=sys.stderr
        )
        self._bar.__enter__()

    def advance(self, _wheel: Any, received: int) -> None:
        # Called from the download threads: one update at a time.
        with self._lock:
            if self._bar is not None:
                self._bar.update(received)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@cli.command()
@_build_command
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Archive to write [default: ./<name>.photon].",
)
def build(
    photon: str, name: str | None, as_json: bool, locked: bool, output: Path | None, **index: Any
) -> None:
    """Build one deterministic, content-addressed .photon archive."""
    import json

    result = _do_build(photon, name, output, locked, **index)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return
    click.echo(f"built {result.path} ({_size(result.size)})")
    click.echo(result.digest)


@cli.command()
@_build_command
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the archive here.",
)
def create(
    photon: str, name: str | None, as_json: bool, locked: bool, output: Path | None, **index: Any
) -> None:
    """Build a photon and record it in the local store under its name (see `list`)."""
    import json
    import tempfile

    from photonpack.store import Store

    with tempfile.TemporaryDirectory(prefix="photonpack-create-") as scratch:
        target = output or Path(scratch) / "photon.photon"
        result = _do_build(photon, name, target, locked, **index)
        ref = Store().set_ref(result.manifest.name, result.digest, result.size)
    if as_json:
        click.echo(json.dumps({**result.to_dict(), **ref.to_dict()}, indent=2, sort_keys=True))
        return
    click.echo(f"created {ref.name} ({_size(ref.size)}); run it with: photonpack run -n {ref.name}")
    click.echo(ref.digest)


@cli.command()
@click.option("-n", "--name", help="Name of the photon to remove from the local store.")
@click.option("--all", "remove_all", is_flag=True, help="Remove every named photon.")
def remove(name: str | None, remove_all: bool) -> None:
    """Remove named photons from the local store."""
    from photonpack.store import Store

    if (name is None) == (not remove_all):
        raise PhotonpackError("photonpack remove needs exactly one of -n NAME or --all")
    store = Store()
    refs = store.list_refs() if remove_all else [store.get_ref(name or "")]
    for ref in refs:
        store.remove_ref(ref.name)
        click.echo(f"removed {ref.name} ({ref.digest})")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="photonpack")


if __name__ == "__main__":  # pragma: no cover
    main()
