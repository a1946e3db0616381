"""The manifests deploy renders: best-practice defaults, checked against Kubernetes' schemas.

Every variant (token or not, GPU, autoscaler, a deployment_template) passes
kubernetes-validate in strict mode for the oldest and newest Kubernetes
versions it bundles (the project supports 1.25 and later). The YAML writer is
checked by reading its output back with PyYAML.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml as pyyaml
from kubernetes_validate.utils import all_versions

from photonpack.deploy import (
    DeployError,
    DeploymentSpec,
    DeploymentTemplate,
    SecretEnv,
    dump_all,
    parse_env,
    parse_secret,
    render,
)
from photonpack.deploy.imageuser import run_as

DIGEST = "sha256:" + "ab" * 32
IMAGE = "registry.example:5000/team/counter@sha256:" + "cd" * 32
VERSIONS = (
    min(all_versions(), key=lambda v: tuple(map(int, v.split(".")))),
    max(all_versions(), key=lambda v: tuple(map(int, v.split(".")))),
)


def _spec(**options: Any) -> DeploymentSpec:
    base: dict[str, Any] = {
        "name": "counter",
        "photon": "counter",
        "photon_digest": DIGEST,
        "image": IMAGE,
        "uid": 1000,
        "gid": 1000,
    }
    return DeploymentSpec.of(**(base | options))


VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "token": {"token": "s3cret"},
    "token-secret": {"token_secret": "shared-token", "namespace": "models"},
    "gpu": {"gpu": 2, "cpu": "4", "memory": "16Gi"},
    "autoscaler": {"replicas": 2, "max_replicas": 6, "token": "t"},
    "template": {
        "template": DeploymentTemplate(
            env={"MODEL": "small", "LOG": "info"},
            required_env=("MODEL",),
            required_secrets=("HF_TOKEN",),
            cpu="500m",
            memory="2Gi",
            gpu=1,
        ),
        "env": {"LOG": "debug"},
        "secrets": (SecretEnv(env="HF_TOKEN", secret="hf", key="token"),),
    },
}


def test_versions_checked_are_the_oldest_and_newest_bundled() -> None:
    assert VERSIONS[0].startswith("1.25") and VERSIONS[1] == "1.37.0"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_passes_the_strict_kubernetes_schema(variant: str, version: str) -> None:
    for obj in render(_spec(**VARIANTS[variant])):
        kubernetes_validate.validate(obj, version, strict=True)


def test_yaml_output_reads_back_as_the_same_objects() -> None:
    objects = render(_spec(**VARIANTS["autoscaler"]))
    assert list(pyyaml.safe_load_all(dump_all(objects))) == objects
    assert json.loads(json.dumps(objects)) == objects


def test_plain_deployment_has_the_best_practice_defaults() -> None:
    (deployment, service) = render(_spec())
    assert [deployment["kind"], service["kind"]] == ["Deployment", "Service"]
    labels = deployment["metadata"]["labels"]
    assert labels["dev.photonpack.photon.name"] == "counter"
    assert labels["dev.photonpack.photon.digest"] == "ab" * 6
    assert deployment["metadata"]["annotations"]["dev.photonpack.photon.digest"] == DIGEST
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 45
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert "args" not in container  # the image's entrypoint has the port
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["failureThreshold"] * 5 == 300
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert container["env"] == []
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]


def test_token_lives_in_a_secret_read_through_value_from() -> None:
    secret, deployment, _ = render(_spec(token="s3cret"))
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "counter-token"
    assert secret["data"] == {"token": "czNjcmV0"}
    text = json.dumps(deployment)
    assert "s3cret" not in text and "czNjcmV0" not in text
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [
        {
            "name": "PHOTONPACK_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "counter-token", "key": "token"}},
        }
    ]


def test_gpu_autoscaler_and_disruption_budget() -> None:
    kinds = [obj["kind"] for obj in render(_spec(gpu=1, replicas=2, max_replicas=5))]
    assert kinds == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    deployment, _, hpa, pdb = render(_spec(gpu=1, replicas=2, max_replicas=5))
    assert "replicas" not in deployment["spec"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert pdb["spec"]["maxUnavailable"] == 1


def test_template_env_defaults_are_overridden_by_the_command_line() -> None:
    deployment = render(_spec(**VARIANTS["template"]))[0]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [
        {"name": "LOG", "value": "debug"},
        {"name": "MODEL", "value": "small"},
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
    ]
    assert container["resources"]["limits"] == {
        "cpu": "500m",
        "memory": "2Gi",
        "nvidia.com/gpu": "1",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"template": DeploymentTemplate(required_env=("MODEL",))},
            "the photon requires environment variables MODEL, not given; pass --env MODEL=VALUE",
        ),
        (
            {"template": DeploymentTemplate(required_secrets=("HF_TOKEN",))},
            "the photon requires secrets HF_TOKEN, not given; "
            "pass --secret HF_TOKEN=SECRET[:KEY] naming an existing Secret",
        ),
        (
            {"image": "registry.example/team/counter:v1"},
            "the image must be pinned by digest (repo@sha256:<64 hex>), found "
            "'registry.example/team/counter:v1'; deploy never runs a moving tag: pass the "
            "digest photonpack image printed",
        ),
        (
            {"name": "Counter"},
            "invalid deployment name 'Counter': use lowercase letters, digits and hyphens, "
            "starting with a letter, ending with a letter or digit, at most 52 characters",
        ),
        ({"cpu": "lots"}, "--cpu must be a positive Kubernetes CPU quantity (e.g. 1, 0.5, "
         "500m), found 'lots'"),
        ({"memory": "0"}, "--memory must be a positive Kubernetes memory quantity (e.g. 512Mi, "
         "2Gi), found '0'"),
        ({"replicas": 3, "max_replicas": 2}, "--max-replicas (2) must be at least --replicas (3)"),
        ({"token": "a", "token_secret": "b"}, "pass either --token or --token-secret, not both"),
        ({"env": {"PHOTONPACK_TOKEN": "x"}},
         "PHOTONPACK_TOKEN is the server's token: pass --token or --token-secret instead"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_with_the_reason(options: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError) as info:
        _spec(**options)
    assert str(info.value) == message


def test_env_and_secret_options_parse() -> None:
    assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    assert parse_secret("HF_TOKEN=hf") == SecretEnv(env="HF_TOKEN", secret="hf", key="HF_TOKEN")
    assert parse_secret("K=s:key") == SecretEnv(env="K", secret="s", key="key")
    with pytest.raises(DeployError, match=r"--env expects KEY=VALUE, found 'A'"):
        parse_env(["A"])


def test_an_image_without_a_group_leaves_run_as_group_to_the_image() -> None:
    (_, deployment, _) = render(_spec(uid=1001, gid=None, token="t"))
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert "runAsGroup" not in pod["containers"][0]["securityContext"]
    kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


@pytest.mark.parametrize(
    ("user", "expected"),
    [("1000:1000", (1000, 1000)), ("1001", (1001, None)), (" 65532:65532 ", (65532, 65532))],
)
def test_an_image_runs_as_the_numeric_user_of_its_config(
    user: str, expected: tuple[int, int | None]
) -> None:
    assert run_as({"config": {"User": user}}, "img@sha256:x") == expected


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("", "img runs as root (its config names no User) and deployments run non-root; "),
        ("0:0", "img runs as root (User '0:0') and deployments run non-root; "),
        ("app", "img runs as user 'app', a name: runAsNonRoot needs a numeric uid, and the "
         "name is only known inside the image's /etc/passwd; "),
        ("1000:staff", "img runs as user '1000:staff', a name: "),
    ],
)  # fmt: skip
def test_an_image_that_runs_as_root_or_a_named_user_is_refused(user: str, message: str) -> None:
    with pytest.raises(DeployError) as info:
        run_as({"config": {"User": user}}, "img")
    assert str(info.value).startswith(message)
    assert str(info.value).endswith(
        "give the image a non-root numeric USER (for example USER 1000:1000) and push it again"
    )
