"""`photonpack run ARCHIVE | -n NAME`: verify, install offline, serve — with real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack import Client
from photonpack.cli import cli
from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.offline import serve_offline
from tests.support.registry import Registry
from tests.support.serving import Served
from tests.support.stack import build_photon, write_photon


def _photonpack(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "photonpack", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=300,
    )


@pytest.fixture
def archive(counter_archive: Path, tmp_path: Path) -> Path:
    """A private copy of the counter archive, in a fresh directory."""
    return Path(shutil.copy(counter_archive, tmp_path / "counter.photon"))


def test_run_archive_serves_it_cold_then_reuses_the_environment(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    served = serve_photon(str(archive))
    client = Client(served.url)
    assert [client.add(x=3), client.add(x=5), client.sub(x=2)] == [3, 8, 6]
    assert "environment installed" in served.stderr()
    assert served.stop() == 0
    envs = list((photonpack_home / "envs").iterdir())
    assert len(envs) == 1

    again = serve_photon(str(archive))
    assert "environment reused" in again.stderr()
    assert Client(again.url).add(x=1) == 1
    assert list((photonpack_home / "envs").iterdir()) == envs


def test_run_works_without_any_network(archive: Path, tmp_path: Path) -> None:
    """The acceptance test: a fresh store, no network namespace at all, client and curl."""
    output = serve_offline(
        archive,
        tmp_path / "airgap",
        """
        print(client.add(x=3), client.add(x=5), client.sub(x=2))
        print(curl("/add", {"x": 3}))
        """,
    )
    assert output.split() == ["3", "8", "6", "9"]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_run_refuses_a_flipped_byte_and_names_the_member(archive: Path, where: str) -> None:
    import zstandard

    raw = zstandard.ZstdDecompressor().decompressobj().decompress(archive.read_bytes())
    tar = bytearray(raw)
    # Blob data follows each 512-byte header; flip one byte inside a blob's data.
    offsets = _blob_data_offsets(bytes(tar))
    member, offset = {
        "first": offsets[0],
        "middle": offsets[len(offsets) // 2],
        "last": offsets[-1],
    }[where]
    tar[offset] ^= 0x01
    archive.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(bytes(tar)))
    done = _photonpack("run", str(archive), "--port", "0")
    assert done.returncode == 3, done.stderr
    assert member in done.stderr
    assert not (Path(os.environ["PHOTONPACK_HOME"]) / "envs").exists()


def _blob_data_offsets(tar: bytes) -> list[tuple[str, int]]:
    import io
    import tarfile

    found = []
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        for info in tf:
            if info.name.startswith("blobs/") and info.size:
                found.append((info.name.rsplit("/", 1)[1], info.offset_data + info.size // 2))
    return found


def test_run_refuses_a_truncated_archive(archive: Path) -> None:
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    done = _photonpack("run", str(archive), "--port", "0")
    assert done.returncode == 3, done.stderr
    assert "truncated" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_refuses_an_archive_for_another_platform(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    from tests.support.index import add_serving_stack

    add_serving_stack(package_index)  # pure-Python stand-ins lock for any target
    photon = write_photon(
        tmp_path / "src", "from photonpack import Photon\nclass Arm(Photon):\n    pass\n"
    )
    from photonpack.build import BuildOptions, build
    from photonpack.lock.index import IndexSettings
    from photonpack.lock.lockfile import LockOptions
    from photonpack.lock.target import Target
    from photonpack.serving.source import parse_spec

    target = Target.parse("cp311-manylinux_2_28_aarch64")
    result = build(
        parse_spec(str(photon)),
        BuildOptions(
            output=tmp_path / "arm.photon",
            lock=LockOptions(targets=(target,), index=IndexSettings(index_url=package_index.url)),
        ),
    )
    assert "no target of the lock runs on this machine" in result.warnings[0]
    done = _photonpack("run", str(result.path), "--port", "0")
    assert done.returncode == 1
    assert "has no wheels for this machine" in done.stderr
    assert "it was built for: cp311-manylinux_2_28_aarch64" in done.stderr


def test_missing_system_dependencies_are_listed_with_the_apt_line(
    real_index: PackageIndex, tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    photon = write_photon(
        tmp_path / "src",
        "from photonpack import Photon\n"
        "class Sys(Photon):\n"
        "    system_dependency = ['photonpack-no-such-package', 'coreutils']\n"
        "    @Photon.handler\n"
        "    def ok(self) -> str:\n"
        "        return 'ok'\n",
    )
    built = build_photon(real_index, photon, tmp_path / "sys.photon")
    done = _photonpack("run", str(built.path), "--port", "0")
    assert done.returncode == 1
    assert "needs system packages that are not installed: photonpack-no-such-package;" in (
        done.stderr
    )
    assert "apt-get install -y photonpack-no-such-package" in done.stderr
    served = serve_photon(str(built.path), args=("--skip-system-check",))
    assert Client(served.url).ok() == "ok"


def test_env_options_reach_the_photon_and_it_runs_in_its_workdir(
    real_index: PackageIndex, tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    source = tmp_path / "src"
    (source / "data").mkdir(parents=True)
    (source / "data" / "greeting.txt").write_text("hello from the archive")
    photon = write_photon(
        source,
        "import os\n"
        "from pathlib import Path\n"
        "from photonpack import Photon\n"
        "class Env(Photon):\n"
        "    extra_files = ['data/greeting.txt']\n"
        "    @Photon.handler\n"
        "    def show(self) -> dict:\n"
        "        return {'flavour': os.environ.get('FLAVOUR'),\n"
        "                'greeting': Path('data/greeting.txt').read_text()}\n",
    )
    built = build_photon(real_index, photon, tmp_path / "env.photon")
    shutil.rmtree(source)  # the archive carries everything
    served = serve_photon(str(built.path), args=("--env", "FLAVOUR=vanilla"))
    assert Client(served.url).show() == {
        "flavour": "vanilla",
        "greeting": "hello from the archive",
    }


def test_photon_cannot_import_host_site_packages(
    real_index: PackageIndex, tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    import jsonschema  # installed in the test venv, never locked by the photon

    assert jsonschema
    photon = write_photon(
        tmp_path / "src",
        "from photonpack import Photon\n"
        "class Iso(Photon):\n"
        "    @Photon.handler\n"
        "    def probe(self) -> dict:\n"
        "        import sys\n"
        "        try:\n"
        "            import jsonschema\n"
        "            found = jsonschema.__file__\n"
        "        except ImportError:\n"
        "            found = None\n"
        "        return {'jsonschema': found, 'prefix': sys.prefix}\n",
    )
    built = build_photon(real_index, photon, tmp_path / "iso.photon")
    served = serve_photon(str(built.path))
    probe = Client(served.url).probe()
    assert probe["jsonschema"] is None
    assert probe["prefix"].startswith(str(Store().root / "envs"))


def test_two_runs_at_once_both_serve_and_install_once(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    servers = [serve_photon(str(archive), wait=False) for _ in range(2)]
    urls = [_wait_ready(served) for served in servers]
    assert [Client(url).add(x=2) for url in urls] == [2, 2]
    logs = [served.stderr() for served in servers]
    assert sum("environment installed" in log for log in logs) == 1
    assert sum("environment reused" in log for log in logs) == 1
    assert len(list((photonpack_home / "envs").iterdir())) == 1


def _wait_ready(served: Served, timeout: float = 120.0) -> str:
    import re

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"photonpack: serving \S+ on (http://\S+)", served.stderr())
        if match:
            return match.group(1)
        assert served.process.poll() is None, served.stderr()
        time.sleep(0.05)
    raise AssertionError(served.stderr())


def test_sigkill_during_install_leaves_nothing_taken_as_valid(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "photonpack", "run", str(archive), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp = photonpack_home / "tmp"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it while an environment is being built
        if tmp.is_dir() and any(p.name.startswith(f"{process.pid}-env-") for p in tmp.iterdir()):
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    envs = photonpack_home / "envs"
    assert not envs.exists() or not any((e / ".complete").exists() for e in envs.iterdir())

    assert any(p.name.startswith(f"{process.pid}-") for p in tmp.iterdir())  # its leftovers

    served = serve_photon(str(archive))
    assert Client(served.url).add(x=4) == 4
    assert not any(p.name.startswith(f"{process.pid}-") for p in tmp.iterdir())  # collected


def test_verify_store_detects_a_corrupted_blob_and_run_repairs_it(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    served = serve_photon(str(archive))
    served.stop()
    blob = max((photonpack_home / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))

    done = _photonpack("verify", "--store")
    assert done.returncode == 3, done.stdout + done.stderr
    assert blob.name in done.stdout + done.stderr
    assert not blob.exists()  # removed, so that the next import restores it

    again = serve_photon(str(archive))
    assert Client(again.url).add(x=1) == 1
    assert _photonpack("verify", "--store").returncode == 0


def test_create_list_run_by_name_and_remove(
    real_index: PackageIndex, tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    photon = write_photon(tmp_path / "src")
    runner = CliRunner()
    created = runner.invoke(
        cli, ["create", "-n", "counter", "-m", str(photon), "--index-url", real_index.url]
    )
    assert created.exit_code == 0, created.output
    listed = runner.invoke(cli, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.stdout)
    assert entry["name"] == "counter"
    assert entry["digest"] == created.stdout.split()[-1]

    served = serve_photon("-n counter")
    assert Client(served.url).add(x=7) == 7
    served.stop()

    removed = runner.invoke(cli, ["remove", "-n", "counter"])
    assert removed.exit_code == 0
    missing = runner.invoke(cli, ["remove", "-n", "counter"])
    assert missing.exit_code == 1
    assert "no photon named 'counter'" in missing.stderr


def test_healthz_is_reachable_over_plain_http(
    archive: Path, serve_photon: Callable[..., Served]
) -> None:
    served = serve_photon(str(archive))
    with urllib.request.urlopen(f"{served.url}/healthz") as response:
        assert response.status == 200


def test_created_photon_goes_through_a_registry_and_runs_by_ref_in_a_fresh_store(
    real_index: PackageIndex,
    registry: Registry,
    tmp_path: Path,
    serve_photon: Callable[..., Served],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photon = write_photon(tmp_path / "src")
    runner = CliRunner()
    created = runner.invoke(
        cli, ["create", "-n", "counter", "-m", str(photon), "--index-url", real_index.url]
    )
    assert created.exit_code == 0, created.output
    ref = f"{registry.host}/team/counter:v1"
    pushed = runner.invoke(cli, ["push", "-n", "counter", ref])
    assert pushed.exit_code == 0, pushed.output

    monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / "fresh-home"))
    served = serve_photon(ref)
    assert Client(served.url).add(x=3) == 3
    assert created.stdout.split()[-1] in served.stderr()  # the same photon digest


def test_a_blob_altered_in_the_store_is_caught_when_laid_out_and_restored_by_the_next_run(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    from photonpack.archive import read_manifest

    served = serve_photon(str(archive))
    served.stop()
    source = next(f for f in read_manifest(archive).files if f.path == "counter.py")
    blob = photonpack_home / "blobs" / "sha256" / source.sha256
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes().replace(b"counter", b"COUNTER"))
    shutil.rmtree(next((photonpack_home / "work").iterdir()))  # force a new layout

    refused = _photonpack("run", str(archive), "--port", "0")
    assert refused.returncode == 3, refused.stderr
    assert "counter.py: the store's blob" in refused.stderr
    assert "run the archive again to restore it" in refused.stderr

    again = serve_photon(str(archive))
    assert Client(again.url).add(x=2) == 2


# A driver run inside a private mount namespace (root, unshare(1)): the store is a
# tmpfs of a chosen size that it can remount read-only or bigger, as an operator would.
_STORE_DRIVER = """
import json, os, subprocess, sys, time, urllib.request
from pathlib import Path

home, archive, size = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
home.mkdir(parents=True, exist_ok=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(home)], check=True)
env = {**os.environ, "PHOTONPACK_HOME": str(home)}
results = {}


def run(name):
    done = subprocess.run([sys.executable, "-m", "photonpack", "run", archive, "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=300)
    results[name] = {"code": done.returncode, "stderr": done.stderr}


def serve(name, port):
    proc = subprocess.Popen([sys.executable, "-m", "photonpack", "run", archive,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stderr=subprocess.PIPE, text=True, env=env)
    for _ in range(1200):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as reply:
                break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    answer = None
    if proc.poll() is None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/add", data=b'{"x": 4}',
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as reply:
            answer = json.load(reply)
        proc.terminate()
    code = proc.wait()
    results[name] = {"code": code, "answer": answer, "stderr": proc.stderr.read()}


def listing(folder, complete=False):
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if not complete or (p / ".complete").exists())


for step in sys.argv[4:]:
    kind, _, arg = step.partition("=")
    if kind == "run":
        run(arg)
    elif kind == "serve":
        serve(arg, 18940 + len(results))
    elif kind == "remount":
        subprocess.run(["mount", "-o", f"remount,{arg}", str(home)], check=True)
    elif kind == "envs":
        results[arg] = listing(home / "envs", complete=True)
    elif kind == "tmp":
        results[arg] = listing(home / "tmp")
print(json.dumps(results))
"""


def _in_store_namespace(tmp_path: Path, archive: Path, size: str, *steps: str) -> dict[str, object]:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("this test needs root and unshare(1) (CI runs as root)")
    tmp_path.mkdir(exist_ok=True)
    driver = tmp_path / "store_driver.py"
    driver.write_text(_STORE_DRIVER)
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--",
         sys.executable, str(driver), str(tmp_path / "home"), str(archive), size, *steps],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    results: dict[str, object] = json.loads(done.stdout)
    return results


def test_a_full_store_is_a_clear_error_and_a_run_with_room_serves(
    archive: Path, tmp_path: Path
) -> None:
    from photonpack.archive import read_manifest

    # Room for the verified blobs, not for the environment they unpack into.
    room = read_manifest(archive).total_size + (4 << 20)
    results = _in_store_namespace(
        tmp_path, archive, f"{room // 1024}k",
        "run=full", "envs=envs_after_full", "tmp=tmp_after_full", "remount=size=1g", "serve=roomy",
    )  # fmt: skip
    full = results["full"]
    assert isinstance(full, dict)
    assert full["code"] == 1, full["stderr"]
    lines = full["stderr"].strip().splitlines()
    assert "Traceback" not in full["stderr"]
    assert "No space left on device" in lines[-1]
    assert "Check that the disk has free space" in lines[-1]
    assert results["envs_after_full"] == []  # nothing half-built is taken as valid
    assert results["tmp_after_full"] == []  # and nothing is left behind
    roomy = results["roomy"]
    assert isinstance(roomy, dict)
    assert (roomy["answer"], roomy["code"]) == (4, 0), roomy["stderr"]


def test_a_read_only_store_serves_what_it_holds_and_refuses_the_rest_clearly(
    archive: Path, tmp_path: Path
) -> None:
    results = _in_store_namespace(
        tmp_path, archive, "1g", "serve=filled", "remount=ro", "serve=warm_read_only",
        "remount=rw", "envs=envs", "remount=ro",
    )  # fmt: skip
    for name in ("filled", "warm_read_only"):
        served = results[name]
        assert isinstance(served, dict)
        assert (served["answer"], served["code"]) == (4, 0), served["stderr"]
    assert len(results["envs"]) == 1  # type: ignore[arg-type]

    # An empty read-only store cannot take the archive in.
    empty = _in_store_namespace(tmp_path / "empty", archive, "1g", "remount=ro", "run=cold")
    cold = empty["cold"]
    assert isinstance(cold, dict)
    assert cold["code"] == 1, cold["stderr"]
    assert "Traceback" not in cold["stderr"]
    assert "Read-only file system" in cold["stderr"]
    assert "PHOTONPACK_HOME" in cold["stderr"]
