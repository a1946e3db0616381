"""A :class:`DeploymentSpec` -> Kubernetes objects, as dicts. Pure: no I/O.

``render`` returns, in apply order: the token's ``Secret`` (when the token was
given by value), the ``Deployment``, the ``Service``, and a
``HorizontalPodAutoscaler`` (``max_replicas``) and ``PodDisruptionBudget``
(two replicas or more) when they apply. Best practice by default:

- the image by digest, run with its own entrypoint and no ``args``: it serves
  on the photon's ``exposed_port`` (``spec.port``, the ``containerPort``), or
  runs the photon's ``cmd``; labels with the photon's name and digest (a label value
  holds 63 characters, so the label has the digest's first 12 hex digits and
  the annotation ``dev.photonpack.photon.digest`` the whole digest);
- probes on ``/healthz``: readiness, liveness (the server has no ``/livez``,
  so liveness asks ``/healthz`` too) and a startup probe that allows five
  minutes for ``init()``; the token guard leaves ``/healthz`` open;
- ``terminationGracePeriodSeconds`` above the server's shutdown bound;
  a rolling update with ``maxUnavailable: 0``;
- non-root as the image's ``lepton`` uid, read-only root filesystem with an
  ``emptyDir`` on ``/tmp``, no privilege escalation, all capabilities dropped,
  the runtime's default seccomp profile, no service-account token;
- requests equal to limits (cpu, memory, ``nvidia.com/gpu``);
- the token read from a Secret through ``env.valueFrom`` (base64 in ``data``).
"""

from __future__ import annotations

import base64
from typing import Any

from photonpack.deploy.spec import DeploymentSpec

__all__ = [
    "DIGEST_ANNOTATION",
    "MANAGED_BY",
    "NAME_LABEL",
    "PHOTON_DIGEST_LABEL",
    "PHOTON_LABEL",
    "render",
    "selector",
]

MANAGED_BY = "photonpack"
NAME_LABEL = "app.kubernetes.io/instance"
PHOTON_LABEL = "dev.photonpack.photon.name"
PHOTON_DIGEST_LABEL = "dev.photonpack.photon.digest"
DIGEST_ANNOTATION = "dev.photonpack.photon.digest"
IMAGE_ANNOTATION = "dev.photonpack.image"
TOKEN_ENV = "PHOTONPACK_TOKEN"  # noqa: S105 - the variable the server reads
TOKEN_KEY = "token"  # noqa: S105 - the key in the Secret
HEALTH_PATH = "/healthz"
SERVICE_PORT = 80
STARTUP_SECONDS = 300  # a slow init() (a model to load) gets this long before liveness counts
CPU_TARGET_PERCENT = 80


def selector(spec: DeploymentSpec) -> dict[str, str]:
    """The labels that select the deployment's pods (immutable once applied)."""
    return {"app.kubernetes.io/managed-by": MANAGED_BY, NAME_LABEL: spec.name}


def _labels(spec: DeploymentSpec) -> dict[str, str]:
    hex_digest = spec.photon_digest.removeprefix("sha256:")
    return selector(spec) | {
        "app.kubernetes.io/name": spec.photon,
        PHOTON_LABEL: spec.photon,
        PHOTON_DIGEST_LABEL: hex_digest[:12],
    }


def _metadata(spec: DeploymentSpec, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if spec.namespace is not None:
        meta["namespace"] = spec.namespace
    meta["labels"] = _labels(spec)
    meta["annotations"] = {DIGEST_ANNOTATION: spec.photon_digest, IMAGE_ANNOTATION: spec.image}
    return meta


def render(spec: DeploymentSpec) -> list[dict[str, Any]]:
    """The objects to apply, in order."""
    objects: list[dict[str, Any]] = []
    if spec.token is not None:
        objects.append(token_secret(spec))
    objects += [deployment(spec), service(spec)]
    if spec.max_replicas is not None:
        objects.append(autoscaler(spec))
    if max(spec.replicas, spec.max_replicas or 0) >= 2:
        objects.append(disruption_budget(spec))
    return objects


def token_secret(spec: DeploymentSpec) -> dict[str, Any]:
    """The Secret holding a token given by value."""
    assert spec.token is not None and spec.token_secret is not None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(spec, spec.token_secret),
        "type": "Opaque",
        "data": {TOKEN_KEY: base64.b64encode(spec.token.encode()).decode()},
    }


def _probe(spec: DeploymentSpec, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": HEALTH_PATH, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _env(spec: DeploymentSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in spec.env]
    env += [
        {"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}}
        for s in spec.secrets
    ]
    if spec.token_secret is not None:
        ref = {"name": spec.token_secret, "key": TOKEN_KEY}
        env.append({"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": ref}})
    return env


def _resources(spec: DeploymentSpec) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": spec.cpu, "memory": spec.memory}
    if spec.gpu:
        amounts["nvidia.com/gpu"] = str(spec.gpu)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _run_as(spec: DeploymentSpec) -> dict[str, Any]:
    group = {} if spec.gid is None else {"runAsGroup": spec.gid}
    return {"runAsNonRoot": True, "runAsUser": spec.uid, **group}


def _container(spec: DeploymentSpec) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "containerPort": spec.port, "protocol": "TCP"}
    if spec.host_port is not None:
        port["hostPort"] = spec.host_port
    return {
        "name": "photon",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "env": _env(spec),
        "ports": [port],
        "readinessProbe": _probe(spec, 5, 3),
        "livenessProbe": _probe(spec, 10, 3),
        "startupProbe": _probe(spec, 5, STARTUP_SECONDS // 5),
        "resources": _resources(spec),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            **_run_as(spec),
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
    }


def deployment(spec: DeploymentSpec) -> dict[str, Any]:
    """The Deployment: one container, the photon's server."""
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": spec.grace_seconds,
        "securityContext": _run_as(spec) | {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(spec)],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    meta = _metadata(spec, spec.name)
    # With an autoscaler the replica count is the autoscaler's: applying one would fight it.
    replicas = {} if spec.max_replicas is not None else {"replicas": spec.replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": replicas
        | {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(spec)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
                "spec": pod,
            },
        },
    }


def service(spec: DeploymentSpec) -> dict[str, Any]:
    """A ClusterIP Service on port 80 in front of the pods' ``http`` port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, spec.name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(spec),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def autoscaler(spec: DeploymentSpec) -> dict[str, Any]:
    """Scale on CPU between ``replicas`` and ``max_replicas``."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec, spec.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": spec.replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT},
                    },
                }
            ],
        },
    }


def disruption_budget(spec: DeploymentSpec) -> dict[str, Any]:
    """At most one pod down at a time by a voluntary disruption (a node drain)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(spec, spec.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(spec)}},
    }
