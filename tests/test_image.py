"""`photonpack image` without running a container: determinism, layers, checks, pushes.

The bases are genuine OCI layouts written by ``tests.support.images.write_base``;
the photons are real archives of real wheels (``stage_photon``). Running the
images is ``test_image_podman.py``'s job.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import write_archive
from photonpack.cli import cli
from photonpack.serving.deployment import ENV_VAR_REQUIRED
from tests.support.images import image_layers, write_base
from tests.support.registry import Registry, StagedPhoton, free_port, stage_photon

BIG = 11 * 1024 * 1024  # over the 10 MiB at which a wheel gets its own layer


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _archive(staged: StagedPhoton, path: Path) -> Path:
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


@pytest.fixture(scope="module")
def photons(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two photons sharing every wheel (one of them big), with different sources."""
    root = tmp_path_factory.mktemp("photons")
    wheels = [("bigdep", "1.0"), ("alpha", "1.0"), ("beta", "2.0")]
    payload = {"bigdep": BIG, "alpha": 0, "beta": 0}
    one = stage_photon(root, "counter", wheels, wheel_payload=payload)
    two = stage_photon(root, "adder", wheels, wheel_payload=payload)
    return _archive(one, root / "counter.photon"), _archive(two, root / "adder.photon")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_base(tmp_path_factory.mktemp("base") / "oci")


def _members(layer: bytes) -> Iterator[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        yield from tar.getmembers()


def _read(layer: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer)), mode="r:") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def test_same_photon_and_base_give_the_same_digest_in_any_directory_and_umask(
    photons: tuple[Path, Path], base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = []
    for index, umask in enumerate((0o022, 0o077)):
        work = tmp_path / f"elsewhere-{index}"
        work.mkdir()
        monkeypatch.chdir(work)
        monkeypatch.setenv("PHOTONPACK_HOME", str(work / "home"))
        old = os.umask(umask)
        try:
            result = _run("image", str(photons[0]), "--base", f"oci:{base}", "--oci-layout", "out")
        finally:
            os.umask(old)
        assert result.exit_code == 0, result.output
        digests.append(result.stdout.strip())
        index_json = json.loads((work / "out" / "index.json").read_text())
        assert index_json["manifests"][0]["digest"] == digests[-1]
    assert digests[0] == digests[1]
    assert digests[0].startswith("sha256:")


def test_layers_are_normalised_and_split_by_wheel(
    photons: tuple[Path, Path], base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    result = _run(
        "image", str(photons[0]), "--base", f"oci:{base}", "--oci-layout", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output
    layers = image_layers(tmp_path / "o")[1:]  # above the base's one
    assert len(layers) == 5  # setup, bigdep, the small wheels, runtime, the photon's files
    for media_type, data in layers:
        assert media_type == "application/vnd.oci.image.layer.v1.tar+gzip"
        assert data[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03"  # no mtime, no name
        members = list(_members(data))
        assert [m.name.rstrip("/") for m in members] == sorted(m.name.rstrip("/") for m in members)
        for member in members:
            assert member.mtime == 1700000000
            assert (member.uname, member.gname) == ("", "")
            assert member.mode in (0o755, 0o644, 0o777), member.name
            assert (member.uid, member.gid) in ((0, 0), (1000, 1000)), member.name
            assert member.pax_headers.keys() <= {"path", "linkpath"}
    setup, big, small, runtime, own = (data for _t, data in layers)
    assert _read(setup, "etc/passwd").endswith(b"lepton:x:1000:1000:lepton:/home/lepton:/bin/sh\n")
    assert _read(setup, "etc/group").endswith(b"lepton:x:1000:\n")
    assert _read(setup, "opt/photon/env/pyvenv.cfg") == (
        b"home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
        b"executable = /usr/bin/python3.11\n"
    )
    python = {m.name: m for m in _members(setup)}["opt/photon/env/bin/python"]
    assert (python.issym(), python.linkname) == (True, "/usr/bin/python3.11")
    big_names = {m.name for m in _members(big)}
    assert "opt/photon/env/lib/python3.11/site-packages/bigdep/data.bin" in big_names
    assert (
        "opt/photon/env/lib/python3.11/site-packages/bigdep/__pycache__/__init__.cpython-311.pyc"
        in big_names
    )
    small_names = {m.name for m in _members(small)}
    assert "opt/photon/env/lib/python3.11/site-packages/alpha/__init__.py" in small_names
    assert "opt/photon/env/lib/python3.11/site-packages/beta-2.0.dist-info/RECORD" in small_names
    assert "opt/photon/env/lib/python3.11/site-packages/photonpack/__init__.py" in {
        m.name for m in _members(runtime)
    }
    owners = {m.name: (m.uid, m.gid) for m in _members(own)}
    assert owners["home/lepton/counter.py"] == (1000, 1000)
    assert owners["home/lepton/pylock.counter.toml"] == (1000, 1000)


def test_config_runs_the_photon_as_lepton_and_records_its_digest(
    photons: tuple[Path, Path], base: Path, tmp_path: Path
) -> None:
    result = _run(
        "image",
        str(photons[0]),
        "--base",
        f"oci:{base}",
        "--oci-layout",
        str(tmp_path / "o"),
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    blobs = tmp_path / "o" / "blobs" / "sha256"
    manifest = json.loads((blobs / report["digest"][7:]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
    run = config["config"]
    assert run["User"] == "1000:1000"
    assert run["WorkingDir"] == "/home/lepton"
    assert run["Entrypoint"] == [
        "/opt/photon/env/bin/python", "-I", "-m", "photonpack.serving.serve",
        "--entry", "counter.py:C", "--host", "0.0.0.0",
    ]  # fmt: skip
    assert run["Cmd"] == ["--port", "8080"]  # `podman run IMAGE --port 9000` replaces it
    assert run["StopSignal"] == "SIGTERM"
    assert run["ExposedPorts"] == {"8080/tcp": {}}
    assert run["Env"] == ["PATH=/opt/photon/env/bin:/usr/local/bin:/usr/bin:/bin"]
    assert not any("TOKEN" in item for item in run["Env"])
    labels = run["Labels"]
    assert labels["dev.photonpack.photon.digest"] == report["photon"]["digest"]
    assert labels["org.opencontainers.image.base.digest"] == report["base"]["digest"]
    assert labels["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z"
    assert labels["dev.photonpack.image.bytecode"] == "cpython-311"
    assert config["created"] == "1970-01-01T00:00:00Z"
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"]) == 6
    assert manifest["annotations"]["dev.photonpack.photon.digest"] == report["photon"]["digest"]


def test_a_sibling_photon_pushes_only_its_own_layers(
    photons: tuple[Path, Path], base: Path, registry: Registry
) -> None:
    first = _run(
        "image",
        str(photons[0]),
        "--base",
        f"oci:{base}",
        "--push",
        f"{registry.host}/img/stack:one",
        "--json",
    )
    assert first.exit_code == 0, first.output
    second = _run(
        "image",
        str(photons[1]),
        "--base",
        f"oci:{base}",
        "--push",
        f"{registry.host}/img/stack:two",
        "--json",
    )
    assert second.exit_code == 0, second.output
    one, two = json.loads(first.stdout)["push"], json.loads(second.stdout)["push"]
    assert len(one["uploaded"]) == 7  # config + the base's layer + 5 layers
    assert len(two["uploaded"]) == 2  # config + the photon's files
    assert len(two["present"]) == 5
    assert two["uploaded_bytes"] < 0.05 * one["uploaded_bytes"]


def test_a_missing_system_package_is_refused_and_nothing_is_written(
    base: Path, tmp_path: Path
) -> None:
    staged = stage_photon(tmp_path, "fetcher", [("alpha", "1.0")])
    photon = dataclasses.replace(staged.manifest.photon, system_dependency=("wget", "libc6"))
    staged = StagedPhoton(
        manifest=dataclasses.replace(staged.manifest, photon=photon), blobs=staged.blobs
    )
    archive = _archive(staged, tmp_path / "fetcher.photon")
    result = _run(
        "image", str(archive), "--base", f"oci:{base}", "--oci-layout", str(tmp_path / "o")
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: base oci:{base} lacks the system packages fetcher needs: wget (checked its dpkg "
        "database); choose a base that has them, or build one (FROM the base, apt-get install them)"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("python", "found"),
    [
        ("3.12.1", "CPython 3.12.1 at /usr/bin/python3.12"),
        (None, "no CPython (looked for /usr/local/bin/python3.N and /usr/bin/python3.N)"),
    ],
)
def test_a_base_without_the_archives_python_is_refused_naming_both(
    photons: tuple[Path, Path], tmp_path: Path, python: str | None, found: str
) -> None:
    other = write_base(tmp_path / "other", python=python)
    result = _run("image", str(photons[0]), "--base", f"oci:{other}", "-o", str(tmp_path / "x.tar"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: base oci:{other} has {found} (glibc 2.36 on x86_64), but the archive was built "
        "for cp311-manylinux_2_28_x86_64; choose a base with a matching CPython (e.g. --base for "
        "a python:3.X image of that platform) or rebuild with --target"
    )
    assert list(tmp_path.glob("*.tar*")) == []


def test_an_altered_base_layer_is_an_integrity_failure(
    photons: tuple[Path, Path], tmp_path: Path
) -> None:
    damaged = write_base(tmp_path / "damaged")
    blobs = damaged / "blobs" / "sha256"
    manifest = json.loads(
        (
            blobs / json.loads((damaged / "index.json").read_text())["manifests"][0]["digest"][7:]
        ).read_text()
    )
    layer = manifest["layers"][0]
    data = bytearray((blobs / layer["digest"][7:]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (blobs / layer["digest"][7:]).write_bytes(bytes(data))
    result = _run(
        "image", str(photons[0]), "--base", f"oci:{damaged}", "-o", str(tmp_path / "x.tar")
    )
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1].startswith(
        f"error: layer of oci:{damaged}: expected {layer['size']} bytes with {layer['digest']}, "
        f"found {layer['size']} bytes with sha256:"
    )
    assert result.stderr.endswith("; the base image was altered, copy it again\n")
    assert not (tmp_path / "x.tar").exists()


def test_an_unwritable_output_is_one_line_and_leaves_nothing(
    photons: tuple[Path, Path], base: Path, tmp_path: Path
) -> None:
    result = _run(
        "image", str(photons[0]), "--base", f"oci:{base}", "-o", str(tmp_path / "no" / "x.tar")
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot write {tmp_path / 'no' / 'x.tar'}: No such file or directory; "
        "choose a writable place with free space"
    )


def test_no_output_is_a_usage_error(photons: tuple[Path, Path], base: Path) -> None:
    result = _run("image", str(photons[0]), "--base", f"oci:{base}")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: photonpack image needs somewhere to put the image: --push REF, -o FILE.tar "
        "or --oci-layout DIR\n"
    )


def _upload_layout(layout: Path, registry: Registry, repository: str, tag: str) -> str:
    """Push an OCI layout's image with photonpack's registry client; its manifest digest."""
    from photonpack.oci.client import RegistryClient

    blobs = layout / "blobs" / "sha256"
    entry = json.loads((layout / "index.json").read_text())["manifests"][0]
    manifest = (blobs / entry["digest"][7:]).read_bytes()
    descriptors = json.loads(manifest)
    with RegistryClient(registry.host) as client:
        for desc in [descriptors["config"], *descriptors["layers"]]:
            with (blobs / desc["digest"][7:]).open("rb") as stream:
                client.upload_blob(
                    repository, digest=desc["digest"], size=desc["size"], stream=stream
                )
        client.put_manifest(repository, tag, manifest, entry["mediaType"])
    return str(entry["digest"])


def test_a_registry_base_is_pulled_by_digest_and_its_layers_mounted_on_push(
    photons: tuple[Path, Path], base: Path, registry: Registry
) -> None:
    base_digest = _upload_layout(base, registry, "bases/tiny", "1")
    result = _run(
        "image", str(photons[0]), "--base", f"{registry.host}/bases/tiny:1",
        "--push", f"{registry.host}/img/mounted:v1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["base"]["digest"] == base_digest
    assert result.stderr.splitlines()[0] == f"base {registry.host}/bases/tiny:1 {base_digest}"
    base_layer = json.loads((base / "blobs" / "sha256" / base_digest[7:]).read_text())["layers"][0][
        "digest"
    ]
    assert report["push"]["mounted"] == [base_layer]
    assert base_layer not in report["push"]["uploaded"]


def test_an_unreachable_base_registry_suggests_an_oci_layout(photons: tuple[Path, Path]) -> None:
    port = free_port()
    result = _run(
        "image", str(photons[0]), "--base", f"127.0.0.1:{port}/bases/gone:1", "-o", "x.tar"
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: cannot pull the base 127.0.0.1:{port}/bases/gone:1: cannot reach registry "
        f"http://127.0.0.1:{port}: [Errno 111] Connection refused; on a machine without that "
        "registry, copy the base beforehand (skopeo copy docker://... oci:DIR) and pass "
        "--base oci:DIR\n"
    )


def test_the_photons_image_attribute_is_the_default_base(tmp_path: Path) -> None:
    staged = stage_photon(tmp_path, "lep", [("alpha", "1.0")])
    photon = dataclasses.replace(staged.manifest.photon, image="lepton:photon-py3.11-runner")
    manifest = dataclasses.replace(staged.manifest, photon=photon)
    archive = _archive(StagedPhoton(manifest=manifest, blobs=staged.blobs), tmp_path / "l.photon")
    result = _run("image", str(archive), "-o", str(tmp_path / "x.tar"))
    assert result.exit_code == 1
    assert result.stderr == (
        "error: cannot pull the base lepton:photon-py3.11-runner: expected a reference like "
        "localhost:5000/team/counter:v1, found 'lepton:photon-py3.11-runner': name the registry "
        "host first; on a machine without that registry, copy the base beforehand (skopeo copy "
        "docker://... oci:DIR) and pass --base oci:DIR\n"
    )


def test_a_cmd_photon_runs_its_command_on_its_port_with_its_template_env(
    tmp_path: Path, base: Path
) -> None:
    staged = stage_photon(tmp_path, "webui", [("alpha", "1.0")])
    photon = dataclasses.replace(
        staged.manifest.photon,
        cmd=("webui-server", "--listen"),
        args=("--port", "7860"),
        exposed_port=7860,
        deployment_template={"env": {"MODEL": "tiny", "HF_TOKEN": ENV_VAR_REQUIRED}},
    )
    manifest = dataclasses.replace(staged.manifest, photon=photon)
    archive = _archive(dataclasses.replace(staged, manifest=manifest), tmp_path / "webui.photon")
    result = _run(
        "image", str(archive), "--base", f"oci:{base}", "--oci-layout", str(tmp_path / "o"),
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    blobs = tmp_path / "o" / "blobs" / "sha256"
    image = json.loads((blobs / json.loads(result.stdout)["digest"][7:]).read_bytes())
    run = json.loads((blobs / image["config"]["digest"][7:]).read_bytes())["config"]
    assert run["Entrypoint"] == [
        "/opt/photon/env/bin/python", "-I", "/opt/photon/init.py", "webui-server", "--listen",
    ]  # fmt: skip
    assert run["Cmd"] == ["--port", "7860"]
    assert run["ExposedPorts"] == {"7860/tcp": {}}
    assert run["Env"] == [  # a required variable is never given a value
        "PATH=/opt/photon/env/bin:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV=/opt/photon/env",
        "MODEL=tiny",
    ]


def test_zstd_layers_hold_the_same_tars_and_are_deterministic(
    photons: tuple[Path, Path], base: Path, tmp_path: Path
) -> None:
    import zstandard

    digests = {}
    for name, compression in (("gz", "gzip"), ("zst", "zstd"), ("zst2", "zstd")):
        result = _run("image", str(photons[0]), "--base", f"oci:{base}", "--compression",
                      compression, "--oci-layout", str(tmp_path / name), "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        digests[name] = json.loads(result.stdout)["digest"]
    assert digests["zst"] == digests["zst2"] != digests["gz"]
    gz_layers = image_layers(tmp_path / "gz")
    zst_layers = image_layers(tmp_path / "zst")
    assert gz_layers[0] == zst_layers[0]  # the base's own layer is kept as it was
    assert len(gz_layers) == len(zst_layers) == 6
    for (_, gz_data), (media_type, zst_data) in zip(gz_layers[1:], zst_layers[1:], strict=True):
        assert media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
        tar = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(zst_data)).read()
        assert tar == gzip.decompress(gz_data)  # the same layer, so the same diff_id


def _compile(directory: Path, name: str, *flags: str) -> bytes:
    source = directory / f"{name}.c"
    source.write_text("int photonpack_test(void) { return 1; }\n")
    out = directory / f"{name}.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(out), str(source), *flags],
        check=True, capture_output=True, cwd=directory,
    )  # fmt: skip
    return out.read_bytes()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to make a real ELF library")
def test_a_base_without_a_library_the_wheels_assume_is_refused_naming_it(tmp_path: Path) -> None:
    # A real extension module that needs libstdc++ (which manylinux wheels may assume) and a
    # library of the host's (as libcuda.so.1 comes from the GPU driver).
    _compile(tmp_path, "libphotonpackhost", "-Wl,-soname,libphotonpackhost.so.1")
    extension = _compile(
        tmp_path,
        "native",
        "-Wl,--no-as-needed",
        "-lstdc++",
        f"-L{tmp_path}",
        "-l:libphotonpackhost.so",
    )
    staged = stage_photon(
        tmp_path, "native", [("native", "1.0")],
        wheel_files={"native": {"native/_ext.cpython-311-x86_64-linux-gnu.so": extension}},
    )  # fmt: skip
    archive = _archive(staged, tmp_path / "native.photon")
    slim = write_base(tmp_path / "slim", libraries=())
    result = _run(
        "image", str(archive), "--base", f"oci:{slim}", "--oci-layout", str(tmp_path / "o")
    )
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] + "\n" == (
        f"error: base oci:{slim} lacks shared libraries the photon's wheels assume the system "
        "has: libstdc++.so.6 (Debian: libstdc++6; needed by "
        "lib/python3.11/site-packages/native/_ext.cpython-311-x86_64-linux-gnu.so); choose a "
        "base that has them, or build one (FROM the base, install them); --skip-system-check "
        "builds anyway\n"
    )
    assert not (tmp_path / "o").exists()
    full = write_base(tmp_path / "full")
    result = _run(
        "image", str(archive), "--base", f"oci:{full}", "--oci-layout", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output
    assert (
        f"warning: base oci:{full} has no libphotonpackhost.so.1 (needed by "
        "lib/python3.11/site-packages/native/_ext.cpython-311-x86_64-linux-gnu.so); the photon "
        "fails to import them unless the host provides them at run time"
    ) in result.output
