"""Serve one photon instance with uvicorn: bind, ``init()``, serve, drain.

Used by the serve entry point (:mod:`photonpack.serving.serve`) and by
``Photon.launch()``. It needs only the instance, never the loader or the
Photon class, so the SDK can call it without an import cycle.
"""

from __future__ import annotations

import errno
import math
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import uvicorn

from photonpack.serving.app import DEFAULT_MAX_BODY_BYTES, build_app
from photonpack.serving.errors import PhotonpackError, ServeError, failure_location
from photonpack.serving.limits import ConnectionLimits, protocol_class
from photonpack.serving.logs import LogSettings, RequestLog, configure
from photonpack.serving.operations import serve_liveness
from photonpack.serving.shutdown import PhotonServer, ShutdownPolicy

if TYPE_CHECKING:
    from photonpack.serving.photon import Photon

__all__ = ["LEPTON_TOKEN_ENV", "TOKEN_ENV", "serve", "token_from_environment"]

TOKEN_ENV = "PHOTONPACK_TOKEN"  # noqa: S105 - a variable name, not a secret
LEPTON_TOKEN_ENV = "LEPTON_LOCAL_DEPLOYMENT_TOKEN"  # noqa: S105 - Lepton's name for it


def token_from_environment() -> str | None:
    """The bearer token from ``$PHOTONPACK_TOKEN``, else Lepton's variable; None when unset."""
    return os.environ.get(TOKEN_ENV) or os.environ.get(LEPTON_TOKEN_ENV) or None


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
    limits: ConnectionLimits | None = None,
    log_level: str | None = None,
    logs: LogSettings | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``photon`` until SIGTERM/SIGINT; ``on_ready(url)`` once the port is open.

    ``limits`` defaults to :meth:`ConnectionLimits.from_environment`, ``logs``
    to :meth:`LogSettings.from_environment` (with ``log_level`` over it); the
    shutdown periods come from the photon's class (:class:`ShutdownPolicy`).
    """
    limits = limits or ConnectionLimits.from_environment()
    logs = logs or LogSettings.from_environment(level=log_level)
    configure(logs)
    policy = ShutdownPolicy.of(type(photon))
    sock = _bind(host, port)
    liveness = _liveness(photon, host)
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
            RequestLog(app, access_log=logs.access_log),
            # The handlers are configure()'s; the access line is RequestLog's.
            log_config=None,
            log_level=logs.level,
            access_log=False,
            loop="auto",
            http=protocol_class(limits),
            # uvicorn takes whole seconds; its keep-alive timer never fires
            # before ours (limits), nor does its drain end before the policy's.
            timeout_keep_alive=math.ceil(limits.idle_timeout),
            timeout_graceful_shutdown=math.ceil(policy.timeout_graceful_shutdown),
        )
        bound_port = sock.getsockname()[1]
        url = f"http://{host}:{bound_port}" if ":" not in host else f"http://[{host}]:{bound_port}"
        server = PhotonServer(config, policy, lambda: on_ready(url) if on_ready else None)
        server.run(sockets=[sock])
        server.finished()
    finally:
        sock.close()
        if liveness is not None:
            liveness.shutdown()
            liveness.server_close()


def _liveness(photon: Photon, host: str) -> Any:
    """The liveness-only server on ``health_check_liveness_tcp_port``, open through ``init()``."""
    port = getattr(type(photon), "health_check_liveness_tcp_port", None)
    if port is None:
        return None
    try:
        return serve_liveness(host, port)
    except OSError as exc:
        raise ServeError(
            f"cannot open the liveness port {port} on {host} "
            f"({type(photon).__name__}.health_check_liveness_tcp_port): {exc.strerror or exc}; "
            "free that port or choose another"
        ) from exc
