"""How a served photon stops: a bounded drain after SIGTERM, whatever its threads do.

On SIGTERM the server keeps accepting for ``incoming_traffic_grace_period``
seconds (Lepton's attribute: time for a load balancer to stop sending), then
stops accepting and lets in-flight requests finish for up to
``timeout_graceful_shutdown`` seconds; calls still running then are cancelled.
SIGINT (Ctrl-C), or a second signal, skips the traffic grace period; a second
SIGINT also skips the drain. Whatever happens inside (a hung handler thread, a
task that ignores cancellation), the process exits 0 at the latest
:data:`EXIT_MARGIN` seconds after both periods have passed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from photonpack.serving.early_stop import exit_now
from photonpack.serving.errors import PhotonDefinitionError

if TYPE_CHECKING:
    from photonpack.serving.photon import Photon

__all__ = [
    "DEFAULT_TIMEOUT_GRACEFUL_SHUTDOWN",
    "EXIT_MARGIN",
    "PhotonServer",
    "ShutdownPolicy",
    "lingering_threads",
]

DEFAULT_TIMEOUT_GRACEFUL_SHUTDOWN = 30.0
DEFAULT_INCOMING_TRAFFIC_GRACE_PERIOD = 0.0  # Lepton's was 5 s locally, 300 s on its platform
# After the drain: uvicorn's lifespan shutdown and the event loop's teardown.
EXIT_MARGIN = 2.0

logger = logging.getLogger("photonpack")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShutdownPolicy:
    """The two periods after SIGTERM, in seconds."""

    incoming_traffic_grace_period: float = DEFAULT_INCOMING_TRAFFIC_GRACE_PERIOD
    timeout_graceful_shutdown: float = DEFAULT_TIMEOUT_GRACEFUL_SHUTDOWN

    @classmethod
    def of(cls, photon_cls: type[Photon]) -> ShutdownPolicy:
        """The policy a photon class declares (Lepton's attributes); unset or None: the default."""
        values: dict[str, float] = {}
        for field in dataclasses.fields(cls):
            value = getattr(photon_cls, field.name, None)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PhotonDefinitionError(
                    f"{photon_cls.__name__}.{field.name} must be a number of seconds (0 or more) "
                    f"or None, got {value!r}"
                )
            values[field.name] = float(value)
        return cls(**values)

    @property
    def bound(self) -> float:
        """Seconds from the first signal after which the process has exited, at the latest."""
        drain = math.ceil(self.timeout_graceful_shutdown)  # uvicorn's whole seconds
        return self.incoming_traffic_grace_period + drain + EXIT_MARGIN


class PhotonServer(uvicorn.Server):
    """uvicorn, announcing readiness, following a :class:`ShutdownPolicy`, and exiting 0."""

    def __init__(
        self, config: uvicorn.Config, policy: ShutdownPolicy, on_ready: Callable[[], None]
    ) -> None:
        super().__init__(config)
        self._policy = policy
        self._on_ready = on_ready
        self._drain_at: float | None = None
        self._signalled = False
        self._disarmed = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured signal after shutdown, which would end
        # the process with -SIGTERM; a stopped photon exits 0 instead.
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

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        first, self._signalled = not self._signalled, True
        if first:
            threading.Thread(target=self._watchdog, name="photon-exit", daemon=True).start()
        grace = self._policy.incoming_traffic_grace_period
        if first and sig == signal.SIGTERM and grace > 0:
            logger.info("SIGTERM: accepting requests for %s s more, then draining", grace)
            self._drain_at = time.monotonic() + grace
        elif self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_at is not None and time.monotonic() >= self._drain_at:
            self.should_exit = True
        return await super().on_tick(counter)

    def finished(self) -> None:
        """The server has returned: stand the watchdog down unless threads are left behind."""
        if not lingering_threads():
            self._disarmed.set()

    def _watchdog(self) -> None:
        if not self._disarmed.wait(self._policy.bound):
            logger.error(
                "still running %.0f s after the signal (incoming_traffic_grace_period + "
                "timeout_graceful_shutdown + %s s); exiting now",
                self._policy.bound,
                EXIT_MARGIN,
            )
            exit_now(0)


def lingering_threads() -> list[threading.Thread]:
    """The non-daemon threads besides this one, which would keep the interpreter from exiting."""
    current = threading.current_thread()
    return [t for t in threading.enumerate() if t.is_alive() and not t.daemon and t is not current]
