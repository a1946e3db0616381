"""The Kubernetes API engine against a real cluster: apply, status, logs, remove.

These run only where a cluster is reachable: ``PHOTONPACK_TEST_KUBECONFIG``
(a kubeconfig whose current context may create objects in its namespace) and
``PHOTONPACK_TEST_REGISTRY`` (``host[:port]/repo`` that this machine pushes to
and the cluster pulls from). The project's machines have no API server, so
elsewhere they are skipped with that reason.
"""

from __future__ import annotations

import json
import os
import platform
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.cli import cli

KUBECONFIG = os.environ.get("PHOTONPACK_TEST_KUBECONFIG")
REGISTRY = os.environ.get("PHOTONPACK_TEST_REGISTRY")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (KUBECONFIG and REGISTRY),
        reason="no Kubernetes cluster: set PHOTONPACK_TEST_KUBECONFIG and "
        "PHOTONPACK_TEST_REGISTRY to run the Kubernetes API tests",
    ),
]


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> str:
    assert KUBECONFIG is not None
    monkeypatch.setenv("KUBECONFIG", KUBECONFIG)
    return f"pp-{uuid.uuid4().hex[:8]}"


def test_apply_status_logs_and_remove_on_a_cluster(cluster: str, counter_archive: Path) -> None:
    if not platform.python_version().startswith("3.11."):
        pytest.skip("the test base has CPython 3.11: run the tests with a Python 3.11")
    # The base must run: PHOTONPACK_TEST_BASE, else the photon's default (python:3.11-slim).
    base = os.environ.get("PHOTONPACK_TEST_BASE")
    args = ["deploy", str(counter_archive), "--name", cluster, "--registry", str(REGISTRY),
            *(["--base", base] if base else []), "--token", "s3cret", "--replicas", "2",
            "--timeout", "600"]  # fmt: skip
    first = _invoke(*args)
    try:
        assert first.exit_code == 0, first.output
        again = _invoke(*args)
        assert again.exit_code == 0, again.output
        assert f"unchanged: {cluster} (kubernetes)" in again.stderr
        state = json.loads(_invoke("deployment", "status", "-n", cluster, "--json").stdout)
        assert (state["desired"], state["ready"], state["current"]) == (2, 2, True)
        logs = _invoke("deployment", "logs", "-n", cluster)
        assert "photonpack: serving counter on http://0.0.0.0:8080" in logs.stdout
    finally:
        removed = _invoke("deployment", "remove", "-n", cluster)
    assert removed.exit_code == 0, removed.output
    assert removed.stderr == (
        f"removed {cluster}: PodDisruptionBudget {cluster}, Service {cluster}, "
        f"Deployment {cluster}, Secret {cluster}-token\n"
    )


def test_a_name_taken_by_something_else_is_refused(cluster: str, counter_archive: Path) -> None:
    from photonpack.deploy.kubeapi import KubeApi
    from photonpack.deploy.kubeconfig import load_cluster
    from photonpack.deploy.kubernetes import object_path

    api = KubeApi(load_cluster())
    namespace = api.cluster.namespace
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": cluster},
               "spec": {"ports": [{"port": 80}]}}  # fmt: skip
    api.request("POST", f"/api/v1/namespaces/{namespace}/services", service)
    try:
        image = f"{REGISTRY}@sha256:{'0' * 64}"
        result = _invoke("deploy", str(counter_archive), "--name", cluster, "--image", image)
        assert result.exit_code == 1
        assert result.stderr == (
            f"error: Service {namespace}/{cluster} exists and photonpack did not create it for "
            f"deployment {cluster!r}; choose another --name, or pass --force to take it over\n"
        )
    finally:
        api.request("DELETE", object_path("Service", namespace, cluster))
