"""The user's kubeconfig: which cluster, how to trust it, who to be (standard library only).

``$KUBECONFIG`` (the first file of the list that has the context) or
``~/.kube/config``; ``--context`` or its ``current-context``. Credentials: a
bearer ``token``/``tokenFile``, or a client certificate and key (files or
``*-data``). ``exec`` and ``auth-provider`` plugins are refused with a message.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path
from typing import Any

from photonpack.deploy.errors import DeployError
from photonpack.deploy.yamlread import load

__all__ = ["Cluster", "kubeconfig_paths", "load_cluster"]

SET_ONE = (
    "set KUBECONFIG to a kubeconfig file, or write ~/.kube/config "
    "(kubectl config set-cluster / set-credentials / set-context / use-context)"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cluster:
    """Everything needed to call one cluster's API as one user."""

    context: str
    server: str
    namespace: str
    ca_data: bytes | None = None  # PEM
    insecure: bool = False
    token: str | None = None
    client_cert: bytes | None = None  # PEM
    client_key: bytes | None = None  # PEM
    source: Path | None = None


def kubeconfig_paths() -> list[Path]:
    """``$KUBECONFIG``'s files, else ``~/.kube/config``."""
    if value := os.environ.get("KUBECONFIG"):
        return [Path(part).expanduser() for part in value.split(os.pathsep) if part]
    return [Path.home() / ".kube" / "config"]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = load(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise DeployError(f"cannot read the kubeconfig {path}: {exc}; fix it or {SET_ONE}") from exc
    if not isinstance(data, dict):
        raise DeployError(f"the kubeconfig {path} is not a mapping; {SET_ONE}")
    return data


def _named(items: Any, name: str) -> dict[str, Any] | None:
    for item in items or ():
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return None


def _bytes(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    if data := entry.get(f"{key}-data"):
        return base64.b64decode(str(data))
    if file := entry.get(key):
        path = (base / str(file)).expanduser()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DeployError(f"cannot read {key} {path}: {exc.strerror}") from exc
    return None


def load_cluster(context: str | None = None) -> Cluster:
    """The cluster and credentials of ``context`` (the current one by default)."""
    paths = kubeconfig_paths()
    configs = [(path, _read(path)) for path in paths]
    configs = [(path, data) for path, data in configs if data]
    if not configs:
        raise DeployError(f"no kubeconfig found ({', '.join(map(str, paths))}); {SET_ONE}")
    if context is None:
        context = next((d["current-context"] for _, d in configs if d.get("current-context")), None)
        if not context:
            raise DeployError(
                f"the kubeconfig ({', '.join(str(p) for p, _ in configs)}) has no current-context; "
                "pass --context NAME or run kubectl config use-context NAME"
            )
    found = [(p, d, _named(d.get("contexts"), context)) for p, d in configs]
    source, config, entry = next(((p, d, e) for p, d, e in found if e), (None, {}, None))
    if entry is None or source is None:
        raise DeployError(
            f"the kubeconfig has no context {context!r}; see kubectl config get-contexts"
        )
    ctx = entry.get("context") or {}
    cluster = _named(config.get("clusters"), ctx.get("cluster", ""))
    user = _named(config.get("users"), ctx.get("user", "")) or {"user": {}}
    if cluster is None or not (cluster.get("cluster") or {}).get("server"):
        raise DeployError(f"context {context!r} names no cluster with a server in {source}")
    c, u, base = cluster["cluster"], user.get("user") or {}, source.parent
    if "exec" in u or "auth-provider" in u:
        raise DeployError(
            f"context {context!r} authenticates with an exec or auth-provider plugin, which "
            "photonpack does not run; use a token or a client certificate (a service account "
            "token: kubectl create token NAME)"
        )
    token = u.get("token")
    if not token and u.get("tokenFile"):
        token = (_bytes({"t": u["tokenFile"]}, "t", base) or b"").decode().strip()
    return Cluster(
        context=context,
        server=str(c["server"]).rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        ca_data=_bytes(c, "certificate-authority", base),
        insecure=bool(c.get("insecure-skip-tls-verify")),
        token=str(token) if token else None,
        client_cert=_bytes(u, "client-certificate", base),
        client_key=_bytes(u, "client-key", base),
        source=source,
    )
