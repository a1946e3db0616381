"""The Kubernetes engine: server-side apply of the manifests, status, logs and removal by the API.

Apply is all or none: every object is first applied with ``dryRun=All`` (the
server validates and admits each), then for real under the ``photonpack``
field manager; an object that fails then has the ones this deploy created
deleted again. Objects of the deployment's name that photonpack did not make
(no ``app.kubernetes.io/managed-by: photonpack`` label for this instance) are
refused unless ``force``. Applying the same photon again changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime
import queue
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

from photonpack.deploy.errors import DeployError
from photonpack.deploy.kubeapi import KubeApi, KubeApiError
from photonpack.deploy.kubeconfig import load_cluster
from photonpack.deploy.kubereasons import event_lines, event_reason, pod_reason
from photonpack.deploy.manifests import DIGEST_ANNOTATION, MANAGED_BY, NAME_LABEL, render
from photonpack.deploy.record import Record, Records
from photonpack.deploy.spec import DeploymentSpec
from photonpack.deploy.status import Status
from photonpack.deploy.yaml import dump_all

__all__ = ["KubernetesEngine", "object_path"]

FIELD_MANAGER = "photonpack"
_APIS = {
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
}
_SINCE = re.compile(r"([0-9]+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def object_path(kind: str, namespace: str, name: str) -> str:
    """The API path of one object."""
    return f"{_APIS[kind].format(ns=namespace)}/{name}"


def _ours(obj: dict[str, Any], name: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(
        labels.get("app.kubernetes.io/managed-by") == MANAGED_BY and labels.get(NAME_LABEL) == name
    )


class KubernetesEngine:
    """Deployments on one cluster, as one user."""

    def __init__(self, api: KubeApi, records: Records | None = None) -> None:
        self.api = api
        self.records = records or Records()

    @classmethod
    def from_kubeconfig(cls, *, context: str | None = None) -> KubernetesEngine:
        """The engine for ``context`` of the user's kubeconfig."""
        return cls(KubeApi(load_cluster(context)))

    # -- apply ----------------------------------------------------------------------------

    def deploy(
        self, spec: DeploymentSpec, *, force: bool = False, timeout: float = 300
    ) -> tuple[Record, bool]:
        """Apply ``spec``'s objects (all or none) and wait until ready; (record, changed)."""
        namespace = spec.namespace or self.api.cluster.namespace
        spec = dataclasses.replace(spec, namespace=namespace)
        objects = render(spec)
        before = {}
        for obj in objects:
            kind, name = obj["kind"], obj["metadata"]["name"]
            existing = self.api.get(object_path(kind, namespace, name))
            if existing is not None and not force and not _ours(existing, spec.name):
                raise DeployError(
                    f"{kind} {namespace}/{name} exists and photonpack did not create it for "
                    f"deployment {spec.name!r}; choose another --name, or pass --force to take "
                    "it over"
                )
            before[kind, name] = existing
        self._check_secrets(spec, namespace)
        for obj in objects:
            self._apply(obj, namespace, dry_run=True)
        applied: list[dict[str, Any]] = []
        for obj in objects:
            try:
                applied.append(self._apply(obj, namespace, dry_run=False))
            except DeployError as exc:
                self._undo(objects[: len(applied)], before, namespace)
                raise DeployError(
                    f"applying {obj['kind']} {obj['metadata']['name']} failed, the objects this "
                    f"deploy created were deleted again: {exc}"
                ) from exc
        changed = any(
            (before[o["kind"], o["metadata"]["name"]] or {})
            .get("metadata", {})
            .get("resourceVersion")
            != a.get("metadata", {}).get("resourceVersion")
            for o, a in zip(objects, applied, strict=True)
        )
        record = Record(
            name=spec.name,
            engine="kubernetes",
            photon=spec.photon,
            photon_digest=spec.photon_digest,
            image=spec.image,
            url=None,
            namespace=namespace,
            context=self.api.cluster.context,
            token_secret=spec.token_secret,
            created_secrets=(spec.token_secret,) if spec.token and spec.token_secret else (),
            objects=tuple((o["kind"], o["metadata"]["name"]) for o in objects),
        )
        self.records.put(record, dump_all(o for o in objects if o["kind"] != "Secret"))
        self.wait_ready(spec.name, timeout)
        return record, changed

    def _apply(self, obj: dict[str, Any], namespace: str, *, dry_run: bool) -> Any:
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        path = object_path(obj["kind"], namespace, obj["metadata"]["name"])
        try:
            return self.api.request(
                "PATCH",
                f"{path}?{urllib.parse.urlencode(query)}",
                obj,
                content_type="application/apply-patch+yaml",
            )
        except KubeApiError as exc:
            if dry_run:
                raise DeployError(
                    f"nothing applied: the cluster rejects {obj['kind']} "
                    f"{obj['metadata']['name']}: {exc}"
                ) from exc
            raise

    def _undo(self, objects: list[dict[str, Any]], before: dict[Any, Any], namespace: str) -> None:
        for obj in reversed(objects):
            key = obj["kind"], obj["metadata"]["name"]
            if before.get(key) is None:
                self._delete(obj["kind"], namespace, key[1])

    def _check_secrets(self, spec: DeploymentSpec, namespace: str) -> None:
        wanted = [s.secret for s in spec.secrets]
        if spec.token is None and spec.token_secret is not None:
            wanted.append(spec.token_secret)
        for secret in sorted(set(wanted)):
            if self.api.get(object_path("Secret", namespace, secret)) is None:
                raise DeployError(
                    f"the secret {secret!r} does not exist in namespace {namespace}; create it "
                    f"first (kubectl create secret generic {secret} -n {namespace} "
                    "--from-file=KEY=FILE)"
                )

    def wait_ready(self, name: str, timeout: float) -> Status:
        """Poll until every replica is ready; DeployError with the reason otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(name)
            if status.ready >= status.desired and status.updated >= status.desired:
                return status
            if status.crashed or time.monotonic() > deadline:
                raise DeployError(
                    f"deployment {name!r} is not ready"
                    f"{'' if status.crashed else f' after {timeout:.0f} s'}: {status.reason}"
                )
            time.sleep(1)

    # -- status, logs, remove -------------------------------------------------------------

    def _pods(self, record: Record) -> list[dict[str, Any]]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(_selector(record).items()))
        query = urllib.parse.urlencode({"labelSelector": labels})
        found = self.api.request("GET", f"/api/v1/namespaces/{record.namespace}/pods?{query}")
        return sorted((found or {}).get("items", []), key=lambda p: p["metadata"]["name"])

    def status(self, name: str) -> Status:
        """Replicas, what runs, the recent warnings, and a reason a person can act on."""
        record = self.records.require(name)
        namespace = record.namespace or "default"
        dep = self.api.get(object_path("Deployment", namespace, name))
        if dep is None:
            return Status.absent(record, f"no Deployment {namespace}/{name}: deploy it again")
        state = dep.get("status") or {}
        pods = self._pods(record)
        desired = int((dep.get("spec") or {}).get("replicas") or 0)
        ready = int(state.get("readyReplicas") or 0)
        reason, crashed = pod_reason(pods, record.image, lambda pod: self._tail(record, pod))
        events: tuple[str, ...] = ()
        if ready < desired:
            found = self._events(namespace)
            names = {p["metadata"]["name"] for p in pods}
            events = event_lines(found, name, names)
            if reason is None:
                reason, crashed = event_reason(found, name, names)
        conditions = tuple(
            f"{c.get('type')}={c.get('status')} ({c.get('reason', '')})"
            for c in state.get("conditions") or ()
        )
        image_running, photon_running = _running(record, pods)
        if reason is None and ready < desired:
            reason = f"waiting for {desired - ready} replica(s) to pass /healthz"
        return Status(
            name=name,
            engine="kubernetes",
            desired=desired,
            updated=int(state.get("updatedReplicas") or 0),
            ready=ready,
            available=int(state.get("availableReplicas") or 0),
            image=record.image,
            image_running=image_running,
            photon_digest=record.photon_digest,
            photon_running=photon_running,
            url=f"service {name}.{namespace}:80 (context {record.context})",
            reason=reason,
            crashed=crashed,
            restarts=sum(
                int(s.get("restartCount") or 0)
                for p in pods
                for s in (p.get("status") or {}).get("containerStatuses") or ()
            ),
            conditions=conditions,
            events=events,
        )

    def _events(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's Warning events (an answer refused is no events, not an error)."""
        query = urllib.parse.urlencode({"fieldSelector": "type=Warning"})
        try:
            found = self.api.request("GET", f"/api/v1/namespaces/{namespace}/events?{query}")
        except KubeApiError:
            return []  # a role without "list events": status still tells the rest
        return list((found or {}).get("items", []))

    def _tail(self, record: Record, pod: str) -> str:
        path = f"/api/v1/namespaces/{record.namespace}/pods/{pod}/log?tailLines=5&previous=true"
        try:
            text = self.api.request("GET", path)
        except DeployError:
            return "none"
        lines = str(text or "").splitlines()
        return " | ".join(line.strip() for line in lines if line.strip()) or "none"

    def logs(self, name: str, *, follow: bool = False, since: str | None = None) -> Iterator[str]:
        """The log lines of every pod, each prefixed ``[POD]`` when there are several."""
        record = self.records.require(name)
        pods = [p["metadata"]["name"] for p in self._pods(record)]
        if not pods:
            raise DeployError(f"deployment {name!r} has no pod; see its status")
        query = urllib.parse.urlencode(_log_query(follow, since))
        base = f"/api/v1/namespaces/{record.namespace}/pods"
        paths = {pod: f"{base}/{pod}/log?{query}" for pod in pods}
        if len(pods) == 1:
            return self.api.lines(paths[pods[0]])
        if not follow:
            return (f"[{pod}] {line}" for pod in pods for line in self.api.lines(paths[pod]))
        return _merged({pod: self.api.lines(path) for pod, path in paths.items()})

    def _delete(self, kind: str, namespace: str, name: str) -> bool:
        try:
            self.api.request("DELETE", object_path(kind, namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def remove(self, name: str) -> list[str]:
        """Delete every object the record lists; what was there."""
        record = self.records.require(name)
        namespace = record.namespace or "default"
        removed = [
            f"{kind} {name_}"
            for kind, name_ in reversed(record.objects)
            if self._delete(kind, namespace, name_)
        ]
        self.records.delete(name)
        return removed


def _log_query(follow: bool, since: str | None) -> dict[str, str]:
    query = {"follow": "true"} if follow else {}
    if since is None:
        return query
    match = _SINCE.fullmatch(since)
    if match is not None:
        return query | {"sinceSeconds": str(int(match.group(1)) * _UNITS[match.group(2)])}
    try:
        when = datetime.datetime.fromisoformat(since)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise DeployError(
            f"--since expects a duration such as 30s, 10m, 2h or an RFC 3339 time such as "
            f"2026-12-02T14:00:00Z, found {since!r}"
        )
    stamp = when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return query | {"sinceTime": stamp}


def _merged(streams: dict[str, Iterator[str]]) -> Iterator[str]:
    """Lines of several followed logs as they come, each prefixed ``[POD]``."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(pod: str, stream: Iterator[str]) -> None:
        try:
            for line in stream:
                lines.put(f"[{pod}] {line}")
        except DeployError as exc:
            lines.put(f"[{pod}] (its log stopped: {exc})")
        finally:
            lines.put(None)

    for pod, stream in streams.items():
        threading.Thread(target=pump, args=(pod, stream), daemon=True, name=f"logs-{pod}").start()
    open_streams = len(streams)
    while open_streams:
        line = lines.get()
        if line is None:
            open_streams -= 1
        else:
            yield line


def _selector(record: Record) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": MANAGED_BY, NAME_LABEL: record.name}


def _running(record: Record, pods: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The image (repo@digest) and photon digest of the newest running pod."""
    repository = record.image.partition("@")[0]
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True):
        photon = ((pod.get("metadata") or {}).get("annotations") or {}).get(DIGEST_ANNOTATION)
        for container in (pod.get("status") or {}).get("containerStatuses") or ():
            image_id = str(container.get("imageID") or "")
            if "sha256:" in image_id:
                return f"{repository}@sha256:{image_id.rpartition('sha256:')[2]}", photon
        return None, photon
    return None, None
