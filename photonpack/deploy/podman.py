"""The podman engine: the same manifests on one host, with ``podman kube play``.

What podman 4.3 (Debian 12) does differently, and how this module copes:

- ``kube play`` of a ``Secret`` stores it in a form its own ``secretKeyRef``
  cannot read, so the token's secret is made with ``podman secret create``
  (JSON of base64 values, the form ``secretKeyRef`` reads) from stdin, never argv;
- ``Service``, ``HorizontalPodAutoscaler`` and ``PodDisruptionBudget`` mean
  nothing to it: only the ``Deployment`` is played, with a ``hostPort`` added
  (the one difference from the Kubernetes manifests) so the endpoint is
  ``http://127.0.0.1:PORT``; one replica, no GPU;
- its probes become healthchecks run by systemd timers, which a host without
  systemd lacks: readiness is asked of ``/healthz`` from the host instead.

A redeploy rolls out as far as one host port allows. Two pods cannot hold the
same host port (podman's conmon listens on it), so the old pod cannot serve
until the new one is ready. The new pod is created beside the old one under
the other of two names (``NAME-pod-0``, ``NAME-b-pod-0``: the Deployment is
played as ``NAME`` or ``NAME-b``) without starting it; then the old pod stops,
the new one starts on the port, and the old one is removed once the new one
answers ``/healthz``. The endpoint is down from the old server's SIGTERM until
the new one is ready (its start-up and ``init()``), not for the creation of
its containers; a new photon that does not become ready is stopped and the
old pod started again, so a failed redeploy leaves the previous one serving.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from photonpack.deploy.errors import DeployError
from photonpack.deploy.manifests import MANAGED_BY, NAME_LABEL, deployment
from photonpack.deploy.podmancli import PodmanCli, free_port, last_line
from photonpack.deploy.podmanstatus import (
    container_name,
    healthy,
    pod_name,
    pod_status,
    recorded_pod,
)
from photonpack.deploy.record import Record, Records
from photonpack.deploy.spec import DeploymentSpec
from photonpack.deploy.status import Status
from photonpack.deploy.yaml import dump_all

__all__ = ["PodmanCli", "PodmanEngine", "free_port", "slots"]

SECRET_LABEL = "dev.photonpack.deployment"  # noqa: S105 - a label key
SECOND_SLOT = "-b"
POLL_SECONDS = 0.05  # /healthz from the host: cheap
INSPECT_SECONDS = 0.5  # podman container inspect (a crash?): about 0.1 s each


def slots(name: str) -> tuple[str, str]:
    """The two names the Deployment ``name`` is played under, in turn."""
    return name, f"{name}{SECOND_SLOT}"


def _played_as(spec: DeploymentSpec, slot: str) -> str:
    """The manifest ``kube play`` gets: the Deployment, named for its slot."""
    obj = deployment(spec)
    obj["metadata"]["name"] = slot
    return dump_all([obj])


class PodmanEngine:
    """Deploy, inspect, follow and remove deployments with podman."""

    def __init__(self, cli: PodmanCli | None = None, records: Records | None = None) -> None:
        self.cli = cli or PodmanCli()
        self.records = records or Records()

    def has_image(self, pinned: str) -> bool:
        """Whether podman's storage holds ``repo@sha256:...`` (then it is not loaded again)."""
        return self.cli.run("image", "exists", pinned).returncode == 0

    # -- apply ----------------------------------------------------------------------------

    def deploy(
        self, spec: DeploymentSpec, *, force: bool = False, timeout: float = 120
    ) -> tuple[Record, bool]:
        """Apply ``spec`` (a host port set) and wait until ready; (record, changed)."""
        if spec.replicas != 1 or spec.max_replicas is not None:
            raise DeployError(
                "the podman engine runs one replica (podman kube play has no scheduler); "
                "drop --replicas/--max-replicas or use --engine kubernetes"
            )
        if spec.gpu:
            raise DeployError(
                "the podman engine cannot give the pod GPUs (podman kube play ignores "
                "nvidia.com/gpu); drop --gpu or use --engine kubernetes"
            )
        assert spec.host_port is not None
        self._check_ownership(spec.name, force)
        self._check_secrets(spec)
        token_sha = hashlib.sha256(spec.token.encode()).hexdigest() if spec.token else None
        previous = self.records.get(spec.name)
        live = self._live_pod(previous)
        if (
            previous is not None
            and live is not None
            and previous.token_sha256 == token_sha
            and self._played(spec.name) == _played_as(spec, live.removesuffix("-pod-0"))
        ):
            return previous, False
        first, second = slots(spec.name)
        slot = second if live == pod_name(first) else first
        text = _played_as(spec, slot)
        created = self._token_secret(spec, previous, token_sha)
        pod = pod_name(slot)
        if self.cli.inspect("pod", pod) is not None:  # left by an interrupted deploy: ours
            self.cli.check("pod", "rm", "-f", "-t", "0", pod)
        if live is None:  # nothing serves: whatever is left may hold the port
            self._remove_other(spec.name, keep=pod)
        with tempfile.TemporaryDirectory(prefix="photonpack-deploy-") as tmp:
            path = Path(tmp) / f"{slot}.yaml"
            path.write_text(text)
            start = "--start=true" if live is None else "--start=false"
            done = self.cli.run("kube", "play", start, str(path))
        if done.returncode != 0:
            self.cli.run("pod", "rm", "-f", "-t", "0", pod)
            self._undo_secret(created, previous)
            raise DeployError(
                f"podman kube play of deployment {spec.name!r} failed, nothing left applied: "
                f"{last_line(done.stderr)}"
            )
        record = Record(
            name=spec.name,
            engine="podman",
            photon=spec.photon,
            photon_digest=spec.photon_digest,
            image=spec.image,
            url=f"http://127.0.0.1:{spec.host_port}",
            token_secret=spec.token_secret,
            created_secrets=tuple(sorted({*created, *_kept_secrets(previous, spec)})),
            objects=(("Deployment", spec.name),),
            token_sha256=token_sha,
            host_port=spec.host_port,
            pod=pod,
        )
        if live is None:
            self.records.put(record, text)
            self._wait(record, timeout)
            return record, True
        assert previous is not None
        self._switch(previous, live, record, grace=spec.grace_seconds, timeout=timeout)
        self.records.put(record, text)
        self.cli.run("pod", "rm", "-f", "-t", "0", live)
        return record, True

    def _switch(
        self, previous: Record, old: str, record: Record, *, grace: int, timeout: float
    ) -> None:
        """Stop ``old``, start the new pod on the port, wait; the old one back on failure."""
        self.cli.run("pod", "stop", "-t", str(grace), old, timeout=grace + 30)
        assert record.pod is not None
        try:
            self.cli.check("pod", "start", record.pod)
            self._wait(record, timeout)
        except DeployError as exc:
            self.cli.run("pod", "rm", "-f", "-t", "0", record.pod)
            back = self.cli.run("pod", "start", old)
            again = (
                "the previous one did not start again: " + last_line(back.stderr)
                if back.returncode != 0
                else f"the previous one ({previous.photon} {previous.photon_digest[:19]}) "
                f"serves again at {previous.url}"
            )
            if back.returncode == 0:
                try:
                    self._wait(previous, timeout)
                except DeployError as late:
                    again = f"the previous one did not become ready again: {late}"
            raise DeployError(f"{exc}; rolled back: {again}") from exc

    def _live_pod(self, record: Record | None) -> str | None:
        """The record's pod when it runs (then a redeploy rolls out beside it)."""
        if record is None:
            return None
        pod = self.cli.inspect("pod", recorded_pod(record))
        return recorded_pod(record) if pod is not None and pod.get("State") == "Running" else None

    def _played(self, name: str) -> str | None:
        try:
            return self.records.manifests_path(name).read_text()
        except OSError:
            return None

    def _check_ownership(self, name: str, force: bool) -> None:
        for slot in slots(name):
            pod = self.cli.inspect("pod", pod_name(slot))
            if pod is None or force:
                continue
            labels = pod.get("Labels") or {}
            if (
                labels.get("app.kubernetes.io/managed-by") != MANAGED_BY
                or labels.get(NAME_LABEL) != name
            ):
                raise DeployError(
                    f"a pod named {pod_name(slot)} exists and photonpack did not create it for "
                    f"deployment {name!r}; choose another --name, remove it, or pass --force "
                    "to take it over"
                )

    def _remove_other(self, name: str, *, keep: str) -> list[str]:
        """Remove the pod of the other slot, if any (a rollout cut short); what went."""
        gone = []
        for slot in slots(name):
            pod = pod_name(slot)
            if pod != keep and self.cli.inspect("pod", pod) is not None:
                self.cli.check("pod", "rm", "-f", "-t", "10", pod)
                gone.append(f"pod {pod}")
        return gone

    def _secret_exists(self, name: str) -> bool:
        return self.cli.inspect("secret", name) is not None

    def _check_secrets(self, spec: DeploymentSpec) -> None:
        wanted = [s.secret for s in spec.secrets]
        if spec.token is None and spec.token_secret is not None:
            wanted.append(spec.token_secret)
        for secret in sorted(set(wanted)):
            if not self._secret_exists(secret):
                raise DeployError(
                    f"the secret {secret!r} does not exist in podman; create it first: "
                    f'printf \'{{"KEY": "<base64 of the value>"}}\' | podman secret create '
                    f"{secret} -"
                )

    def _token_secret(
        self, spec: DeploymentSpec, previous: Record | None, token_sha: str | None
    ) -> list[str]:
        """Write the token's secret when it is new or changed; the names written."""
        if spec.token is None or spec.token_secret is None:
            return []
        name = spec.token_secret
        existing = self.cli.inspect("secret", name)
        if existing is not None:
            labels = (existing.get("Spec") or {}).get("Labels") or {}
            if labels.get(SECRET_LABEL) != spec.name:
                raise DeployError(
                    f"a podman secret named {name!r} exists and photonpack did not create it "
                    f"for deployment {spec.name!r}; remove it or pass --token-secret {name}"
                )
            if previous is not None and previous.token_sha256 == token_sha:
                return []  # the same token: the running pod keeps reading this one
            self.cli.check("secret", "rm", name)
        data = json.dumps({"token": base64.b64encode(spec.token.encode()).decode()})
        self.cli.check(
            "secret", "create", "--label", f"{SECRET_LABEL}={spec.name}", name, "-",
            stdin=data.encode(),
        )  # fmt: skip
        return [name]

    def _undo_secret(self, created: Sequence[str], previous: Record | None) -> None:
        kept = set(previous.created_secrets) if previous is not None else set()
        for name in created:
            if name not in kept:
                self.cli.run("secret", "rm", name)

    def wait_ready(self, name: str, timeout: float) -> Status:
        """Poll until ready; DeployError with the reason when it crashes or times out."""
        return self._wait(self.records.require(name), timeout)

    def _wait(self, record: Record, timeout: float) -> Status:
        started = time.monotonic()
        inspected = float("-inf")
        while True:
            now = time.monotonic()
            if now - inspected >= INSPECT_SECONDS or healthy(record.url, timeout=1):
                status = pod_status(self.cli, record)
                inspected = now
                if status.ready >= status.desired:
                    return status
                if status.crashed or now - started > timeout:
                    raise DeployError(
                        f"deployment {record.name!r} is not ready"
                        f"{'' if status.crashed else f' after {timeout:.0f} s'}: {status.reason}"
                    )
            time.sleep(POLL_SECONDS)

    # -- status, logs, remove -------------------------------------------------------------

    def status(self, name: str) -> Status:
        """What runs for ``name``, compared with what was deployed."""
        return pod_status(self.cli, self.records.require(name))

    def logs(self, name: str, *, follow: bool = False, since: str | None = None) -> Iterator[str]:
        """The server's log lines (stdout and stderr), following them with ``follow``."""
        container = container_name(recorded_pod(self.records.require(name)))
        if self.cli.inspect("container", container) is None:
            raise DeployError(f"deployment {name!r} has no container; see its status")
        args = ["logs", *(["--follow"] if follow else []), *(["--since", since] if since else [])]
        process = self.cli.popen(*args, container)
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                yield raw.decode(errors="replace").rstrip("\n")
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait()

    def remove(self, name: str) -> list[str]:
        """Take away the pods, their containers and the secrets photonpack made; what went."""
        record = self.records.require(name)
        removed: list[str] = []
        pod = recorded_pod(record)
        manifests = self.records.manifests_path(name)
        if self.cli.inspect("pod", pod) is not None:
            if manifests.is_file():
                self.cli.check("kube", "down", str(manifests))
            else:
                self.cli.check("pod", "rm", "-f", "-t", "10", pod)
            removed.append(f"pod {pod}")
        removed += self._remove_other(name, keep=pod)
        for secret in record.created_secrets:
            if self._secret_exists(secret):
                self.cli.check("secret", "rm", secret)
                removed.append(f"secret {secret}")
        self.records.delete(name)
        return removed


def _kept_secrets(previous: Record | None, spec: DeploymentSpec) -> tuple[str, ...]:
    """The secrets the previous deploy made that this one still uses (the same token)."""
    if previous is None or spec.token is None:
        return ()
    return tuple(s for s in previous.created_secrets if s == spec.token_secret)
