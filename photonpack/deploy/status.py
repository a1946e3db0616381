"""A deployment's state as both engines report it, and its one-line summary."""

from __future__ import annotations

import dataclasses
from typing import Any

from photonpack.deploy.record import Record

__all__ = ["Status"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Status:
    """Replicas wanted and serving, what runs against what was deployed, and why not ready."""

    name: str
    engine: str
    desired: int
    updated: int
    ready: int
    available: int
    image: str  # deployed (the record's)
    image_running: str | None
    photon_digest: str  # deployed
    photon_running: str | None
    url: str | None
    reason: str | None = None  # why it is not ready, in words a person can act on
    crashed: bool = False
    restarts: int = 0
    conditions: tuple[str, ...] = ()
    events: tuple[str, ...] = ()  # recent warnings, ``Kind name: Reason: message``, newest first

    @classmethod
    def absent(cls, record: Record, reason: str) -> Status:
        """Recorded, but nothing runs."""
        return cls(
            name=record.name,
            engine=record.engine,
            desired=1,
            updated=0,
            ready=0,
            available=0,
            image=record.image,
            image_running=None,
            photon_digest=record.photon_digest,
            photon_running=None,
            url=record.url,
            reason=reason,
            crashed=True,
        )

    @property
    def current(self) -> bool:
        """Whether what runs is what was last deployed."""
        return self.image_running == self.image and self.photon_running == self.photon_digest

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form."""
        return dataclasses.asdict(self) | {
            "current": self.current,
            "conditions": list(self.conditions),
            "events": list(self.events),
        }

    def summary(self) -> str:
        """``counter: ready 1/1, photon sha256:..., image ...@sha256:... (current)``."""
        state = "ready" if self.ready >= self.desired else "not ready"
        line = (
            f"{self.name}: {state} {self.ready}/{self.desired} (updated {self.updated}, "
            f"available {self.available}), photon {self.photon_running or 'none'}, "
            f"image {self.image_running or 'none'}"
            f" ({'the ones last deployed' if self.current else 'NOT the ones last deployed'})"
        )
        if self.url:
            line += f", endpoint {self.url}"
        if self.reason:
            line += f"; {self.reason}"
        return line
