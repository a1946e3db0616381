"""The endpoint of a deployment by name, from photonpack's record of it (standard library only).

``photonpack deploy`` writes ``$PHOTONPACK_HOME/deployments/NAME.json``
(``photonpack.deploy.record``); the client travels in archives without the
packaging side, so it reads only that file's ``url`` here, lazily, when a
deployment is asked for by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from photonpack.serving.client_errors import ClientURLError

__all__ = ["deployment_url", "records_dir"]


def records_dir() -> Path:
    """``$PHOTONPACK_HOME/deployments`` (the store's home: XDG data dir by default)."""
    if home := os.environ.get("PHOTONPACK_HOME"):
        return Path(home).expanduser() / "deployments"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "photonpack" / "deployments"


def deployment_url(name: str) -> str:
    """The URL photonpack recorded for deployment ``name`` on this machine."""
    path = records_dir() / f"{name}.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ClientURLError(
            f"no deployment named {name!r} on this machine (no {path}); deploy it with "
            f"'photonpack deploy --name {name} ...', or pass the photon's URL: "
            "Client('http://host:port')"
        ) from None
    except (OSError, ValueError) as exc:
        raise ClientURLError(f"cannot read the deployment record {path}: {exc}") from exc
    url = record.get("url") if isinstance(record, dict) else None
    if not isinstance(url, str) or not url:
        namespace = record.get("namespace") or "default" if isinstance(record, dict) else "default"
        raise ClientURLError(
            f"deployment {name!r} runs in a cluster (namespace {namespace}) without an address "
            f"reachable from here; forward a port (kubectl port-forward -n {namespace} "
            f"svc/{name} 8080:80) and call Client('http://localhost:8080')"
        )
    return url
