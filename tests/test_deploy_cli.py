"""``photonpack deploy`` without a cluster: dry runs, and the bad input refused in one line.

The Kubernetes API path itself is exercised by tests/test_deploy_kubernetes.py
where a cluster is reachable; here the kubeconfig errors, a cluster that does
not answer, and every option that is wrong are checked through the CLI.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml as pyyaml
from click.testing import CliRunner, Result

from photonpack.cli import cli
from photonpack.deploy.kubeconfig import load_cluster
from tests.support.images import write_base
from tests.support.registry import free_port, stage_photon

IMAGE = "registry.example:5000/team/counter@sha256:" + "cd" * 32


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_dry_run_prints_exactly_the_objects_and_applies_nothing(
    counter_archive: Path, photonpack_home: Path
) -> None:
    result = _invoke(
        "deploy", str(counter_archive), "--image", IMAGE, "--token", "s3cret", "--replicas", "2",
        "--env", "MODEL=small", "--namespace", "models", "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    objects = list(pyyaml.safe_load_all(result.stdout))
    assert [o["kind"] for o in objects] == [
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    ]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.37.0", strict=True)
        assert obj["metadata"]["namespace"] == "models"
    assert objects[1]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    as_json = _invoke(
        "deploy", str(counter_archive), "--image", IMAGE, "--token", "s3cret", "--replicas", "2",
        "--env", "MODEL=small", "--namespace", "models", "--dry-run", "-o", "json",
    )  # fmt: skip
    assert json.loads(as_json.stdout) == objects
    json_flag = _invoke(
        "deploy", str(counter_archive), "--image", IMAGE, "--token", "s3cret", "--replicas", "2",
        "--env", "MODEL=small", "--namespace", "models", "--dry-run", "--json",
    )  # fmt: skip
    assert json_flag.stdout == as_json.stdout
    assert not (photonpack_home / "deployments").exists()


def test_dry_run_on_podman_builds_the_image_and_adds_only_a_host_port(
    counter_archive: Path, tmp_path: Path
) -> None:
    base = write_base(tmp_path / "base")
    result = _invoke(
        "deploy", str(counter_archive), "--engine", "podman", "--base", f"oci:{base}",
        "--host-port", "18123", "--dry-run", "-o", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (deployment,) = json.loads(result.stdout)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("localhost/counter@sha256:")
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP", "hostPort": 18123}
    ]
    assert "image sha256:" in result.stderr


@pytest.mark.parametrize(
    "photon", [{"exposed_port": 9000}, {"cmd": ("python", "-m", "http.server")}]
)
def test_the_container_runs_the_image_entrypoint_with_no_args_on_the_exposed_port(
    photon: dict[str, Any], tmp_path: Path, photonpack_home: Path
) -> None:
    # The entrypoint already says --port (exposed_port); args would repeat it,
    # or be appended to a Lepton cmd.
    import dataclasses

    from photonpack.archive import write_archive

    staged = stage_photon(tmp_path, "porty", [("tinydep", "1.0")])
    manifest = dataclasses.replace(
        staged.manifest, photon=dataclasses.replace(staged.manifest.photon, **photon)
    )
    archive = tmp_path / "porty.photon"
    with archive.open("wb") as out:
        write_archive(out, manifest, staged.blob_path)
    result = _invoke("deploy", str(archive), "--image", IMAGE, "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.output
    (deployment, _service) = json.loads(result.stdout)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "args" not in container
    assert "command" not in container
    port = photon.get("exposed_port", 8080)
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "registry.example/counter:v1"],
         "error: the image must be pinned by digest (repo@sha256:<64 hex>), found "
         "'registry.example/counter:v1'; deploy never runs a moving tag: pass the digest "
         "photonpack image printed\n"),
        (["--image", IMAGE, "--env", "NOEQUALS"],
         "error: --env expects KEY=VALUE, found 'NOEQUALS'\n"),
        (["--image", IMAGE, "--memory", "lots"],
         "error: --memory must be a positive Kubernetes memory quantity (e.g. 512Mi, 2Gi), "
         "found 'lots'\n"),
        (["--image", IMAGE, "--name", "Bad_Name"],
         "error: invalid deployment name 'Bad_Name': use lowercase letters, digits and hyphens, "
         "starting with a letter, ending with a letter or digit, at most 52 characters\n"),
        (["--image", IMAGE, "--engine", "podman", "--replicas", "3"],
         "error: the podman engine runs one replica (podman kube play has no scheduler); drop "
         "--replicas/--max-replicas or use --engine kubernetes\n"),
        (["--image", IMAGE, "--engine", "podman", "--gpu", "1"],
         "error: the podman engine cannot give the pod GPUs (podman kube play ignores "
         "nvidia.com/gpu); drop --gpu or use --engine kubernetes\n"),
        ([], "error: a cluster pulls images from a registry: pass --registry HOST/REPO to build "
             "and push the photon's image (or set registry in [tool.photonpack] of "
             "./pyproject.toml or in ./photonpack.toml), or --image REPO@sha256:... of one "
             "already pushed\n"),
    ],
)  # fmt: skip
def test_bad_deploy_options_are_one_line_exit_1(
    counter_archive: Path, photonpack_home: Path, args: list[str], message: str
) -> None:
    result = _invoke("deploy", str(counter_archive), *args)
    assert (result.exit_code, result.stderr) == (1, message)
    assert not (photonpack_home / "deployments").exists()


def test_no_kubeconfig_says_how_to_set_one(
    counter_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    result = _invoke("deploy", str(counter_archive), "--image", IMAGE)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no kubeconfig found ({tmp_path / 'absent'}); set KUBECONFIG to a kubeconfig "
        "file, or write ~/.kube/config (kubectl config set-cluster / set-credentials / "
        "set-context / use-context)\n"
    )


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
contexts:
- name: lab
  context:
    cluster: lab
    user: deployer
    namespace: models
{current}
users:
- name: deployer
  user:
    tokenFile: token.txt
"""


def test_kubeconfig_without_current_context_asks_for_one(
    counter_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text(KUBECONFIG.format(port=6443, current=""))
    monkeypatch.setenv("KUBECONFIG", str(config))
    result = _invoke("deploy", str(counter_archive), "--image", IMAGE)
    assert result.stderr == (
        f"error: the kubeconfig ({config}) has no current-context; pass --context NAME or run "
        "kubectl config use-context NAME\n"
    )
    unknown = _invoke("deploy", str(counter_archive), "--image", IMAGE, "--context", "prod")
    assert unknown.stderr == (
        "error: the kubeconfig has no context 'prod'; see kubectl config get-contexts\n"
    )


def test_kubeconfig_context_gives_server_namespace_and_token_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.write_text(KUBECONFIG.format(port=6443, current="current-context: lab"))
    (tmp_path / "token.txt").write_text("abc.def\n")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'none'}:{config}")
    cluster = load_cluster()
    assert (cluster.context, cluster.server, cluster.namespace) == (
        "lab",
        "https://127.0.0.1:6443",
        "models",
    )
    assert (cluster.token, cluster.insecure, cluster.source) == ("abc.def", True, config)


def test_a_cluster_that_does_not_answer_is_named_within_bounded_time(
    counter_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    config = tmp_path / "config"
    config.write_text(KUBECONFIG.format(port=port, current="current-context: lab"))
    (tmp_path / "token.txt").write_text("abc")
    monkeypatch.setenv("KUBECONFIG", str(config))
    started = time.monotonic()
    result = _invoke("deploy", str(counter_archive), "--image", IMAGE)
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    # The made-up image's registry cannot be read either: a warning line first.
    assert result.stderr.splitlines()[-1].startswith(
        f"error: the cluster at https://127.0.0.1:{port} does not answer within 10 s "
        "(ConnectionRefusedError: "
    )
    assert result.stderr.endswith("check the URL, the network and the context (lab)\n")


def test_status_of_an_unknown_deployment_points_at_list() -> None:
    result = _invoke("deployment", "status", "-n", "ghost")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no deployment named 'ghost' was made by photonpack")
    assert result.stderr.endswith("see 'photonpack deployment list'\n")
    assert _invoke("deployment", "list").stdout == ""
