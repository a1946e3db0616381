"""What podman says about a deployment's pod, turned into a :class:`Status` a person can act on.

The pod is the record's (``NAME-pod-0``, or ``NAME-b-pod-0`` after a rollout:
``podman.py``), its container ``POD-photon``. Readiness is asked of
``/healthz`` from the host (podman's probes need systemd timers); the reason
when not ready comes from the container's state: a crash loop or an exit
with its last log lines, out of memory, still starting.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from photonpack.deploy.manifests import DIGEST_ANNOTATION
from photonpack.deploy.podmancli import PodmanCli
from photonpack.deploy.record import Record
from photonpack.deploy.status import Status

__all__ = ["container_name", "healthy", "pod_name", "pod_status", "recorded_pod", "tail"]

LOG_LINES = 5
_KILLED = 137  # 128 + SIGKILL


def pod_name(name: str) -> str:
    """The pod ``kube play`` makes for a one-replica Deployment named ``name``."""
    return f"{name}-pod-0"


def container_name(pod: str) -> str:
    """The photon's container in ``pod``."""
    return f"{pod}-photon"


def recorded_pod(record: Record) -> str:
    """The pod serving ``record`` (records written before rollouts name none: the first)."""
    return record.pod or pod_name(record.name)


def healthy(url: str | None, timeout: float = 2) -> bool:
    """Whether ``url/healthz`` answers 200 now."""
    if url is None:
        return False
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tail(cli: PodmanCli, pod: str) -> str:
    """The container's last log lines, joined with `` | ``; a line repeated in a row, once.

    A restarted container's log holds each run's lines: a crash loop would show
    the same error once per restart.
    """
    done = cli.run("logs", "--tail", str(LOG_LINES), container_name(pod))
    text = (done.stdout + done.stderr).decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    distinct = [line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1]]
    return " | ".join(distinct) or "none"


def _pinned(container: dict[str, Any]) -> str | None:
    name = str(container.get("ImageName") or "")
    digest = container.get("ImageDigest")
    if not digest:
        return name or None
    return f"{name.partition('@')[0]}@{digest}"


def _reason(
    cli: PodmanCli, pod: str, state: dict[str, Any], restarts: int, url: str | None
) -> tuple[str, bool]:
    """(why the container does not serve, whether waiting longer will not help)."""
    status, code = state.get("Status"), state.get("ExitCode")
    if state.get("OOMKilled"):
        return (
            f"killed: out of memory ({restarts} restarts); give it more with --memory; "
            f"last log lines: {tail(cli, pod)}"
        ), True
    if restarts:
        return f"crash loop ({restarts} restarts); last log lines: {tail(cli, pod)}", True
    if status != "running":
        what = "killed (SIGKILL)" if code == _KILLED else f"exit code {code}"
        return (
            f"container {status} ({what}); last log lines: {tail(cli, pod)}",
            status in ("exited", "stopped"),
        )
    return f"starting: {url}/healthz does not answer 200 yet", False


def pod_status(cli: PodmanCli, record: Record) -> Status:
    """What runs for ``record``, compared with what was deployed."""
    pod = recorded_pod(record)
    container = cli.inspect("container", container_name(pod))
    if container is None:
        return Status.absent(record, f"no container {container_name(pod)}: deploy it again")
    state = container.get("State") or {}
    annotations = (container.get("Config") or {}).get("Annotations") or {}
    running = state.get("Status") == "running"
    ready = running and healthy(record.url)
    restarts = int(container.get("RestartCount") or 0)
    reason, crashed = (None, False) if ready else _reason(cli, pod, state, restarts, record.url)
    return Status(
        name=record.name,
        engine="podman",
        desired=1,
        updated=1,
        ready=1 if ready else 0,
        available=1 if ready else 0,
        image=record.image,
        image_running=_pinned(container),
        photon_digest=record.photon_digest,
        photon_running=annotations.get(DIGEST_ANNOTATION),
        url=record.url,
        reason=reason,
        crashed=crashed,
        restarts=restarts,
    )
