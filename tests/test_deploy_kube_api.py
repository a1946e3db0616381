"""The Kubernetes engine's protocol, against a small stand-in API server over HTTP.

No API server can run on the project's machines (tests/test_deploy_kubernetes.py
runs against a real one where PHOTONPACK_TEST_KUBECONFIG is set). This stand-in
keeps objects in memory and answers server-side apply, GET, DELETE, the pod list
and logs as the API does, so that what photonpack sends and how it reacts is
checked here: one field manager, dry run first, all or none, idempotence,
ownership, status and removal.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from photonpack.cli import cli
from tests.support.registry import Registry
from tests.support.userimage import push_user_image, push_user_index


@dataclass
class FakeApi:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    reject: str | None = None  # kind refused on the real apply (not the dry run)
    reject_dry: str | None = None
    version: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    ready: bool = True  # a Deployment applied is ready at once
    pods: bool = True  # its pods exist (False: a quota refused them)
    image: str = ""  # a real image in the test registry, running as lepton (1000:1000)


def _handler(api: FakeApi) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _answer(self, status: int, body: object, kind: str = "application/json") -> None:
            data = (json.dumps(body) if kind == "application/json" else str(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _missing(self) -> None:
            self._answer(404, {"kind": "Status", "reason": "NotFound", "message": "not found"})

        def do_GET(self) -> None:
            path = self.path.partition("?")[0]
            api.calls.append(f"GET {path}")
            if path.endswith("/pods"):
                deployments = [o for o in api.objects.values() if o["kind"] == "Deployment"]
                pods = [
                    _pod(obj, i)
                    for obj in deployments
                    for i in range(obj["spec"].get("replicas", 1) if api.pods else 0)
                ]
                return self._answer(200, {"items": pods})
            if path.endswith("/events"):
                return self._answer(200, {"items": api.events})
            if path.endswith("/log"):
                api.calls.append(f"LOG {self.path}")
                pod = path.split("/")[-2]
                return self._answer(200, f"photonpack: serving counter in {pod}\n", "text/plain")
            if path in api.objects:
                return self._answer(200, api.objects[path])
            return self._missing()

        def do_PATCH(self) -> None:
            path, _, query = self.path.partition("?")
            params = urllib.parse.parse_qs(query)
            assert self.headers["Content-Type"] == "application/apply-patch+yaml"
            assert params["fieldManager"] == ["photonpack"] and params["force"] == ["true"]
            obj = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            dry = params.get("dryRun") == ["All"]
            api.calls.append(f"{'DRY' if dry else 'APPLY'} {obj['kind']}")
            if obj["kind"] == (api.reject_dry if dry else api.reject):
                return self._answer(
                    422, {"kind": "Status", "reason": "Invalid", "message": "quota exceeded"}
                )
            old = api.objects.get(path)
            same = old is not None and {k: v for k, v in old.items() if k != "status"} | {
                "metadata": old["metadata"]
            } == obj | {"metadata": old["metadata"]}
            if dry:
                return self._answer(200, old or obj)
            if not same:
                api.version += 1
                obj["metadata"]["resourceVersion"] = str(api.version)
                if obj["kind"] == "Deployment":
                    n = obj["spec"].get("replicas", 1)
                    up = n if api.ready else 0
                    obj["status"] = {"replicas": n, "updatedReplicas": up, "readyReplicas": up,
                                     "availableReplicas": up}  # fmt: skip
                api.objects[path] = obj
            return self._answer(200, api.objects[path])

        def do_DELETE(self) -> None:
            api.calls.append(f"DELETE {self.path}")
            if api.objects.pop(self.path, None) is None:
                return self._missing()
            return self._answer(200, {"kind": "Status", "status": "Success"})

    return Handler


def _pod(deployment: dict[str, Any], index: int) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    image = template["spec"]["containers"][0]["image"]
    return {
        "metadata": {"name": f"{deployment['metadata']['name']}-abc-{index}", "annotations":
                     template["metadata"]["annotations"]},
        "status": {"containerStatuses": [
            {"imageID": image, "restartCount": 0,
             "state": {"running": {}}}]},
    }  # fmt: skip


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry) -> Iterator[FakeApi]:
    api = FakeApi(image=push_user_image(registry.host, "kubeapi/counter", "1000:1000"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\nclusters:\n- name: lab\n  cluster:\n"
        f"    server: http://127.0.0.1:{server.server_address[1]}\ncontexts:\n- name: lab\n"
        "  context:\n    cluster: lab\n    user: me\n    namespace: models\nusers:\n- name: me\n"
        "  user:\n    token: abc\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    yield api
    server.shutdown()
    server.server_close()


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_apply_is_dry_run_first_then_idempotent_and_remove_deletes_what_it_made(
    fake: FakeApi, counter_archive: Path
) -> None:
    args = ("deploy", str(counter_archive), "--image", fake.image, "--token", "s3cret")
    first = _invoke(*args)
    assert first.exit_code == 0, first.output
    applies = [c for c in fake.calls if c.startswith(("DRY", "APPLY"))]
    assert applies == ["DRY Secret", "DRY Deployment", "DRY Service",
                       "APPLY Secret", "APPLY Deployment", "APPLY Service"]  # fmt: skip
    assert sorted(fake.objects) == [
        "/api/v1/namespaces/models/secrets/counter-token",
        "/api/v1/namespaces/models/services/counter",
        "/apis/apps/v1/namespaces/models/deployments/counter",
    ]
    again = _invoke(*args)
    assert "unchanged: counter (kubernetes)" in again.stderr
    state = json.loads(_invoke("deployment", "status", "-n", "counter", "--json").stdout)
    assert (state["ready"], state["desired"], state["current"]) == (1, 1, True)
    assert state["image_running"] == fake.image
    assert "photonpack: serving counter" in _invoke("deployment", "logs", "-n", "counter").stdout
    removed = _invoke("deployment", "remove", "-n", "counter")
    assert removed.stderr == (
        "removed counter: Service counter, Deployment counter, Secret counter-token\n"
    )
    assert fake.objects == {}


def test_a_rejected_object_leaves_nothing_applied(fake: FakeApi, counter_archive: Path) -> None:
    fake.reject_dry = "Service"
    result = _invoke("deploy", str(counter_archive), "--image", fake.image, "--token", "s3cret")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: nothing applied: the cluster rejects Service counter: the cluster refused "
        "PATCH /api/v1/namespaces/models/services/counter: 422 Invalid: quota exceeded\n"
    )
    assert fake.objects == {}
    fake.reject_dry, fake.reject = None, "Service"
    late = _invoke("deploy", str(counter_archive), "--image", fake.image, "--token", "s3cret")
    assert late.exit_code == 1
    assert late.stderr.startswith(
        "error: applying Service counter failed, the objects this deploy created were deleted "
        "again: "
    )
    assert fake.objects == {}


def test_an_object_photonpack_did_not_make_is_refused_unless_forced(
    fake: FakeApi, counter_archive: Path
) -> None:
    fake.objects["/api/v1/namespaces/models/services/counter"] = {
        "kind": "Service", "metadata": {"name": "counter", "labels": {"app": "other"}},
    }  # fmt: skip
    refused = _invoke("deploy", str(counter_archive), "--image", fake.image)
    assert refused.stderr == (
        "error: Service models/counter exists and photonpack did not create it for deployment "
        "'counter'; choose another --name, or pass --force to take it over\n"
    )
    assert not [c for c in fake.calls if c.startswith("APPLY")]
    forced = _invoke("deploy", str(counter_archive), "--image", fake.image, "--force")
    assert forced.exit_code == 0, forced.output


def test_a_token_secret_that_does_not_exist_is_named(fake: FakeApi, counter_archive: Path) -> None:
    result = _invoke(
        "deploy", str(counter_archive), "--image", fake.image, "--token-secret", "shared"
    )
    assert result.stderr == (
        "error: the secret 'shared' does not exist in namespace models; create it first "
        "(kubectl create secret generic shared -n models --from-file=KEY=FILE)\n"
    )


def _warning(kind: str, name: str, reason: str, message: str, when: str) -> dict[str, Any]:
    return {"type": "Warning", "reason": reason, "message": message, "lastTimestamp": when,
            "involvedObject": {"kind": kind, "name": name}, "count": 3}  # fmt: skip


def test_status_tells_the_newest_warning_of_the_pods_there_are(
    fake: FakeApi, counter_archive: Path
) -> None:
    assert _invoke("deploy", str(counter_archive), "--image", fake.image).exit_code == 0
    deployment = fake.objects["/apis/apps/v1/namespaces/models/deployments/counter"]
    deployment["status"]["readyReplicas"] = 0
    fake.events = [
        _warning("Pod", "counter-old-0", "BackOff", "a pod gone since", "2026-12-02T14:09:00Z"),
        _warning("Pod", "counter-abc-0", "FailedScheduling",
                 "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", "2026-12-02T14:05:00Z"),
        _warning("Pod", "other-abc-0", "Failed", "not this deployment", "2026-12-02T14:10:00Z"),
    ]  # fmt: skip
    status = _invoke("deployment", "status", "-n", "counter")
    assert status.exit_code == 1
    summary, *warnings = status.stdout.splitlines()
    assert summary.startswith("counter: not ready 0/1 ")
    assert summary.endswith(
        "; unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    )
    assert warnings == [
        "  warning: Pod counter-abc-0: FailedScheduling: 0/3 nodes are available: 3 Insufficient "
        "nvidia.com/gpu. (x3)"
    ]
    assert "GET /api/v1/namespaces/models/events" in fake.calls


def test_pods_refused_by_a_quota_end_the_wait_with_the_event(
    fake: FakeApi, counter_archive: Path
) -> None:
    fake.ready, fake.pods = False, False
    fake.events = [
        _warning("ReplicaSet", "counter-5d9f", "FailedCreate",
                 'pods "counter-5d9f-x" is forbidden: exceeded quota: compute',
                 "2026-12-02T14:05:00Z"),
    ]  # fmt: skip
    result = _invoke("deploy", str(counter_archive), "--image", fake.image, "--timeout", "120")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: deployment 'counter' is not ready: pods cannot be created: "
        'pods "counter-5d9f-x" is forbidden: exceeded quota: compute\n'
    )


def test_logs_of_every_replica_are_prefixed_by_pod_and_since_takes_a_time(
    fake: FakeApi, counter_archive: Path
) -> None:
    deployed = _invoke("deploy", str(counter_archive), "--image", fake.image, "--replicas", "2")
    assert deployed.exit_code == 0
    logs = _invoke("deployment", "logs", "-n", "counter", "--since", "2026-12-02T15:00:00+01:00")
    assert logs.exit_code == 0, logs.output
    assert logs.stdout.splitlines() == [
        "[counter-abc-0] photonpack: serving counter in counter-abc-0",
        "[counter-abc-1] photonpack: serving counter in counter-abc-1",
    ]
    assert [c for c in fake.calls if c.startswith("LOG")] == [
        f"LOG /api/v1/namespaces/models/pods/counter-abc-{i}/log?sinceTime=2026-12-02T14%3A00%3A00Z"
        for i in range(2)
    ]
    followed = _invoke("deployment", "logs", "-n", "counter", "-f", "--since", "10m")
    assert sorted(followed.stdout.splitlines()) == logs.stdout.splitlines()
    bad = _invoke("deployment", "logs", "-n", "counter", "--since", "yesterday")
    assert bad.exit_code == 1
    assert bad.stderr == (
        "error: --since expects a duration such as 30s, 10m, 2h or an RFC 3339 time such as "
        "2026-12-02T14:00:00Z, found 'yesterday'\n"
    )


def test_an_image_runs_as_the_user_its_config_names_not_a_fixed_uid(
    fake: FakeApi, counter_archive: Path, registry: Registry
) -> None:
    image = push_user_image(registry.host, "kubeapi/other-user", "4242:4343")
    result = _invoke("deploy", str(counter_archive), "--image", image)
    assert result.exit_code == 0, result.output
    applied = fake.objects["/apis/apps/v1/namespaces/models/deployments/counter"]
    pod = applied["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 4242
    assert pod["securityContext"]["runAsGroup"] == 4343
    assert pod["containers"][0]["securityContext"]["runAsUser"] == 4242
    assert "warning" not in result.stderr


def test_an_image_that_runs_as_root_is_refused_before_anything_is_applied(
    fake: FakeApi, counter_archive: Path, registry: Registry
) -> None:
    image = push_user_image(registry.host, "kubeapi/root-user", None)
    result = _invoke("deploy", str(counter_archive), "--image", image)
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {image} runs as root (its config names no User) and deployments run non-root; "
        "give the image a non-root numeric USER (for example USER 1000:1000) and push it again\n",
    )
    assert not [c for c in fake.calls if c.startswith(("DRY", "APPLY"))]


def test_an_index_runs_as_the_user_of_the_photons_architecture(
    fake: FakeApi, counter_archive: Path, registry: Registry
) -> None:
    import platform

    host = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    other = "arm64" if host == "amd64" else "amd64"
    image = push_user_index(registry.host, "kubeapi/index", {other: "7000:7000", host: "4545"})
    result = _invoke("deploy", str(counter_archive), "--image", image)
    assert result.exit_code == 0, result.output
    applied = fake.objects["/apis/apps/v1/namespaces/models/deployments/counter"]
    context = applied["spec"]["template"]["spec"]["securityContext"]
    assert context["runAsUser"] == 4545
    assert "runAsGroup" not in context  # the image names no group: the runtime's default
