"""`photonpack image --platform`: one image per platform and an OCI index, without emulation.

The photon has targets for x86_64 and aarch64 and a project whose wheels are
built for each (``native``); the base is an OCI layout holding an index over a
tiny amd64 and a tiny arm64 base (``write_multiplatform_base``). Running the
amd64 image of an index is ``test_image_podman.py``'s job.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import write_archive
from photonpack.cli import cli
from tests.support.images import write_base, write_multiplatform_base
from tests.support.registry import Registry, StagedPhoton, stage_photon

X86 = "cp311-manylinux_2_28_x86_64"
ARM = "cp311-manylinux_2_28_aarch64"
SITE = "opt/photon/env/lib/python3.11/site-packages"


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _archive(staged: StagedPhoton, path: Path) -> Path:
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


def _index_layout(photon: Path, base: Path, platforms: str, layout: Path) -> tuple[Result, Any]:
    """``image --platform PLATFORMS --oci-layout LAYOUT --json``: the result and its report."""
    result = _run(
        "image", str(photon), "--base", f"oci:{base}:bookworm",
        "--platform", platforms, "--oci-layout", str(layout), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result, json.loads(result.stdout)


@pytest.fixture(scope="module")
def photon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("multi")
    staged = stage_photon(
        root, "multi", [("nat", "1.0"), ("alpha", "1.0")], targets=(X86, ARM), native=("nat",)
    )
    return _archive(staged, root / "multi.photon")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_multiplatform_base(tmp_path_factory.mktemp("base") / "oci")


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def _json(layout: Path, digest: str) -> Any:
    return json.loads(_blob(layout, digest))


def _files(layout: Path, manifest: Any) -> dict[str, bytes]:
    """Every regular file the image's own layers (above the base's one) hold."""
    found = {}
    for layer in manifest["layers"][1:]:
        tar_bytes = gzip.decompress(_blob(layout, layer["digest"]))
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    found[member.name] = handle.read()
    return found


def test_two_platforms_give_an_index_over_one_image_each_with_its_own_wheels(
    photon: Path, base: Path, tmp_path: Path
) -> None:
    result, report = _index_layout(photon, base, "linux/amd64,linux/arm64", tmp_path / "o")
    layout = tmp_path / "o"
    top = json.loads((layout / "index.json").read_text())["manifests"]
    assert [(m["mediaType"], m["digest"]) for m in top] == [
        ("application/vnd.oci.image.index.v1+json", report["digest"])
    ]
    index = _json(layout, report["digest"])
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    assert [(p["platform"], p["target"]) for p in report["platforms"]] == [
        ("linux/amd64", X86),
        ("linux/arm64", ARM),
    ]
    for entry, target, machine in zip(
        index["manifests"], (X86, ARM), ("x86_64", "aarch64"), strict=True
    ):
        manifest = _json(layout, entry["digest"])
        config = _json(layout, manifest["config"]["digest"])
        assert config["architecture"] == entry["platform"]["architecture"]
        files = _files(layout, manifest)
        assert files[f"{SITE}/nat/_native.txt"] == f"{target}\n".encode()
        wheel = f"nat-1.0-cp311-cp311-manylinux_2_28_{machine}.whl"
        assert (
            b"Tag: cp311-cp311-manylinux_2_28_" + machine.encode()
            in files[f"{SITE}/nat-1.0.dist-info/WHEEL"]
        ), wheel
        assert f"{SITE}/alpha/__pycache__/__init__.cpython-311.pyc" in files
    assert "index sha256:" in result.stderr
    assert f"base oci:{base}:bookworm linux/arm64 sha256:" in result.stderr


def test_the_index_is_the_same_whatever_the_order_and_directory(
    photon: Path, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = []
    for number, platforms in enumerate(("linux/amd64,linux/arm64", "linux/arm64,linux/amd64")):
        monkeypatch.setenv("PHOTONPACK_HOME", str(tmp_path / f"home-{number}"))
        result = _run(
            "image", str(photon), "--base", f"oci:{base}:bookworm", "--platform", platforms,
            "--oci-layout", str(tmp_path / f"o{number}"),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        digests.append(result.stdout.strip())
    assert digests[0] == digests[1]


def test_one_platform_of_a_multiplatform_base_is_a_plain_image(
    photon: Path, base: Path, tmp_path: Path
) -> None:
    result = _run(
        "image", str(photon), "--base", f"oci:{base}:bookworm", "--platform", "linux/arm64",
        "--oci-layout", str(tmp_path / "o"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["platform"], report["target"]) == ("linux/arm64", ARM)
    manifest = _json(tmp_path / "o", report["digest"])
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert _json(tmp_path / "o", manifest["config"]["digest"])["architecture"] == "arm64"


def test_the_index_is_pushed_with_its_images_and_skopeo_reads_it(
    photon: Path, base: Path, registry: Registry
) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("needs skopeo")
    reference = f"{registry.host}/multi/svc:v1"
    result = _run(
        "image", str(photon), "--base", f"oci:{base}:bookworm",
        "--platform", "linux/amd64,linux/arm64", "--push", reference, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == report["digest"]
    index = json.loads(raw)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    arm_digest = report["platforms"][1]["digest"]
    assert index["manifests"][1]["digest"] == arm_digest
    arm = subprocess.run(
        ["skopeo", "inspect", "--config", "--tls-verify=false",
         f"docker://{registry.host}/multi/svc@{arm_digest}"],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    assert json.loads(arm)["architecture"] == "arm64"
    assert len(report["push"]["uploaded"]) == len(set(report["push"]["uploaded"]))


def test_a_platform_missing_from_the_base_or_the_archive_names_both_lists(
    photon: Path, tmp_path: Path
) -> None:
    amd64_only = write_base(tmp_path / "amd64")
    result = _run(
        "image", str(photon), "--base", f"oci:{amd64_only}",
        "--platform", "linux/amd64,linux/arm64", "--oci-layout", str(tmp_path / "o"),
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot build --platform linux/arm64: the base oci:{amd64_only} has images for "
        f"linux/amd64, and the archive has targets for linux/amd64 ({X86}), linux/arm64 ({ARM}); "
        "ask for platforms both have (linux/amd64), choose a base built for the others, or lock "
        "and build the archive with --target for them"
    )
    assert not (tmp_path / "o").exists()


def test_a_platform_the_archive_lacks_is_refused(base: Path, tmp_path: Path) -> None:
    staged = stage_photon(tmp_path, "plain", [("alpha", "1.0")])
    archive = _archive(staged, tmp_path / "plain.photon")
    result = _run(
        "image", str(archive), "--base", f"oci:{base}:bookworm",
        "--platform", "linux/arm64", "--push", "127.0.0.1:1/x/y:z",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot build --platform linux/arm64: the base oci:{base}:bookworm has images "
        f"for linux/amd64, linux/arm64, and the archive has targets for linux/amd64 ({X86}); "
        "ask for platforms both have (linux/amd64), choose a base built for the others, or lock "
        "and build the archive with --target for them"
    )


def test_a_docker_archive_of_two_platforms_is_a_usage_error(photon: Path, tmp_path: Path) -> None:
    result = _run(
        "image", str(photon), "--platform", "linux/amd64,linux/arm64", "-o", str(tmp_path / "x.tar")
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: -o {tmp_path / 'x.tar'}: a docker-archive holds one image, not one per platform "
        "(linux/amd64, linux/arm64); write --oci-layout DIR or --push REF, or pass one --platform\n"
    )


def test_a_malformed_platform_is_one_line(photon: Path, tmp_path: Path) -> None:
    result = _run("image", str(photon), "--platform", "arm64", "-o", str(tmp_path / "x.tar"))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --platform 'arm64': expected a comma-separated list like "
        "linux/amd64,linux/arm64 (found 'arm64'); images are for linux only\n"
    )


def test_a_layout_whose_index_json_lists_the_platforms_is_a_multiplatform_base(
    photon: Path, base: Path, tmp_path: Path
) -> None:
    flat = Path(shutil.copytree(base, tmp_path / "flat"))
    named = json.loads((flat / "index.json").read_text())["manifests"][0]
    index = _json(flat, named["digest"])
    (flat / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": index["manifests"]})
    )
    result = _run(
        "image", str(photon), "--base", f"oci:{flat}", "--platform", "linux/amd64,linux/arm64",
        "--oci-layout", str(tmp_path / "o"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [p["base_digest"] for p in report["platforms"]] == [
        m["digest"] for m in index["manifests"]
    ]


def _upload_index(layout: Path, registry: Registry, repository: str, tag: str) -> str:
    """Push a multi-platform layout's index, its images and their blobs; the index digest."""
    from photonpack.oci.client import RegistryClient

    named = json.loads((layout / "index.json").read_text())["manifests"][0]
    index = _json(layout, named["digest"])
    with RegistryClient(registry.host) as client:
        for entry in index["manifests"]:
            manifest = _json(layout, entry["digest"])
            for desc in [manifest["config"], *manifest["layers"]]:
                with (layout / "blobs" / "sha256" / desc["digest"][7:]).open("rb") as stream:
                    client.upload_blob(
                        repository, digest=desc["digest"], size=desc["size"], stream=stream
                    )
            data = _blob(layout, entry["digest"])
            client.put_manifest(repository, entry["digest"], data, entry["mediaType"])
        client.put_manifest(repository, tag, _blob(layout, named["digest"]), named["mediaType"])
    return str(named["digest"])


def test_a_registry_index_is_a_multiplatform_base(
    photon: Path, base: Path, registry: Registry, tmp_path: Path
) -> None:
    _upload_index(base, registry, "bases/multi", "1")
    result = _run(
        "image", str(photon), "--base", f"{registry.host}/bases/multi:1",
        "--platform", "linux/amd64,linux/arm64", "--oci-layout", str(tmp_path / "o"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    local = _run(
        "image", str(photon), "--base", f"oci:{base}:bookworm",
        "--platform", "linux/amd64,linux/arm64", "--oci-layout", str(tmp_path / "o2"), "--json",
    )  # fmt: skip
    assert json.loads(local.stdout)["digest"] == report["digest"]  # the same bases, by digest
    missing = _run(
        "image", str(photon), "--base", f"{registry.host}/bases/multi:1",
        "--platform", "linux/s390x", "--oci-layout", str(tmp_path / "o3"),
    )  # fmt: skip
    assert missing.exit_code == 1
    assert missing.stderr.splitlines()[-1].startswith(
        f"error: cannot build --platform linux/s390x: the base {registry.host}/bases/multi:1 "
        "has images for linux/amd64, linux/arm64, and the archive has targets for linux/amd64"
    )


ARM7 = "cp311-manylinux_2_28_armv7l"
ARM6 = "cp311-manylinux_2_28_armv6l"


def test_arm_v6_and_v7_are_two_platforms_each_with_its_own_base_and_wheels(
    tmp_path: Path,
) -> None:
    base = write_multiplatform_base(tmp_path / "base", ("arm/v6", "arm/v7"))
    staged = stage_photon(tmp_path, "arms", [("nat", "1.0")], targets=(ARM6, ARM7), native=("nat",))
    archive = _archive(staged, tmp_path / "arms.photon")
    result, report = _index_layout(archive, base, "linux/arm/v7,linux/arm/v6", tmp_path / "o")
    assert [(p["platform"], p["target"]) for p in report["platforms"]] == [
        ("linux/arm/v6", ARM6),
        ("linux/arm/v7", ARM7),
    ]
    layout = tmp_path / "o"
    index = _json(layout, report["digest"])
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "arm", "os": "linux", "variant": "v6"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
    ]
    for entry, target in zip(index["manifests"], (ARM6, ARM7), strict=True):
        manifest = _json(layout, entry["digest"])
        config = _json(layout, manifest["config"]["digest"])
        assert (config["architecture"], config["variant"]) == ("arm", entry["platform"]["variant"])
        assert _files(layout, manifest)[f"{SITE}/nat/_native.txt"] == f"{target}\n".encode()
    assert f"base oci:{base}:bookworm linux/arm/v6 sha256:" in result.stderr


def test_an_armv7l_archive_takes_the_v7_image_of_a_v6_and_v7_base(tmp_path: Path) -> None:
    base = write_multiplatform_base(tmp_path / "base", ("arm/v6", "arm/v7"))
    staged = stage_photon(tmp_path, "arm7", [("nat", "1.0")], targets=(ARM7,), native=("nat",))
    archive = _archive(staged, tmp_path / "arm7.photon")
    result = _run(
        "image", str(archive), "--base", f"oci:{base}:bookworm",
        "--oci-layout", str(tmp_path / "o"), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["platform"], report["target"]) == ("linux/arm/v7", ARM7)
    base_index = json.loads((base / "index.json").read_text())["manifests"][0]
    v7 = _json(base, base_index["digest"])["manifests"][1]
    assert v7["platform"]["variant"] == "v7"
    assert report["base"]["digest"] == v7["digest"]


def test_an_armv6l_archive_on_a_v7_only_base_names_both_platforms(tmp_path: Path) -> None:
    base = write_multiplatform_base(tmp_path / "base", ("arm/v7",))
    staged = stage_photon(tmp_path, "arm6", [("nat", "1.0")], targets=(ARM6,), native=("nat",))
    archive = _archive(staged, tmp_path / "arm6.photon")
    result = _run(
        "image", str(archive), "--base", f"oci:{base}:bookworm", "--oci-layout", str(tmp_path / "o")
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: oci:{base}:bookworm has no image for linux/arm/v6 (it has: linux/arm/v7); "
        "choose a base built for the archive's platform"
    )
