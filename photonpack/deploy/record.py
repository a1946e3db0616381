"""What photonpack deployed, remembered under ``$PHOTONPACK_HOME/deployments/``.

One JSON file per deployment name (``NAME.json``) and the manifests applied
(``NAME.yaml``). The client finds a deployment's endpoint by name in the JSON
(``photonpack.serving.deployments`` reads it with the standard library only);
``status`` compares what runs with what was deployed; ``remove`` takes away
exactly what the record lists.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from photonpack._fs import write_atomic
from photonpack.deploy.errors import DeployError
from photonpack.store.names import default_home

__all__ = ["Record", "Records"]

RECORD_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class Record:
    """One deployment as photonpack made it."""

    name: str
    engine: str  # "podman" | "kubernetes"
    photon: str
    photon_digest: str
    image: str
    url: str | None  # where the client reaches it from this machine, when known
    namespace: str | None = None
    context: str | None = None
    token_secret: str | None = None
    created_secrets: tuple[str, ...] = ()  # Secrets photonpack made, removed with the deployment
    objects: tuple[tuple[str, str], ...] = ()  # (kind, name) applied
    token_sha256: str | None = None  # a token given by value, to see whether it changed
    host_port: int | None = None
    pod: str | None = None  # podman: the pod serving it (NAME-pod-0 or NAME-b-pod-0)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``version`` first)."""
        data = dataclasses.asdict(self)
        data["created_secrets"] = list(self.created_secrets)
        data["objects"] = [{"kind": kind, "name": name} for kind, name in self.objects]
        return {"version": RECORD_VERSION} | data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Read the JSON form back; KeyError/TypeError for a malformed one."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in fields}
        values["created_secrets"] = tuple(values.get("created_secrets", ()))
        values["objects"] = tuple((o["kind"], o["name"]) for o in values.get("objects", ()))
        return cls(**values)


class Records:
    """The records of one photonpack home."""

    def __init__(self, home: Path | None = None) -> None:
        self.root = (home or default_home()) / "deployments"

    def path(self, name: str) -> Path:
        """The record file of ``name``."""
        return self.root / f"{name}.json"

    def manifests_path(self, name: str) -> Path:
        """The manifests applied for ``name`` (what ``podman kube down`` takes)."""
        return self.root / f"{name}.yaml"

    def get(self, name: str) -> Record | None:
        """The record of ``name``, or None when photonpack deployed nothing by that name."""
        path = self.path(name)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DeployError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            return Record.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise DeployError(
                f"{path} is not a deployment record ({exc}); remove it by hand and deploy again"
            ) from exc

    def require(self, name: str) -> Record:
        """The record of ``name``; DeployError saying how to list them otherwise."""
        record = self.get(name)
        if record is None:
            raise DeployError(
                f"no deployment named {name!r} was made by photonpack on this machine "
                f"(no {self.path(name)}); see 'photonpack deployment list'"
            )
        return record

    def all(self) -> list[Record]:
        """Every record, by name."""
        if not self.root.is_dir():
            return []
        out = [self.get(path.stem) for path in sorted(self.root.glob("*.json"))]
        return [record for record in out if record is not None]

    def put(self, record: Record, manifests: str) -> None:
        """Write the record and its manifests (each atomically, manifests first)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomic(self.manifests_path(record.name), manifests.encode(), mode=0o600)
            data = json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"
            write_atomic(self.path(record.name), data.encode(), mode=0o600)
        except OSError as exc:
            raise DeployError(
                f"cannot write the deployment record under {self.root}: {exc.strerror}; "
                "make it writable or set PHOTONPACK_HOME"
            ) from exc

    def delete(self, name: str) -> None:
        """Forget ``name`` (its record and manifests)."""
        for path in (self.path(name), self.manifests_path(name)):
            path.unlink(missing_ok=True)
