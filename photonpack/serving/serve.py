"""The serve entry point: load a photon, run ``init()``, then serve it with uvicorn.

``python -m photonpack.serving.serve --entry ENTRY --host H --port P [--token T]
[--max-body-bytes N] [--max-head-bytes N] [--head-timeout S] [--idle-timeout S]
[--log-level L] [--log-format text|json] [--[no-]access-log] [--ready-json
[--photon-digest sha256:HEX]]`` is the contract
with ``photonpack run``, both from source and from an archive. ``init()`` runs
before the port opens; once it is open the line ``photonpack: serving NAME on
http://H:P`` goes to stderr (the message of a JSON line with ``--log-format
json``). With ``--ready-json`` one JSON line (``url``, ``name``,
``photon_digest``, ``pid``) goes to stdout instead, and from then on stdout is
stderr, so nothing else ever lands on it. SIGTERM drains in-flight requests within a bounded time
(:mod:`photonpack.serving.shutdown`), then the process exits 0; before the port
opens (imports, ``init()``) it stops the process at once, exit 0, even as a
container's PID 1 (:mod:`photonpack.serving.early_stop`). Connections are held
to :mod:`photonpack.serving.limits`; the logs are :mod:`photonpack.serving.logs`'s.
This module imports only the serving package and the serving stack.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence

from photonpack.serving.early_stop import Stopped, exit_now, exit_on_sigterm, stop_on_sigterm

if __name__ == "__main__":
    # PID 1 in a container ignores a SIGTERM it has no handler for: have one
    # before the serving stack's imports below (photonpack.serving.early_stop).
    exit_on_sigterm()

from photonpack.serving.app import DEFAULT_MAX_BODY_BYTES
from photonpack.serving.errors import PhotonpackError, ServeError, failure_location
from photonpack.serving.limits import ENVIRONMENT, ConnectionLimits
from photonpack.serving.loader import load_photon
from photonpack.serving.logs import ENVIRONMENT as LOG_ENVIRONMENT
from photonpack.serving.logs import FORMATS, LEVELS, LogSettings, configure, ready
from photonpack.serving.server import LEPTON_TOKEN_ENV, TOKEN_ENV, serve, token_from_environment
from photonpack.serving.shutdown import lingering_threads
from photonpack.serving.source import parse_spec

__all__ = ["TOKEN_ENV", "main", "serve"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m photonpack.serving.serve", description="Serve one photon."
    )
    parser.add_argument("--entry", required=True, help="file.py[:Class] or pkg.module:Class")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--token",
        default=None,
        help=f"bearer token (default: ${TOKEN_ENV}, else ${LEPTON_TOKEN_ENV})",
    )
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    defaults = ConnectionLimits()
    parser.add_argument(
        "--max-head-bytes",
        type=int,
        default=None,
        help=f"request line + headers; 431 past it (default {defaults.max_head_bytes}, "
        f"${ENVIRONMENT['max_head_bytes']})",
    )
    parser.add_argument(
        "--head-timeout",
        type=float,
        default=None,
        help=f"seconds for a whole request head to arrive (default {defaults.head_timeout}, "
        f"${ENVIRONMENT['head_timeout']})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=None,
        help=f"seconds a connection may wait without a request (default "
        f"{defaults.idle_timeout}, ${ENVIRONMENT['idle_timeout']})",
    )
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default=None,
        help=f"default info, ${LOG_ENVIRONMENT['level']}",
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default=None,
        help=f"text or one JSON object a line (default text, ${LOG_ENVIRONMENT['format']})",
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"a line per request (default on, ${LOG_ENVIRONMENT['access_log']})",
    )
    parser.add_argument(
        "--ready-json", action="store_true", help="once ready, one JSON line on stdout"
    )
    parser.add_argument("--photon-digest", default=None, help="the digest --ready-json says")
    parser.add_argument(
        "--quiet", action="store_true", help="no ready line on stderr (photonpack -q run)"
    )
    return parser


def _on_ready(args: argparse.Namespace, name: str, url: str) -> None:
    """Say the port is open: a JSON line on stdout, the ready line on stderr, or nothing (-q)."""
    if args.ready_json:
        _announce_json(url, name, args.photon_digest)
    elif not args.quiet:
        ready(name, url)


def _announce_json(url: str, name: str, digest: str | None) -> None:
    """The one JSON line of ``--ready-json``; then stdout is pointed at stderr for good."""
    line = {"url": url, "name": name, "photon_digest": digest, "pid": os.getpid()}
    sys.stdout.write(json.dumps(line, sort_keys=True) + "\n")
    sys.stdout.flush()
    # The photon's own prints and any child process then write to stderr.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the serve entry point; returns the process exit code."""
    stop_on_sigterm()  # until uvicorn's handlers take over
    args = _parser().parse_args(argv)
    token = args.token or token_from_environment()
    try:
        logs = LogSettings.from_environment(
            level=args.log_level, format=args.log_format, access_log=args.access_log
        )
    except PhotonpackError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    # Before the photon is imported: its records, and a basicConfig() it calls, find ours.
    configure(logs)
    try:
        spec = parse_spec(args.entry)
        try:
            photon_cls = load_photon(spec)
        except SystemExit as exc:
            # Not this process's exit code: 3 would read as an integrity failure, 0 as success.
            raise ServeError(
                f"the photon {spec} exited during import (sys.exit({exc.code!r}) at "
                f"{failure_location(exc)}); move that call under `if __name__ == '__main__':`"
            ) from exc
        if photon_cls.cmd is not None:
            # A built archive runs cmd (photonpack run X.photon); from source the
            # handlers are what a developer is iterating on.
            logging.getLogger("photonpack").warning(
                "%s declares cmd %s: serving its handlers from source instead; "
                "photonpack run on the built archive runs that command, as Lepton did",
                photon_cls.__name__,
                list(photon_cls.cmd),
            )
        try:
            photon = photon_cls()
        except PhotonpackError:
            raise
        except Exception as exc:
            raise ServeError(
                f"creating {photon_cls.__name__}() failed at {failure_location(exc)}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

        serve(
            photon,
            host=args.host,
            port=args.port,
            token=token,
            max_body_bytes=args.max_body_bytes if args.max_body_bytes > 0 else None,
            limits=_limits(args),
            logs=logs,
            on_ready=lambda url: _on_ready(args, photon.name, url),
        )
    except PhotonpackError as exc:
        if logs.format == "json":
            logging.getLogger("photonpack").error("error: %s", exc.message)
        else:
            sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Stopped:
        logging.getLogger("photonpack").info("SIGTERM before the server was up: stopped")
    if lingering_threads():
        # Threads a handler left running would keep the interpreter waiting
        # for them at exit; the server is done, so nothing is lost.
        exit_now(0)
    return 0


def _limits(args: argparse.Namespace) -> ConnectionLimits:
    """The options given, over the environment, over the defaults."""
    limits = ConnectionLimits.from_environment()
    given = {name: getattr(args, name) for name in ENVIRONMENT if getattr(args, name) is not None}
    return dataclasses.replace(limits, **given)


if __name__ == "__main__":
    sys.exit(main())
