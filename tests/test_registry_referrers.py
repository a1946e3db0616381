"""`push --sbom`: the SBOM attached as an OCI 1.1 referrer, listed by the registry and inspect."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import write_archive
from photonpack.cli import cli
from tests.support.registry import Registry, stage_photon

CYCLONEDX = "application/vnd.cyclonedx+json"


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("referrers-archive")
    staged = stage_photon(root, "attested", [("alpha", "1.0"), ("beta", "2.0")])
    path = root / "attested.photon"
    with path.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    return path


def _get(host: str, path: str, accept: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_push_sbom_attaches_it_as_a_referrer_the_registry_lists(
    registry: Registry, archive: Path, tmp_path: Path
) -> None:
    ref = f"{registry.host}/referrers/attested:v1"
    pushed = _run("push", str(archive), ref, "--sbom")
    assert pushed.exit_code == 0, pushed.output
    subject = pushed.stdout.strip()
    hex_ = subject.removeprefix("sha256:")
    lines = pushed.stderr.splitlines()
    assert lines[-1].startswith(f"attached the SBOM ({CYCLONEDX}) as sha256:")
    referrer = lines[-1].split(" as ", 1)[1].split(",", 1)[0]
    # docker-registry 2.8 has no referrers API: the distribution spec's fallback tag holds them.
    assert lines[-1].endswith(f", indexed by the sha256-{hex_}")

    status, body = _get(
        registry.host,
        f"/v2/referrers/attested/manifests/sha256-{hex_}",
        "application/vnd.oci.image.index.v1+json",
    )
    assert status == 200
    index = json.loads(body)
    assert [(m["digest"], m["artifactType"]) for m in index["manifests"]] == [(referrer, CYCLONEDX)]
    status, body = _get(
        registry.host,
        f"/v2/referrers/attested/manifests/{referrer}",
        "application/vnd.oci.image.manifest.v1+json",
    )
    artifact = json.loads(body)
    assert artifact["subject"]["digest"] == subject
    assert artifact["layers"][0]["annotations"] == {
        "org.opencontainers.image.title": "attested.cdx.json"
    }

    again = _run("push", str(archive), ref, "--sbom")
    assert again.exit_code == 0
    _, body = _get(
        registry.host,
        f"/v2/referrers/attested/manifests/sha256-{hex_}",
        "application/vnd.oci.image.index.v1+json",
    )
    assert len(json.loads(body)["manifests"]) == 1  # the same SBOM is listed once

    inspected = _run("inspect", ref, "--json")
    assert inspected.exit_code == 0, inspected.output
    report = json.loads(inspected.stdout)
    assert report["manifest_digest"] == subject
    assert report["referrers"] == [
        {
            "digest": referrer,
            "size": report["referrers"][0]["size"],
            "artifact_type": CYCLONEDX,
            "annotations": {"org.opencontainers.image.title": "attested.cdx.json"},
        }
    ]
    text = _run("inspect", ref).stdout
    assert "referrers (1)\n" in text
    assert f"  {CYCLONEDX}  {referrer}  " in text

    out, into = tmp_path / "pulled.photon", tmp_path / "attached"
    pulled = _run("pull", ref, "-o", str(out), "--referrers", str(into))
    assert pulled.exit_code == 0, pulled.output
    assert pulled.stderr.splitlines()[-1] == (
        f"referrer {CYCLONEDX} {referrer} -> {into / 'attested.cdx.json'}"
    )
    sbom = _run("sbom", str(archive))
    assert (into / "attested.cdx.json").read_text() == sbom.stdout


def test_pull_of_a_photon_without_referrers_lists_none(registry: Registry, archive: Path) -> None:
    ref = f"{registry.host}/referrers/plain:v1"
    assert _run("push", str(archive), ref).exit_code == 0
    out = archive.parent / "plain.photon"
    pulled = _run("pull", ref, "-o", str(out))
    assert pulled.exit_code == 0
    # The push left this store as it was (a push moves a photon; run admits it).
    assert pulled.stderr.startswith(f"pulled {ref} to {out}: downloaded 6 of 6 blobs")
    assert pulled.stderr.count("\n") == 1  # and no referrer line
    assert json.loads(_run("inspect", ref, "--json").stdout)["referrers"] == []


def test_an_spdx_sbom_attached_on_a_private_registry_is_listed_with_the_auth_file_login(
    auth_registry: Registry, archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from tests.support.registry import PASSWORD, USERNAME

    login = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {auth_registry.host: {"auth": login}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    ref = f"{auth_registry.host}/referrers/private:v1"

    pushed = _run("push", str(archive), ref, "--sbom", "--sbom-format", "spdx")
    assert pushed.exit_code == 0, pushed.output
    assert "attached the SBOM (application/spdx+json) as sha256:" in pushed.stderr
    report = json.loads(_run("inspect", ref, "--json").stdout)
    assert [(r["artifact_type"], r["annotations"]) for r in report["referrers"]] == [
        ("application/spdx+json", {"org.opencontainers.image.title": "attested.spdx.json"})
    ]
    into = tmp_path / "attached"
    pulled = _run("pull", ref, "-o", str(tmp_path / "p.photon"), "--referrers", str(into))
    assert pulled.exit_code == 0, pulled.output
    spdx = json.loads((into / "attested.spdx.json").read_text())
    assert spdx["spdxVersion"] == "SPDX-2.3"
    assert (into / "attested.spdx.json").read_bytes() == _run(
        "sbom", str(archive), "--format", "spdx"
    ).stdout_bytes
