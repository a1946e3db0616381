"""Base images for the image tests: small ones written here, and a real Debian one.

``write_base`` writes a genuine OCI layout whose one layer holds just what
photonpack reads from a base (``/etc/passwd``, a Python and its ``os.py``, the
dpkg database): fast, for what does not run the image. ``debian_base`` is a
real Debian 12 root filesystem with CPython 3.11 made by ``mmdebstrap`` (cached
under ``/var/tmp/photonpack-test-base/``, keyed by the command), imported with
podman and saved as an OCI layout and a docker-archive, for tests that run
images with podman (rootful, runc, vfs, private storage: ``CONTAINERS.md``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "DebianBase",
    "Podman",
    "debian_base",
    "podman",
    "write_base",
    "write_multiplatform_base",
]

PASSWD = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
# libstdc++6: manylinux wheels (numpy) count on the system's, as python:3.X-slim has it.
MMDEBSTRAP = (
    "mmdebstrap",
    "--variant=essential",
    "--include=python3-minimal,python3-venv,libstdc++6",
    "--format=tar",
    "bookworm",
)
_CACHE = Path("/var/tmp/photonpack-test-base")
_TOOLS = ("podman", "runc", "skopeo", "mmdebstrap", "catatonit")


_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


def _dpkg_status(packages: Mapping[str, str], architecture: str = "amd64") -> str:
    return "".join(
        f"Package: {name}\nStatus: install ok installed\nArchitecture: {architecture}\n"
        f"Version: {version}\n\n"
        for name, version in sorted(packages.items())
    )


def _layer(files: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if "/bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _put(blobs: Path, data: bytes) -> dict[str, object]:
    hex_ = hashlib.sha256(data).hexdigest()
    (blobs / hex_).write_bytes(data)
    return {"digest": f"sha256:{hex_}", "size": len(data)}


def _image(
    blobs: Path,
    *,
    python: str | None,
    packages: Mapping[str, str] | None,
    architecture: str,
    extra_files: Mapping[str, bytes] | None,
    libraries: Sequence[str],
    variant: str = "",
) -> dict[str, object]:
    """Write one image's blobs; its manifest's descriptor."""
    files = {"etc/passwd": PASSWD.encode(), "etc/group": GROUP.encode(), **(extra_files or {})}
    machine = _MACHINES.get(architecture, architecture)
    for library in libraries:
        files[f"usr/lib/{machine}-linux-gnu/{library}"] = b"\x7fELF stub\n"
    installed = {"libc6": "2.36-9+deb12u4", "base-files": "12.4"} | dict(packages or {})
    if python is not None:
        short = python.rsplit(".", 1)[0]
        files[f"usr/bin/python{short}"] = b"\x7fELF not really\n"
        files[f"usr/lib/python{short}/os.py"] = b"# os\n"
        installed[f"python{short}-minimal"] = f"{python}-6+deb12u1"
    files["var/lib/dpkg/status"] = _dpkg_status(installed, architecture).encode()
    tar = _layer(files)
    layer = _put(blobs, gzip.compress(tar, mtime=0))
    config = {
        "architecture": architecture,
        **({"variant": variant} if variant else {}),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json"}
        | _put(blobs, json.dumps(config).encode()),
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"} | layer],
    }
    return {"mediaType": manifest["mediaType"]} | _put(blobs, json.dumps(manifest).encode())


def write_base(
    directory: Path,
    *,
    python: str | None = "3.11.2",
    packages: Mapping[str, str] | None = None,
    architecture: str = "amd64",
    extra_files: Mapping[str, bytes] | None = None,
    libraries: Sequence[str] = ("libgcc_s.so.1", "libstdc++.so.6"),
) -> Path:
    """An OCI layout of a tiny glibc 2.36 base with CPython ``python`` at /usr/bin.

    ``libraries`` lie in ``/usr/lib/<machine>-linux-gnu`` (as stubs), as in Debian's slim images.
    """
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    entry = _image(
        blobs, python=python, packages=packages, architecture=architecture,
        extra_files=extra_files, libraries=libraries,
    )  # fmt: skip
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return directory


def write_multiplatform_base(
    directory: Path,
    architectures: Sequence[str] = ("amd64", "arm64"),
    *,
    tag: str = "bookworm",
    python: str = "3.11.2",
) -> Path:
    """An OCI layout holding an image index over one tiny base per architecture.

    An architecture may name its variant (``arm/v7``): the config and the index say it.

    As ``skopeo copy --all docker://... oci:DIR:TAG`` writes it: ``index.json``
    names the index (by ``tag``), the index lists each architecture's manifest.
    """
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    manifests = []
    for platform in architectures:
        architecture, _, variant = platform.partition("/")
        entry = _image(
            blobs, python=python, packages=None, architecture=architecture, extra_files=None,
            libraries=("libgcc_s.so.1", "libstdc++.so.6"), variant=variant,
        )  # fmt: skip
        described = {"architecture": architecture, "os": "linux"}
        manifests.append(
            entry | {"platform": described | ({"variant": variant} if variant else {})}
        )
    media_type = "application/vnd.oci.image.index.v1+json"
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    entry = {"mediaType": media_type} | _put(blobs, json.dumps(index).encode())
    entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return directory


def index_with_tiny_platforms(
    layout: Path, tag: str, destination: Path, architectures: Sequence[str] = ("arm64",)
) -> Path:
    """A copy of ``layout`` (files linked) where ``tag`` names an index over its image
    and a tiny base for each of ``architectures``: a real base made multi-platform."""
    shutil.copytree(layout, destination, copy_function=os.link)
    blobs = destination / "blobs" / "sha256"
    top = json.loads((layout / "index.json").read_text())
    entry = next(
        m for m in top["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    )  # fmt: skip
    manifest = json.loads((blobs / entry["digest"][7:]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
    own = {k: v for k, v in entry.items() if k != "annotations"}
    manifests = [own | {"platform": {"architecture": config["architecture"], "os": "linux"}}]
    for architecture in architectures:
        tiny = _image(
            blobs, python="3.11.2", packages=None, architecture=architecture, extra_files=None,
            libraries=("libgcc_s.so.1", "libstdc++.so.6"),
        )  # fmt: skip
        manifests.append(tiny | {"platform": {"architecture": architecture, "os": "linux"}})
    media_type = "application/vnd.oci.image.index.v1+json"
    index = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    named = {"mediaType": media_type} | _put(blobs, json.dumps(index).encode())
    named["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (destination / "index.json").unlink()  # a link to the original's
    (destination / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [named]}))
    return destination


@dataclass(frozen=True)
class Podman:
    """Rootful podman with its own configuration and vfs storage under a temp directory."""

    env: Mapping[str, str]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["podman", *args],
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed:\n{done.stderr}")
        return done

    def tool(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Another container tool (skopeo) with the same configuration."""
        return subprocess.run(
            argv, env=dict(self.env), capture_output=True, text=True, check=True, timeout=120
        )

    def wait_for_line(self, container: str, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = self("logs", container, check=False)
            if text in logs.stdout + logs.stderr:
                return logs.stderr
            time.sleep(0.1)
        raise AssertionError(f"{container} never printed {text!r}:\n{logs.stdout}{logs.stderr}")


def _missing_tools() -> list[str]:
    return [tool for tool in _TOOLS if shutil.which(tool) is None]


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """podman as CONTAINERS.md says: runc, cgroupfs, no ulimits, vfs storage of its own."""
    if missing := _missing_tools():
        pytest.skip(f"container tests need {', '.join(missing)} (.ci/run installs them)")
    if os.geteuid() != 0:
        pytest.skip("container tests run rootful podman: run them as root (as CI does)")
    root = tmp_path_factory.mktemp("podman")
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    (root / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\nruntime = "runc"\n'
    )
    env = dict(os.environ)
    env["CONTAINERS_STORAGE_CONF"] = str(root / "storage.conf")
    env["CONTAINERS_CONF"] = str(root / "containers.conf")
    (root / "auth.json").write_text('{"auths": {}}')  # never the machine's own logins
    env["REGISTRY_AUTH_FILE"] = str(root / "auth.json")
    return Podman(env=env)


@dataclass(frozen=True)
class DebianBase:
    """The Debian 12 base (CPython 3.11.2, glibc 2.36) as an OCI layout and a docker-archive."""

    oci: Path
    docker_archive: Path


def _rootfs() -> Path:
    """The mmdebstrap tarball, built once per machine (about a minute) and reused."""
    key = hashlib.sha256(" ".join(MMDEBSTRAP).encode()).hexdigest()[:16]
    cached = _CACHE / key / "rootfs.tar"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"rootfs.tar.{os.getpid()}")
        subprocess.run([*MMDEBSTRAP, str(partial)], check=True, capture_output=True, timeout=600)
        partial.replace(cached)
    return cached


@pytest.fixture(scope="session")
def debian_base(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DebianBase]:
    root = tmp_path_factory.mktemp("debian-base")
    name = "localhost/photonpack-test-base:bookworm"
    podman("import", "--change", "ENV=PATH=/usr/local/bin:/usr/bin:/bin", str(_rootfs()), name)
    archive = root / "base.tar"
    podman("save", "--format", "docker-archive", "-o", str(archive), name)
    podman.tool("skopeo", "copy", "-q", f"docker-archive:{archive}", f"oci:{root / 'oci'}:bookworm")
    yield DebianBase(oci=root / "oci", docker_archive=archive)


def image_layers(layout: Path) -> Sequence[tuple[str, bytes]]:
    """(media type, bytes) of each layer of the one image in an OCI layout."""
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    return [
        (layer["mediaType"], (blobs / layer["digest"][7:]).read_bytes())
        for layer in manifest["layers"]
    ]
