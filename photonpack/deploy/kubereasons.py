"""Why a Kubernetes deployment does not serve, in words a person can act on. Pure: no I/O.

Two sources, the pods first: a container waiting on an image it cannot pull,
one in a crash loop (its last log lines are the caller's), a pod the scheduler
cannot place. When the pods say nothing (there may be none: a ReplicaSet
refused by a quota or an admission policy creates no pod at all), the newest
``Warning`` event of the deployment's objects (the Deployment, its
ReplicaSets ``NAME-HASH`` and pods ``NAME-HASH-ID``) is the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["event_lines", "event_reason", "pod_reason", "warnings"]

PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")
EVENT_LINES = 5
# Warning events -> what it means.
_EVENTS: Mapping[str, str] = {
    "FailedScheduling": "unschedulable",
    "FailedCreate": "pods cannot be created",
    "FailedMount": "a volume or secret cannot be mounted",
    "Failed": "the container cannot start",
    "BackOff": "backing off",
    "Unhealthy": "a probe fails",
    "ProbeWarning": "a probe warns",
}


def pod_reason(
    pods: Sequence[Mapping[str, Any]], image: str, tail: Callable[[str], str]
) -> tuple[str | None, bool]:
    """(the reason the pods give, whether waiting longer will not help)."""
    for pod in pods:
        status = pod.get("status") or {}
        for condition in status.get("conditions") or ():
            if condition.get("reason") == "Unschedulable":
                return f"unschedulable: {condition.get('message')}", True
        for container in status.get("containerStatuses") or ():
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in PULL_REASONS:
                return (
                    f"the image cannot be pulled ({waiting['reason']}): "
                    f"{waiting.get('message', image)}"
                ), True
            if waiting.get("reason") == "CrashLoopBackOff":
                last = (container.get("lastState") or {}).get("terminated") or {}
                if last.get("reason") == "OOMKilled":
                    return (
                        f"killed: out of memory ({container.get('restartCount', 0)} restarts); "
                        f"give it more with --memory; last log lines: "
                        f"{tail(pod['metadata']['name'])}"
                    ), True
                return (
                    f"crash loop ({container.get('restartCount', 0)} restarts); "
                    f"last log lines: {tail(pod['metadata']['name'])}"
                ), True
            if waiting.get("reason") == "CreateContainerConfigError":
                return f"the container cannot be created: {waiting.get('message', '')}", True
    return None, False


def _ours(event: Mapping[str, Any], name: str, pods: Collection[str]) -> bool:
    """Of the Deployment, one of its ReplicaSets, or one of the pods there are now."""
    involved = event.get("involvedObject") or {}
    kind, target = involved.get("kind"), str(involved.get("name") or "")
    if kind == "Pod":
        return target in pods
    return target == name if kind == "Deployment" else target.startswith(f"{name}-")


def _when(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def warnings(
    events: Iterable[Mapping[str, Any]], name: str, pods: Collection[str]
) -> list[Mapping[str, Any]]:
    """The deployment's Warning events, newest first (those of pods gone are left out)."""
    found = [e for e in events if e.get("type") == "Warning" and _ours(e, name, pods)]
    return sorted(found, key=_when, reverse=True)


def event_lines(
    events: Iterable[Mapping[str, Any]], name: str, pods: Collection[str]
) -> tuple[str, ...]:
    """The newest warnings as ``Kind name: Reason: message`` (what status shows)."""
    lines = []
    for event in warnings(events, name, pods)[:EVENT_LINES]:
        involved = event.get("involvedObject") or {}
        count = int(event.get("count") or 1)
        lines.append(
            f"{involved.get('kind')} {involved.get('name')}: {event.get('reason')}: "
            f"{str(event.get('message') or '').strip()}" + (f" (x{count})" if count > 1 else "")
        )
    return tuple(lines)


def event_reason(
    events: Iterable[Mapping[str, Any]], name: str, pods: Collection[str]
) -> tuple[str | None, bool]:
    """(the newest warning as a reason, whether waiting longer will not help).

    Events outlive what caused them, so only one is final: pods that cannot be
    created (a quota, an admission policy) while there is no pod at all.
    """
    for event in warnings(events, name, pods):
        meaning = _EVENTS.get(str(event.get("reason")))
        if meaning:
            final = event.get("reason") == "FailedCreate" and not pods
            return f"{meaning}: {str(event.get('message') or '').strip()}", final
    return None, False
