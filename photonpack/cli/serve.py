"""``run``: serve a photon from source, an archive, the store or a registry."""

from __future__ import annotations

from typing import Any

import click

from photonpack.cli._app import cli, verbosity
from photonpack.errors import UsageError
from photonpack.serving.logs import ENVIRONMENT as LOG_ENVIRONMENT
from photonpack.serving.logs import FORMATS, LEVELS, json_line

# -- run: serve a photon -------------------------------------------------------


def _log_env(level: str | None, form: str | None, access_log: bool | None) -> dict[str, str]:
    """The log options given, as the variables the serve entry point reads (images use them too)."""
    env = {}
    if level is not None:
        env[LOG_ENVIRONMENT["level"]] = level
    if form is not None:
        env[LOG_ENVIRONMENT["format"]] = form
    if access_log is not None:
        env[LOG_ENVIRONMENT["access_log"]] = "1" if access_log else "0"
    return env


class _Say:
    """What ``run`` tells its user before the server starts: a line, or a JSON log line."""

    def __init__(self, log_format: str | None) -> None:
        self.json = (log_format or "").strip().lower() == "json"

    def __call__(self, line: str, more: str = "") -> None:
        if verbosity() < 0:  # -q
            return
        if self.json:  # the server's stderr is one JSON object a line: so is this
            click.echo(json_line("info", "photonpack.run", line), err=True)
        else:
            click.echo(line + more, err=True)


def _parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


@cli.command()
@click.argument("archive", required=False)
@click.option("-n", "--name", help="Run the photon of this name from the local store.")
@click.option(
    "-m",
    "--module",
    "--photon",
    "module",
    metavar="SPEC",
    help="Serve from source: file.py[:Class] or pkg.module:Class.",
)
@click.option(
    "--host",
    default="0.0.0.0",  # noqa: S104 - a served photon is meant to be reached, as in Lepton
    show_default=True,
    help="Address to listen on (as in Lepton).",
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free one).",
)
@click.option("--token", help="Require 'Authorization: Bearer TOKEN' (else $PHOTONPACK_TOKEN).")
@click.option(
    "--env", "env_pairs", multiple=True, metavar="K=V", help="Set an environment variable."
)
@click.option(
    "--digest",
    metavar="sha256:HEX",
    help="Serve only if the photon is this digest (as build printed it).",
)
@click.option(
    "--skip-system-check",
    is_flag=True,
    help="Serve even if system_dependency packages are missing.",
)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS),
    help="Log records at this level and above (default: $PHOTONPACK_LOG_LEVEL, else info).",
)
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    help="text, or one JSON object a line on stderr (default: $PHOTONPACK_LOG_FORMAT, else text).",
)
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="A log line per request (default: $PHOTONPACK_ACCESS_LOG, else on).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Once the server is ready, print one JSON line (url, name, photon_digest, pid) "
    "on stdout, and nothing else there.",
)
def run(
    archive: str | None,
    name: str | None,
    module: str | None,
    host: str,
    port: int,
    token: str | None,
    env_pairs: tuple[str, ...],
    digest: str | None,
    skip_system_check: bool,
    log_level: str | None,
    log_format: str | None,
    access_log: bool | None,
    as_json: bool,
) -> None:
    """Serve a photon: from source with -m SPEC, or from ARCHIVE / -n NAME.

    From source it serves in the current environment (Lepton's `lep photon run
    --local`), from the photon's directory, through the same entry point as an
    archive (`python -m photonpack.serving.serve`). SIGTERM or Ctrl-C drains
    in-flight requests, then it exits 0. Logs go to stderr; NO_COLOR=1 turns
    their colours off on a terminal.
    """
    import os

    env = _parse_env(env_pairs)
    env.update(_log_env(log_level, log_format, access_log))
    say = _Say(env.get(LOG_ENVIRONMENT["format"]) or os.environ.get(LOG_ENVIRONMENT["format"]))
    if sum(x is not None for x in (archive, name, module)) != 1:
        raise UsageError(
            "photonpack run needs exactly one photon: ARCHIVE, -n NAME, or -m file.py[:Class]"
        )
    if module is not None and digest is not None:
        raise UsageError("--digest pins an archive, a stored name or a REF; -m serves source")
    if module is None:
        _run_stored(
            archive,
            name,
            digest=digest,
            host=host,
            port=port,
            token=token,
            env=env,
            check_system=not skip_system_check,
            say=say,
            as_json=as_json,
        )
        return
    from photonpack.launch import ServeOptions

    entry, workdir = _source_entry(module)
    # -q: not even the ready line
    options = ServeOptions(host=host, port=port, ready_json=as_json, quiet=verbosity() < 0)
    args = options.serve_flags(entry)
    shown = "localhost" if host in ("0.0.0.0", "::") else host  # noqa: S104 - display only
    say(
        f"serving {module} on http://{shown}:{port}",
        "; call it with:\n\n"
        "    from photonpack import Client, local\n"
        f"    c = Client({'local()' if port == 8080 else f'local(port={port})'}"
        f"{', token=...' if token or os.environ.get('PHOTONPACK_TOKEN') else ''})\n"
        "    c.paths()\n",
    )
    os.environ.update(env)
    if token:
        os.environ["PHOTONPACK_TOKEN"] = token  # not in argv, where `ps` would show it
    from photonpack.cli._editable import use_editable
    from photonpack.serving.source import parse_spec

    use_editable(parse_spec(module))  # -e ./mylib: its files, so an edit is live
    os.chdir(workdir)
    # The serve entry point itself, in this process: the same code path as an
    # archive run, without paying for a second interpreter start-up.
    from photonpack.serving.serve import main as serve_main

    code = serve_main(args)
    if code:
        raise SystemExit(code)


def _run_stored(
    archive: str | None,
    name: str | None,
    *,
    digest: str | None,
    host: str,
    port: int,
    token: str | None,
    env: dict[str, str],
    check_system: bool,
    say: _Say,
    as_json: bool,
) -> None:
    """Verify, install offline and serve an archive, a stored name, or a registry REF."""
    import time

    from photonpack.cli.registry import admit_photon
    from photonpack.launch import ServeOptions, exec_serve, prepare
    from photonpack.store import Store

    store = Store()
    started = time.monotonic()
    manifest = admit_photon(store, archive, name, digest)
    prepared = prepare(store, manifest, check_system=check_system, installing=_installing)
    how = "installed" if prepared.installed else "reused"
    say(
        f"verified {manifest.name} {manifest.digest}; environment {how} "
        f"for {prepared.target} in {time.monotonic() - started:.1f} s"
    )
    exec_serve(
        prepared,
        ServeOptions(
            host=host,
            port=port,
            token=token,
            env=env,
            ready_json=as_json,
            quiet=verbosity() < 0,
        ),
    )


def _installing(wheels: int) -> Any:
    """The progress line of a first install, on a terminal:
    ``installing 42 wheels into a new environment  80.1 MiB / 310.4 MiB  3.1 s``."""
    from photonpack.cli._app import progress_shown
    from photonpack.cli._progress import InstallLine

    noun = "wheel" if wheels == 1 else "wheels"
    label = f"installing {wheels} {noun} into a new environment"
    return InstallLine(label, enabled=progress_shown())


def _source_entry(module: str) -> tuple[str, str]:
    """The serve entry point's ``--entry`` for a photon from source, and its working directory."""
    from photonpack.serving.source import parse_spec

    spec = parse_spec(module)
    if spec.path is not None:
        entry = spec.path.name + (f":{spec.class_name}" if spec.class_name else "")
    else:
        entry = f"{spec.module}:{spec.class_name}"
    return entry, str(spec.directory)
