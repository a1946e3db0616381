"""Images of a real photon, run for real: podman (rootful, runc, vfs), a local registry.

One image is built per module, on the Debian 12 base the session builds with
mmdebstrap (CPython 3.11.2, glibc 2.36), and pushed to the local
``docker-registry`` and written as a docker-archive at once. Few tests: vfs
copies every layer for every container.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.serving.client import Client
from tests.support.images import DebianBase, Podman, index_with_tiny_platforms
from tests.support.index import PackageIndex
from tests.support.registry import Registry, StagedPhoton, free_port, stage_photon
from tests.support.stack import build_photon, write_photon

pytestmark = [pytest.mark.containers, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "numpy_stats"
SLEEPY = """
    import time
    from photonpack import Photon

    class Sleepy(Photon):
        def init(self) -> None:
            print("sleepy: in init()", flush=True)
            time.sleep(30)
"""


@dataclass(frozen=True)
class Built:
    reference: str
    digest: str
    archive: Path


@pytest.fixture(scope="module")
def built(
    counter_archive: Path,
    debian_base: DebianBase,
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Built:
    if not platform.python_version().startswith("3.11."):
        pytest.skip("the Debian 12 base has CPython 3.11: run the tests with a Python 3.11")
    out = tmp_path_factory.mktemp("counter-image") / "counter.tar"
    reference = f"{registry.host}/images/counter:v1"
    result = CliRunner().invoke(
        cli,
        ["image", str(counter_archive), "--base", f"oci:{debian_base.oci}:bookworm",
         "--push", reference, "-o", str(out), "--json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return Built(reference=reference, digest=json.loads(result.stdout)["digest"], archive=out)


@pytest.fixture
def container(podman: Podman) -> Iterator[str]:
    name = f"photonpack-test-{uuid.uuid4().hex[:12]}"
    yield name
    podman("rm", "-f", "-t", "0", name, check=False)


def _load_image(podman: Podman, archive: Path, base: DebianBase, tarball: Path) -> None:
    """``photonpack image -o`` of the archive on the Debian base, loaded into podman."""
    result = CliRunner().invoke(
        cli,
        ["image", str(archive), "--base", f"oci:{base.oci}:bookworm", "-o", str(tarball)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    podman("load", "-i", str(tarball))


def _stop_with_sigterm(podman: Podman, name: str) -> int:
    podman("kill", "--signal", "TERM", name)
    return int(podman("wait", name, timeout=30).stdout.strip())


def test_pushed_image_serves_as_lepton_read_only_and_exits_0_on_sigterm(
    podman: Podman, built: Built, container: str
) -> None:
    podman("pull", "-q", "--tls-verify=false", built.reference)
    port = free_port()
    podman(
        "run", "-d", "--name", container, "--read-only", "--network=host",
        built.reference, "--port", str(port),
    )  # fmt: skip
    podman.wait_for_line(container, f"photonpack: serving counter on http://0.0.0.0:{port}")
    pid1 = podman("exec", container, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert pid1.count("--port") == 1  # the argument replaced the image's Cmd
    client = Client(f"http://127.0.0.1:{port}")
    assert (client.add(x=3), client.add(x=5)) == (3, 8)
    curl = subprocess.run(
        ["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
         "-d", '{"x": 2}', f"http://127.0.0.1:{port}/sub"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert curl.stdout == "6"
    assert podman("exec", container, "id", "-un").stdout == "lepton\n"
    assert podman("exec", container, "pwd").stdout == "/home/lepton\n"
    assert _stop_with_sigterm(podman, container) == 0

    remote = json.loads(
        podman.tool("skopeo", "inspect", "--tls-verify=false", f"docker://{built.reference}").stdout
    )
    assert remote["Digest"] == built.digest
    assert remote["Labels"]["dev.photonpack.photon.name"] == "counter"
    config = json.loads(
        podman.tool(
            "skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{built.reference}"
        ).stdout
    )
    assert config["config"]["User"] == "1000:1000"
    assert config["config"]["WorkingDir"] == "/home/lepton"
    assert config["config"]["StopSignal"] == "SIGTERM"
    assert config["rootfs"]["type"] == "layers"
    assert len(config["rootfs"]["diff_ids"]) == len(config["history"])


def test_loaded_docker_archive_serves_without_a_network(
    podman: Podman, built: Built, container: str
) -> None:
    loaded = podman("load", "-i", str(built.archive))
    assert "Loaded image: localhost/counter:latest" in loaded.stdout
    podman(
        "run",
        "-d",
        "--name",
        container,
        "--read-only",
        "--network=none",
        "localhost/counter:latest",
    )
    podman.wait_for_line(container, "photonpack: serving counter on http://0.0.0.0:8080")
    calls = (
        "from photonpack.serving.client import Client; c = Client('http://127.0.0.1:8080'); "
        "print(c.add(x=3), c.add(x=5), c.sub(x=2))"
    )
    answer = podman("exec", container, "python", "-I", "-c", calls)
    assert answer.stdout == "3 8 6\n"
    assert _stop_with_sigterm(podman, container) == 0


@pytest.mark.network
def test_numpy_example_image_on_a_docker_archive_base_answers_its_handler(
    podman: Podman, debian_base: DebianBase, tmp_path: Path, container: str
) -> None:
    from photonpack.build import BuildOptions, build
    from photonpack.serving.source import parse_spec

    if not platform.python_version().startswith("3.11."):
        pytest.skip("the Debian 12 base has CPython 3.11: run the tests with a Python 3.11")
    project = Path(shutil.copytree(EXAMPLE, tmp_path / "numpy_stats"))
    archive = build(
        parse_spec(str(project / "stats.py")), BuildOptions(output=tmp_path / "s.photon")
    )
    result = CliRunner().invoke(
        cli,
        ["image", str(archive.path), "--base", f"docker-archive:{debian_base.docker_archive}",
         "-o", str(tmp_path / "stats.tar"), "--json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    podman("load", "-i", str(tmp_path / "stats.tar"))
    history = podman(
        "history", "--no-trunc", "--format", "{{.CreatedBy}}", "localhost/stats:latest"
    )
    assert any(
        line.startswith("photonpack image: wheel numpy-") for line in history.stdout.splitlines()
    )
    podman(
        "run", "-d", "--name", container, "--read-only", "--network=none", "localhost/stats:latest"
    )
    podman.wait_for_line(container, "photonpack: serving stats on http://0.0.0.0:8080")
    calls = (
        "from photonpack.serving.client import Client; c = Client('http://127.0.0.1:8080'); "
        "print(c.summary(values=[1.0, 2.0, 4.0, 5.0])['mean'])"
    )
    assert podman("exec", container, "python", "-I", "-c", calls).stdout == "3.0\n"
    assert _stop_with_sigterm(podman, container) == 0


def test_a_zstd_image_is_pulled_and_served_by_podman(
    podman: Podman,
    counter_archive: Path,
    debian_base: DebianBase,
    registry: Registry,
    container: str,
) -> None:
    if not platform.python_version().startswith("3.11."):
        pytest.skip("the Debian 12 base has CPython 3.11: run the tests with a Python 3.11")
    reference = f"{registry.host}/images/counter-zstd:v1"
    result = CliRunner().invoke(
        cli,
        ["image", str(counter_archive), "--base", f"oci:{debian_base.oci}:bookworm",
         "--compression", "zstd", "--push", reference],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    podman("pull", "-q", "--tls-verify=false", reference)
    port = free_port()
    podman("run", "-d", "--name", container, "--network=host", reference, "--port", str(port))
    podman.wait_for_line(container, f"photonpack: serving counter on http://0.0.0.0:{port}")
    assert Client(f"http://127.0.0.1:{port}").add(x=3) == 3
    assert _stop_with_sigterm(podman, container) == 0


def test_the_amd64_image_of_a_two_platform_index_runs_with_its_own_wheels(
    podman: Podman, debian_base: DebianBase, registry: Registry, tmp_path: Path
) -> None:
    # Only amd64 runs here: the index's arm64 image is checked in test_image_platforms.py.
    import dataclasses

    from photonpack.archive import write_archive

    base = index_with_tiny_platforms(debian_base.oci, "bookworm", tmp_path / "multi")
    targets = ("cp311-manylinux_2_28_aarch64", "cp311-manylinux_2_28_x86_64")
    staged = stage_photon(tmp_path, "which", [("nat", "1.0")], targets=targets, native=("nat",))
    show = (
        "import importlib.resources as r; print(r.files('nat').joinpath('_native.txt').read_text())"
    )
    photon = dataclasses.replace(staged.manifest.photon, cmd=("python", "-I", "-c", show))
    staged = StagedPhoton(
        manifest=dataclasses.replace(staged.manifest, photon=photon), blobs=staged.blobs
    )
    archive = tmp_path / "which.photon"
    with archive.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    reference = f"{registry.host}/images/which:multi"
    result = CliRunner().invoke(
        cli,
        ["image", str(archive), "--base", f"oci:{base}:bookworm",
         "--platform", "linux/amd64,linux/arm64", "--push", reference],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    podman("pull", "-q", "--tls-verify=false", reference)
    ran = podman("run", "--rm", "--network=none", "--read-only", reference)
    assert ran.stdout == "cp311-manylinux_2_28_x86_64\n\n"


def test_a_cmd_photon_that_ignores_sigterm_is_stopped_by_it_through_the_image_init(
    podman: Podman, debian_base: DebianBase, tmp_path: Path, container: str
) -> None:
    # As PID 1 the command would never see SIGTERM (no handler: the kernel drops it) and
    # `podman stop` would SIGKILL it after its grace period; init.py passes it on.
    import dataclasses

    from photonpack.archive import write_archive

    staged = stage_photon(tmp_path, "sleeper", [("alpha", "1.0")])
    sleep = "import time; print('sleeper: up', flush=True); time.sleep(300)"
    photon = dataclasses.replace(staged.manifest.photon, cmd=("python", "-I", "-c", sleep))
    manifest = dataclasses.replace(staged.manifest, photon=photon)
    archive = tmp_path / "sleeper.photon"
    with archive.open("wb") as out:
        write_archive(out, manifest, staged.blob_path)
    _load_image(podman, archive, debian_base, tmp_path / "sleeper.tar")
    podman("run", "-d", "--name", container, "--network=none", "localhost/sleeper:latest")
    podman.wait_for_line(container, "sleeper: up")
    stopped = podman("stop", "-t", "30", container, timeout=60)
    assert "SIGKILL" not in stopped.stderr
    state = json.loads(podman("inspect", "--format", "{{json .State}}", container).stdout)
    assert (state["Status"], state["ExitCode"]) == ("exited", 128 + 15)  # as a shell reports it


def test_sigterm_during_a_slow_init_stops_the_pid_1_server_with_0_before_the_grace_period(
    podman: Podman,
    debian_base: DebianBase,
    real_index: PackageIndex,
    tmp_path: Path,
    container: str,
) -> None:
    # The kernel drops the signals PID 1 has no handler for: without one before
    # init(), `podman stop` waits out its 10 s and SIGKILLs (exit code 137).
    if not platform.python_version().startswith("3.11."):
        pytest.skip("the Debian 12 base has CPython 3.11: run the tests with a Python 3.11")
    from photonpack.store import Store

    photon = write_photon(tmp_path / "src", SLEEPY, "sleepy.py")
    archive = build_photon(
        real_index, photon, tmp_path / "sleepy.photon", store=Store(tmp_path / "home")
    )
    _load_image(podman, archive.path, debian_base, tmp_path / "sleepy.tar")
    podman("run", "-d", "--name", container, "--network=none", "localhost/sleepy:latest")
    podman.wait_for_line(container, "sleepy: in init()")
    pid1 = podman("exec", container, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert pid1[1:4] == ["-I", "-m", "photonpack.serving.serve"]

    stopped = podman("stop", "-t", "10", container, timeout=60)
    assert "SIGKILL" not in stopped.stderr
    state = json.loads(podman("inspect", "--format", "{{json .State}}", container).stdout)
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    assert "SIGTERM before the server was up: stopped" in podman("logs", container).stderr
