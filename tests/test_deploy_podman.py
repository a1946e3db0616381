"""Deployments run for real with ``--engine podman``: the counter, its token, a redeploy, removal.

One scenario walks what a user does (deploy, status, call by name, logs,
redeploy a changed photon, remove) on the session's Debian 12 base image
(rootful podman, runc, vfs, private storage: CONTAINERS.md). Few tests: vfs
copies every layer of every image.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.cli import cli
from photonpack.serving.client import Client, ClientHTTPError
from tests.support.images import DebianBase, Podman
from tests.support.index import PackageIndex
from tests.support.stack import COUNTER, build_photon, write_photon

pytestmark = [pytest.mark.containers, pytest.mark.slow]

CHANGED = (
    COUNTER
    + """
    @Photon.handler
    def double(self) -> int:
        return self.add(self.counter)
"""
)


@pytest.fixture
def engine_env(podman: Podman, monkeypatch: pytest.MonkeyPatch) -> Podman:
    """podman's private configuration, for photonpack's own podman calls too."""
    if not platform.python_version().startswith("3.11."):
        pytest.skip("the Debian 12 base has CPython 3.11: run the tests with a Python 3.11")
    for key in ("CONTAINERS_STORAGE_CONF", "CONTAINERS_CONF", "REGISTRY_AUTH_FILE"):
        monkeypatch.setenv(key, podman.env[key])
    return podman


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def cleanup(engine_env: Podman) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        _invoke("deployment", "remove", "-n", name)
        for pod in (f"{name}-pod-0", f"{name}-b-pod-0"):
            engine_env("pod", "rm", "-f", "-t", "0", pod, check=False)


def test_counter_deploys_answers_by_name_with_its_token_redeploys_and_is_removed(
    engine_env: Podman,
    debian_base: DebianBase,
    counter_archive: Path,
    real_index: PackageIndex,
    tmp_path: Path,
    cleanup: list[str],
) -> None:
    podman = engine_env
    base = f"oci:{debian_base.oci}:bookworm"
    cleanup.append("counter")
    first = _invoke(
        "deploy", str(counter_archive), "--engine", "podman", "--base", base, "--token", "s3cret"
    )
    assert first.exit_code == 0, first.output
    url = first.stdout.strip()
    assert url.startswith("http://127.0.0.1:")

    status = _invoke("deployment", "status", "-n", "counter", "--json")
    assert status.exit_code == 0, status.output
    state = json.loads(status.stdout)
    assert (state["desired"], state["ready"], state["current"]) == (1, 1, True)
    assert state["image_running"] == state["image"]
    assert state["image"].startswith("localhost/counter@sha256:")
    first_digest = state["photon_digest"]

    with Client.deployment("counter", token="s3cret") as client:
        assert (client.add(x=3), client.add(x=5), client.sub(x=2)) == (3, 8, 6)
    lepton = Client("my-workspace", "counter", "s3cret")
    assert lepton.url == url
    with pytest.raises(ClientHTTPError) as denied:
        Client.deployment("counter").add(x=1)
    assert denied.value.status == 401

    again = _invoke(
        "deploy", str(counter_archive), "--engine", "podman", "--base", base, "--token", "s3cret",
        "--json",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "unchanged: counter (podman)" in again.stderr
    record = json.loads(again.stdout)
    assert (record["changed"], record["name"], record["url"]) == (False, "counter", url)
    assert record["photon_digest"] == first_digest

    logs = _invoke("deployment", "logs", "-n", "counter")
    assert logs.exit_code == 0
    assert "photonpack: serving counter on http://0.0.0.0:8080" in logs.stdout

    changed = build_photon(
        real_index, write_photon(tmp_path / "v2", CHANGED), tmp_path / "v2.photon"
    ).path
    redeploy = _invoke(
        "deploy", str(changed), "--engine", "podman", "--base", base, "--token", "s3cret"
    )
    assert redeploy.exit_code == 0, redeploy.output
    assert redeploy.stdout.strip() == url
    state = json.loads(_invoke("deployment", "status", "-n", "counter", "--json").stdout)
    assert state["photon_running"] == state["photon_digest"] != first_digest
    with Client.deployment("counter", token="s3cret") as client:
        assert (client.add(x=2), client.double()) == (2, 4)
    # Rolled out beside the old pod, which is gone once the new one answered.
    assert podman("pod", "ps", "--format", "{{.Name}}").stdout.split() == ["counter-b-pod-0"]

    listed = _invoke("deployment", "list")
    assert listed.stdout.splitlines()[1].split()[:3] == ["counter", "podman", "counter"]

    removed = _invoke("deployment", "remove", "-n", "counter")
    assert removed.exit_code == 0, removed.output
    assert removed.stderr == "removed counter: pod counter-b-pod-0, secret counter-token\n"
    assert podman("pod", "ps", "-q").stdout == ""
    assert podman("ps", "-a", "-q").stdout == ""
    assert podman("secret", "ls", "--noheading").stdout == ""
    gone = _invoke("deployment", "status", "-n", "counter")
    assert gone.exit_code == 1
    assert "no deployment named 'counter' was made by photonpack" in gone.stderr


def test_deploy_refuses_a_pod_it_did_not_create_and_a_missing_token_secret(
    engine_env: Podman, counter_archive: Path, cleanup: list[str]
) -> None:
    image = "localhost/counter@sha256:" + "0" * 64
    engine_env("pod", "create", "--name", "clash-pod-0")
    cleanup.append("clash")
    clash = _invoke(
        "deploy", str(counter_archive), "--engine", "podman", "--name", "clash", "--image", image
    )
    assert clash.exit_code == 1
    assert clash.stderr == (
        "error: a pod named clash-pod-0 exists and photonpack did not create it for deployment "
        "'clash'; choose another --name, remove it, or pass --force to take it over\n"
    )
    missing = _invoke(
        "deploy", str(counter_archive), "--engine", "podman", "--image", image,
        "--token-secret", "nowhere",
    )  # fmt: skip
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: the secret 'nowhere' does not exist in podman; ")
    assert engine_env("pod", "ps", "-q", "--filter", "name=counter-pod-0").stdout == ""


CRASHES = """
from photonpack import Photon


class Counter(Photon):
    def init(self):
        raise RuntimeError("the model file is missing")

    @Photon.handler
    def add(self, x: int) -> int:
        return x
"""


def test_a_photon_that_crashes_at_start_is_reported_with_its_last_log_lines(
    engine_env: Podman,
    debian_base: DebianBase,
    real_index: PackageIndex,
    tmp_path: Path,
    cleanup: list[str],
) -> None:
    archive = build_photon(
        real_index, write_photon(tmp_path / "crash", CRASHES), tmp_path / "crash.photon"
    ).path
    cleanup.append("crashy")
    result = _invoke(
        "deploy", str(archive), "--engine", "podman", "--name", "crashy",
        "--base", f"oci:{debian_base.oci}:bookworm", "--timeout", "60",
    )  # fmt: skip
    assert result.exit_code == 1
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: deployment 'crashy' is not ready: ")
    assert error.endswith(
        "last log lines: error: Counter.init() failed at /home/lepton/counter.py:6: "
        "RuntimeError: the model file is missing"
    )
    status = _invoke("deployment", "status", "-n", "crashy")
    assert status.exit_code == 1
    assert status.stdout.startswith("crashy: not ready 0/1 (updated 1, available 0)")
    assert "the model file is missing" in status.stdout


def test_a_redeploy_that_crashes_rolls_back_to_the_photon_that_served(
    engine_env: Podman,
    debian_base: DebianBase,
    counter_archive: Path,
    real_index: PackageIndex,
    tmp_path: Path,
    cleanup: list[str],
) -> None:
    base = f"oci:{debian_base.oci}:bookworm"
    cleanup.append("steady")
    first = _invoke(
        "deploy", str(counter_archive), "--engine", "podman", "--name", "steady", "--base", base
    )
    assert first.exit_code == 0, first.output
    url = first.stdout.strip()
    served = json.loads(_invoke("deployment", "status", "-n", "steady", "--json").stdout)
    crashes = build_photon(
        real_index, write_photon(tmp_path / "crash", CRASHES), tmp_path / "crash.photon"
    ).path
    result = _invoke(
        "deploy", str(crashes), "--engine", "podman", "--name", "steady", "--base", base,
        "--timeout", "60",
    )  # fmt: skip
    assert result.exit_code == 1
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: deployment 'steady' is not ready: ")
    assert "RuntimeError: the model file is missing; rolled back: the previous one " in error
    assert error.endswith(f"serves again at {url}")
    state = json.loads(_invoke("deployment", "status", "-n", "steady", "--json").stdout)
    assert (state["ready"], state["current"]) == (1, True)
    assert state["photon_running"] == served["photon_digest"]
    with Client.deployment("steady") as client:
        assert client.add(x=4) == 4
    assert engine_env("pod", "ps", "--format", "{{.Name}}").stdout.split() == ["steady-pod-0"]
