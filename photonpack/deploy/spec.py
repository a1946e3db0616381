"""What a deployment is made of: the photon, its image, and the user's options.

``DeploymentSpec`` is a frozen value; ``DeploymentSpec.of`` checks every
option once (names, quantities, the photon's ``deployment_template``) so that
rendering (``manifests.py``) cannot fail. A :class:`DeploymentTemplate`
carries what a photon's ``deployment_template`` says; the manifest does not
record one yet, so today it comes only from callers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from photonpack.deploy.errors import DeployError

__all__ = [
    "DEFAULT_PORT",
    "DeploymentSpec",
    "DeploymentTemplate",
    "SecretEnv",
    "parse_env",
    "parse_secret",
]

DEFAULT_PORT = 8080
# A DNS-1123 label, short enough that "<name>-token" still is one (Services need a label).
_NAME = re.compile(r"[a-z]([a-z0-9-]{0,50}[a-z0-9])?")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CPU = re.compile(r"([0-9]+m|[0-9]+(\.[0-9]{1,3})?)")
_MEMORY = re.compile(r"[0-9]+(Ki|Mi|Gi|Ti|K|M|G|T)?")
_PINNED = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")
_RESERVED_ENV = "PHOTONPACK_TOKEN"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecretEnv:
    """An environment variable read from a key of a Kubernetes Secret."""

    env: str
    secret: str
    key: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeploymentTemplate:
    """A photon's ``deployment_template``: env defaults, what must be given, a resource shape."""

    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    required_env: tuple[str, ...] = ()
    required_secrets: tuple[str, ...] = ()
    cpu: str | None = None
    memory: str | None = None
    gpu: int = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeploymentSpec:
    """Everything the manifests are made from; build it with :meth:`of`."""

    name: str
    photon: str
    photon_digest: str
    image: str  # pinned: repo@sha256:...
    uid: int
    gid: int | None  # None: the image's own group for that uid
    replicas: int = 1
    max_replicas: int | None = None  # a HorizontalPodAutoscaler from replicas to this
    port: int = DEFAULT_PORT  # where the image serves: the photon's exposed_port
    host_port: int | None = None  # only the podman engine publishes the port on the host
    namespace: str | None = None
    token_secret: str | None = None  # the Secret whose key "token" is the bearer token
    token: str | None = None  # given by value: photonpack writes token_secret itself
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[SecretEnv, ...] = ()
    cpu: str = "1"
    memory: str = "1Gi"
    gpu: int = 0
    grace_seconds: int = 45  # above the server's bound: 30 s drain + exit margin

    @classmethod
    def of(
        cls,
        *,
        name: str,
        photon: str,
        photon_digest: str,
        image: str,
        uid: int,
        gid: int | None,
        replicas: int = 1,
        max_replicas: int | None = None,
        port: int = DEFAULT_PORT,
        host_port: int | None = None,
        namespace: str | None = None,
        token: str | None = None,
        token_secret: str | None = None,
        env: Mapping[str, str] | None = None,
        secrets: Sequence[SecretEnv] = (),
        cpu: str | None = None,
        memory: str | None = None,
        gpu: int | None = None,
        template: DeploymentTemplate | None = None,
    ) -> DeploymentSpec:
        """Check every option and apply the photon's template; DeployError names what is wrong."""
        template = template or DeploymentTemplate()
        _check_name(name, "deployment name")
        if namespace is not None:
            _check_name(namespace, "namespace")
        if not _PINNED.fullmatch(image):
            raise DeployError(
                f"the image must be pinned by digest (repo@sha256:<64 hex>), found {image!r}; "
                "deploy never runs a moving tag: pass the digest photonpack image printed"
            )
        _check_scale(replicas, max_replicas)
        _check_token(token, token_secret)
        merged = _environment(template, dict(env or {}), secrets)
        cpu_value, memory_value, gpus = _resources(template, cpu, memory, gpu)
        return cls(
            name=name,
            photon=photon,
            photon_digest=photon_digest,
            image=image,
            uid=uid,
            gid=gid,
            replicas=replicas,
            max_replicas=max_replicas,
            port=port,
            host_port=host_port,
            namespace=namespace,
            token=token,
            token_secret=f"{name}-token" if token is not None else token_secret,
            env=tuple(sorted(merged.items())),
            secrets=tuple(sorted(secrets, key=lambda s: s.env)),
            cpu=cpu_value,
            memory=memory_value,
            gpu=gpus,
        )


def _check_scale(replicas: int, max_replicas: int | None) -> None:
    if replicas < 1:
        raise DeployError(f"--replicas must be 1 or more, found {replicas}")
    if max_replicas is not None and max_replicas < replicas:
        raise DeployError(
            f"--max-replicas ({max_replicas}) must be at least --replicas ({replicas})"
        )


def _check_token(token: str | None, token_secret: str | None) -> None:
    if token is not None and token_secret is not None:
        raise DeployError("pass either --token or --token-secret, not both")
    if token is not None and not token.strip():
        raise DeployError("the token is empty; pass a non-empty --token or none at all")
    if token_secret is not None:
        _check_name(token_secret, "token secret name")


def _environment(
    template: DeploymentTemplate, env: dict[str, str], secrets: Sequence[SecretEnv]
) -> dict[str, str]:
    """The template's env defaults under the given ones, every required name checked."""
    merged = dict(template.env) | env
    for key in merged:
        _check_env(key)
    missing = [key for key in template.required_env if key not in merged]
    if missing:
        raise DeployError(
            f"the photon requires environment variables {', '.join(missing)}, not given; "
            f"pass --env {missing[0]}=VALUE"
        )
    for secret in secrets:
        _check_env(secret.env)
        _check_name(secret.secret, f"secret name of {secret.env}")
    given = {secret.env for secret in secrets}
    absent = [key for key in template.required_secrets if key not in given]
    if absent:
        raise DeployError(
            f"the photon requires secrets {', '.join(absent)}, not given; "
            f"pass --secret {absent[0]}=SECRET[:KEY] naming an existing Secret"
        )
    return merged


def _resources(
    template: DeploymentTemplate, cpu: str | None, memory: str | None, gpu: int | None
) -> tuple[str, str, int]:
    cpu_value = cpu or template.cpu or DeploymentSpec.cpu
    memory_value = memory or template.memory or DeploymentSpec.memory
    if not _CPU.fullmatch(cpu_value) or cpu_value in ("0", "0m"):
        raise DeployError(
            f"--cpu must be a positive Kubernetes CPU quantity (e.g. 1, 0.5, 500m), "
            f"found {cpu_value!r}"
        )
    if not _MEMORY.fullmatch(memory_value) or int(re.sub("[A-Za-z]", "", memory_value)) == 0:
        raise DeployError(
            f"--memory must be a positive Kubernetes memory quantity (e.g. 512Mi, 2Gi), "
            f"found {memory_value!r}"
        )
    gpus = template.gpu if gpu is None else gpu
    if gpus < 0:
        raise DeployError(f"--gpu must be 0 or more, found {gpus}")
    return cpu_value, memory_value, gpus


def _check_name(name: str, what: str) -> None:
    if not _NAME.fullmatch(name):
        raise DeployError(
            f"invalid {what} {name!r}: use lowercase letters, digits and hyphens, starting "
            "with a letter, ending with a letter or digit, at most 52 characters"
        )


def _check_env(key: str) -> None:
    if not _ENV.fullmatch(key):
        raise DeployError(
            f"invalid environment variable name {key!r}: use letters, digits and '_', "
            "not starting with a digit"
        )
    if key == _RESERVED_ENV:
        raise DeployError(
            f"{_RESERVED_ENV} is the server's token: pass --token or --token-secret instead"
        )


def parse_env(items: Sequence[str]) -> dict[str, str]:
    """``K=V`` options as a dict; DeployError for an item without ``=``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise DeployError(f"--env expects KEY=VALUE, found {item!r}")
        out[key] = value
    return out


def parse_secret(item: str) -> SecretEnv:
    """``ENV=SECRET[:KEY]`` (KEY defaults to ENV) as a :class:`SecretEnv`."""
    env, sep, rest = item.partition("=")
    secret, _, key = rest.partition(":")
    if not sep or not env or not secret:
        raise DeployError(
            f"--secret expects ENV=SECRET[:KEY] (the variable, the Secret, its key), found {item!r}"
        )
    return SecretEnv(env=env, secret=secret, key=key or env)
