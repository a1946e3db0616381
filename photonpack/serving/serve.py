"""The serve entry point: load a photon, run ``init()``, then serve it with uvicorn.

``python -m photonpack.serving.serve --entry ENTRY --host H --port P [--token T]
[--max-body-bytes N]`` is the contract with ``photonpack run``, both from source
and from an archive. ``init()`` runs before the port opens; once it is open the
line ``photonpack: serving NAME on http://H:P`` goes to stderr. SIGTERM drains
in-flight requests, then the process exits 0. This module imports only the
photon, source and runtime modules and the serving stack.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import uvicorn

from photonpack.serving.app import DEFAULT_MAX_BODY_BYTES, build_app
from photonpack.serving.errors import PhotonpackError, ServeError
from photonpack.serving.loader import failure_location, load_photon
from photonpack.serving.source import parse_spec

if TYPE_CHECKING:
    from photonpack.serving.photon import Photon

__all__ = ["main", "serve"]

TOKEN_ENV = "PHOTONPACK_TOKEN"  # noqa: S105 - a variable name, not a secret


class _Server(uvicorn.Server):
    """uvicorn, announcing readiness, and exiting 0 after a signal-driven drain."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured signal after shutdown, which would end
        # the process with -SIGTERM; a drained photon exits 0 instead.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, previous in original.items():
                signal.signal(sig, previous)


def _bind(host: str, port: int) -> socket.socket:
    """Bind (without listening) so that a busy port fails before a long ``init()``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is already in use; stop the process using it "
                "or choose another port with --port"
            ) from exc
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def serve(
    photon: Photon,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    log_level: str = "info",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``photon`` until SIGTERM/SIGINT; ``on_ready(url)`` once the port is open."""
    sock = _bind(host, port)
    try:
        try:
            photon._photon_ensure_init()
        except PhotonpackError:
            raise
        except Exception as exc:
            raise ServeError(
                f"{type(photon).__name__}.init() failed at {failure_location(exc)}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        app = build_app(photon, token=token, max_body_bytes=max_body_bytes, init=False)
        config = uvicorn.Config(
            app, log_level=log_level, access_log=False, loop="auto", http="auto"
        )
        bound_port = sock.getsockname()[1]
        url = f"http://{host}:{bound_port}" if ":" not in host else f"http://[{host}]:{bound_port}"
        server = _Server(config, lambda: on_ready(url) if on_ready else None)
        server.run(sockets=[sock])
    finally:
        sock.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m photonpack.serving.serve", description="Serve one photon."
    )
    parser.add_argument("--entry", required=True, help="file.py[:Class] or pkg.module:Class")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--token", default=None, help=f"bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--log-level", default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the serve entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    try:
        photon_cls = load_photon(parse_spec(args.entry))
        try:
            photon = photon_cls()
        except PhotonpackError:
            raise
        except Exception as exc:
            raise ServeError(
                f"creating {photon_cls.__name__}() failed at {failure_location(exc)}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

        def announce(url: str) -> None:
            sys.stderr.write(f"photonpack: serving {photon.name} on {url}\n")
            sys.stderr.flush()

        serve(
            photon,
            host=args.host,
            port=args.port,
            token=token,
            max_body_bytes=args.max_body_bytes if args.max_body_bytes > 0 else None,
            log_level=args.log_level,
            on_ready=announce,
        )
    except PhotonpackError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
