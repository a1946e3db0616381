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

The pod is ``NAME-pod-0``, its container ``NAME-pod-0-photon``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from photonpack.deploy.errors import DeployError
from photonpack.deploy.manifests import DIGEST_ANNOTATION, MANAGED_BY, NAME_LABEL
from photonpack.deploy.record import Record, Records
from photonpack.deploy.spec import DeploymentSpec
from photonpack.deploy.status import Status
from photonpack.deploy.yaml import dump_all

__all__ = ["PodmanCli", "PodmanEngine", "free_port"]

SECRET_LABEL = "dev.photonpack.deployment"  # noqa: S105 - a label key
LOG_LINES = 5


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PodmanCli:
    """``podman`` as a subprocess; its environment (CONTAINERS_CONF, ...) is the caller's."""

    def __init__(self, executable: str = "podman") -> None:
        self.executable = executable

    def run(
        self, *args: str, stdin: bytes | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[bytes]:
        """Run podman; the result whatever its exit status."""
        try:
            return subprocess.run(
                [self.executable, *args],
                input=stdin,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise DeployError(
                f"{self.executable} is not installed; install podman (Debian: apt-get install "
                "podman runc catatonit) or use --engine kubernetes"
            ) from None
        except subprocess.TimeoutExpired:
            raise DeployError(
                f"podman {' '.join(args[:2])} did not finish within {timeout:.0f} s"
            ) from None

    def check(self, *args: str, stdin: bytes | None = None, timeout: float = 300) -> str:
        """Run podman; its stdout, or DeployError with its last line of stderr."""
        done = self.run(*args, stdin=stdin, timeout=timeout)
        if done.returncode != 0:
            raise DeployError(f"podman {' '.join(args[:2])} failed: {_last_line(done.stderr)}")
        return done.stdout.decode(errors="replace")

    def inspect(self, what: str, name: str) -> dict[str, Any] | None:
        """``podman WHAT inspect NAME`` as a dict, or None when there is no such object."""
        done = self.run(what, "inspect", name)
        if done.returncode != 0:
            return None
        data = json.loads(done.stdout or b"null")
        if isinstance(data, list):
            data = data[0] if data else None
        return data if isinstance(data, dict) else None

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        """A long-running podman (``logs -f``), its stdout and stderr one pipe."""
        return subprocess.Popen(
            [self.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )


def _last_line(stderr: bytes) -> str:
    lines = [
        line
        for line in stderr.decode(errors="replace").splitlines()
        if line.strip() and "systemd" not in line  # healthcheck timers on a host without systemd
    ]
    return lines[-1].removeprefix("Error: ") if lines else "no message"


def pod_name(name: str) -> str:
    """The pod ``kube play`` makes for a one-replica Deployment."""
    return f"{name}-pod-0"


def container_name(name: str) -> str:
    """The photon's container in that pod."""
    return f"{pod_name(name)}-photon"


class PodmanEngine:
    """Deploy, inspect, follow and remove deployments with podman."""

    def __init__(self, cli: PodmanCli | None = None, records: Records | None = None) -> None:
        self.cli = cli or PodmanCli()
        self.records = records or Records()

    # -- images ---------------------------------------------------------------------------

    def has_image(self, pinned: str) -> bool:
        """Whether podman's storage holds ``repo@sha256:...`` (then it is not loaded again)."""
        return self.cli.run("image", "exists", pinned).returncode == 0

    def load_image(self, layout: Path, repository: str, digest: str) -> str:
        """Load an OCI layout into podman's storage; the pinned reference kube play runs.

        The layout is streamed to ``podman load`` as an oci-archive: that keeps the
        image's manifest digest (a docker-archive would not) and names the image
        after the layout's ``ref.name``, which must be ``REPOSITORY:latest``
        (``podman pull oci:DIR`` would name it after the directory's path).
        """
        process = subprocess.Popen(
            [self.cli.executable, "load", "-q"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None
        try:
            with tarfile.open(fileobj=process.stdin, mode="w|") as tar:
                for path in sorted(layout.rglob("*")):
                    tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
        except BrokenPipeError:
            pass  # podman stopped reading: its stderr says why
        stdout, stderr = process.communicate(timeout=600)  # closes stdin: the end of the archive
        if process.returncode != 0:
            raise DeployError(f"podman load of the photon's image failed: {_last_line(stderr)}")
        pinned = f"{repository}@{digest}"
        if not self.has_image(pinned):
            raise DeployError(
                f"podman load did not give {pinned} (it said: {stdout.decode().strip()})"
            )
        return pinned

    # -- apply ----------------------------------------------------------------------------

    def deploy(
        self, spec: DeploymentSpec, *, force: bool = False, timeout: float = 120
    ) -> tuple[Record, bool]:
        """Apply ``spec`` (a host port set) and wait until ready; (record, changed)."""
        from photonpack.deploy.manifests import deployment

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
        text = dump_all([deployment(spec)])
        token_sha = hashlib.sha256(spec.token.encode()).hexdigest() if spec.token else None
        previous = self.records.get(spec.name)
        running = self.cli.inspect("pod", pod_name(spec.name))
        if (
            previous is not None
            and running is not None
            and running.get("State") == "Running"
            and previous.token_sha256 == token_sha
            and self._played(spec.name) == text
        ):
            return previous, False
        created = self._token_secret(spec)
        with tempfile.TemporaryDirectory(prefix="photonpack-deploy-") as tmp:
            path = Path(tmp) / f"{spec.name}.yaml"
            path.write_text(text)
            done = self.cli.run("kube", "play", "--replace", str(path))
        if done.returncode != 0:
            self._undo_secret(created, previous)
            raise DeployError(
                f"podman kube play of deployment {spec.name!r} failed, nothing left applied: "
                f"{_last_line(done.stderr)}"
            )
        record = Record(
            name=spec.name,
            engine="podman",
            photon=spec.photon,
            photon_digest=spec.photon_digest,
            image=spec.image,
            url=f"http://127.0.0.1:{spec.host_port}",
            token_secret=spec.token_secret,
            created_secrets=tuple(created),
            objects=(("Deployment", spec.name),),
            token_sha256=token_sha,
            host_port=spec.host_port,
        )
        self.records.put(record, text)
        self.wait_ready(spec.name, timeout)
        return record, True

    def _played(self, name: str) -> str | None:
        try:
            return self.records.manifests_path(name).read_text()
        except OSError:
            return None

    def _check_ownership(self, name: str, force: bool) -> None:
        pod = self.cli.inspect("pod", pod_name(name))
        if pod is None or force:
            return
        labels = pod.get("Labels") or {}
        if (
            labels.get("app.kubernetes.io/managed-by") != MANAGED_BY
            or labels.get(NAME_LABEL) != name
        ):
            raise DeployError(
                f"a pod named {pod_name(name)} exists and photonpack did not create it for "
                f"deployment {name!r}; choose another --name, remove it, or pass --force "
                "to take it over"
            )

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

    def _token_secret(self, spec: DeploymentSpec) -> list[str]:
        """Write the token's secret (given by value); the names photonpack now owns."""
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
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(name)
            if status.ready >= status.desired:
                return status
            if status.crashed or time.monotonic() > deadline:
                raise DeployError(
                    f"deployment {name!r} is not ready"
                    f"{'' if status.crashed else f' after {timeout:.0f} s'}: {status.reason}"
                )
            time.sleep(0.2)

    # -- status, logs, remove -------------------------------------------------------------

    def status(self, name: str) -> Status:
        """What runs for ``name``, compared with what was deployed."""
        record = self.records.require(name)
        container = self.cli.inspect("container", container_name(name))
        if container is None:
            return Status.absent(record, f"no container {container_name(name)}: redeploy it")
        state = container.get("State") or {}
        annotations = (container.get("Config") or {}).get("Annotations") or {}
        running = state.get("Status") == "running"
        healthy = running and _healthy(record.url)
        reason = None
        crashed = False
        restarts = int(container.get("RestartCount") or 0)
        if restarts and not healthy:
            crashed = True
            reason = f"crash loop ({restarts} restarts); last log lines: {self._tail(name)}"
        elif not running:
            crashed = state.get("Status") in ("exited", "stopped")
            reason = (
                f"container {state.get('Status')} (exit code {state.get('ExitCode')}); "
                f"last log lines: {self._tail(name)}"
            )
        elif not healthy:
            reason = f"starting: {record.url}/healthz does not answer 200 yet"
        return Status(
            name=name,
            engine="podman",
            desired=1,
            updated=1,
            ready=1 if healthy else 0,
            available=1 if healthy else 0,
            image=record.image,
            image_running=_pinned(container),
            photon_digest=record.photon_digest,
            photon_running=annotations.get(DIGEST_ANNOTATION),
            url=record.url,
            reason=reason,
            crashed=crashed,
            restarts=restarts,
        )

    def _tail(self, name: str) -> str:
        done = self.cli.run("logs", "--tail", str(LOG_LINES), container_name(name))
        text = (done.stdout + done.stderr).decode(errors="replace")
        return " | ".join(line.strip() for line in text.splitlines() if line.strip()) or "none"

    def logs(self, name: str, *, follow: bool = False, since: str | None = None) -> Iterator[str]:
        """The server's log lines (stdout and stderr), following them with ``follow``."""
        self.records.require(name)
        if self.cli.inspect("container", container_name(name)) is None:
            raise DeployError(f"deployment {name!r} has no container; see its status")
        args = ["logs", *(["--follow"] if follow else []), *(["--since", since] if since else [])]
        process = self.cli.popen(*args, container_name(name))
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                yield raw.decode(errors="replace").rstrip("\n")
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait()

    def remove(self, name: str) -> list[str]:
        """Take away the pod, its containers and the secrets photonpack made; what went."""
        record = self.records.require(name)
        removed: list[str] = []
        manifests = self.records.manifests_path(name)
        if self.cli.inspect("pod", pod_name(name)) is not None:
            if manifests.is_file():
                self.cli.check("kube", "down", str(manifests))
            else:
                self.cli.check("pod", "rm", "-f", "-t", "10", pod_name(name))
            removed.append(f"pod {pod_name(name)}")
        for secret in record.created_secrets:
            if self._secret_exists(secret):
                self.cli.check("secret", "rm", secret)
                removed.append(f"secret {secret}")
        self.records.delete(name)
        return removed


def _pinned(container: dict[str, Any]) -> str | None:
    name = str(container.get("ImageName") or "")
    digest = container.get("ImageDigest")
    if not digest:
        return name or None
    return f"{name.partition('@')[0]}@{digest}"


def _healthy(url: str | None, timeout: float = 2) -> bool:
    if url is None:
        return False
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
