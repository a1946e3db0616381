"""``photonpack sbom``: deterministic CycloneDX 1.6, valid against the vendored schema."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import referencing
from click.testing import CliRunner
from referencing.jsonschema import DRAFT7

from photonpack.cli import cli
from photonpack.sbom import SBOM_NAMESPACE, purl, sbom, sbom_bytes
from tests.support.archives import Archive, make_archive

SCHEMAS = Path(__file__).parent / "data" / "cyclonedx"


def cyclonedx_validator() -> jsonschema.Draft7Validator:
    """The CycloneDX 1.6 schema with its spdx/jsf references resolved offline."""
    resources = []
    for path in SCHEMAS.glob("*.schema.json"):
        document = json.loads(path.read_text())
        resource = referencing.Resource.from_contents(document, default_specification=DRAFT7)
        resources += [
            (document["$id"], resource),
            (f"http://cyclonedx.org/schema/{path.name}", resource),
        ]
    schema = json.loads((SCHEMAS / "bom-1.6.SNAPSHOT.schema.json").read_text())
    return jsonschema.Draft7Validator(
        schema,
        registry=referencing.Registry().with_resources(resources),
        format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
    )


def test_sbom_validates_against_cyclonedx_1_6(small_archive: Archive) -> None:
    validator = cyclonedx_validator()
    document = sbom(small_archive.manifest)
    assert list(validator.iter_errors(document)) == []
    broken: dict[str, Any] = {**document, "serialNumber": "not-a-urn"}
    assert list(validator.iter_errors(broken)) != []


def test_sbom_is_the_same_bytes_for_the_same_archive(
    small_archive: Archive, tmp_path: Path
) -> None:
    again = make_archive(tmp_path, extra_files={"data/model.bin": b"weights" * 100})
    assert again.manifest.digest == small_archive.manifest.digest
    assert sbom_bytes(again.manifest) == sbom_bytes(small_archive.manifest)
    document = sbom(small_archive.manifest)
    assert "timestamp" not in document["metadata"]
    assert document["serialNumber"] == uuid.uuid5(SBOM_NAMESPACE, small_archive.manifest.digest).urn


def test_sbom_lists_wheels_with_purl_and_sha256(small_archive: Archive) -> None:
    m = small_archive.manifest
    wheel = m.wheels[0]
    document = sbom(m)
    libraries = [c for c in document["components"] if c["type"] == "library"]
    assert libraries == [
        {
            "type": "library",
            "bom-ref": f"wheel:{wheel.filename}",
            "name": "tinydep",
            "version": "1.0",
            "purl": "pkg:pypi/tinydep@1.0",
            "hashes": [{"alg": "SHA-256", "content": wheel.sha256}],
            "properties": [
                {"name": "photonpack:wheel", "value": wheel.filename},
                {"name": "photonpack:size", "value": str(wheel.size)},
                {"name": "photonpack:target", "value": "cp311-manylinux_2_28_x86_64"},
            ],
        }
    ]
    files = {
        c["name"]: c["hashes"][0]["content"] for c in document["components"] if c["type"] == "file"
    }
    assert files == {f.path: f.sha256 for f in (*m.files, *m.runtime)}
    root = document["metadata"]["component"]
    assert (root["type"], root["name"], root["version"]) == ("application", "counter", m.digest)
    assert root["hashes"] == [{"alg": "SHA-256", "content": m.digest.removeprefix("sha256:")}]
    assert document["dependencies"][0] == {
        "ref": root["bom-ref"],
        "dependsOn": [f"wheel:{wheel.filename}"],
    }


def test_purl_normalizes_the_project_name(small_archive: Archive) -> None:
    import dataclasses

    wheel = dataclasses.replace(small_archive.manifest.wheels[0], name="Zope_Interface")
    assert purl(wheel) == "pkg:pypi/zope-interface@1.0"


def test_sbom_command_prints_or_writes_the_same_bytes(
    small_archive: Archive, tmp_path: Path
) -> None:
    runner = CliRunner()
    printed = runner.invoke(cli, ["sbom", str(small_archive.path)])
    assert printed.exit_code == 0
    out = tmp_path / "sbom.json"
    written = runner.invoke(cli, ["sbom", str(small_archive.path), "-o", str(out)])
    assert (written.exit_code, written.stdout) == (0, "")
    assert out.read_bytes() == printed.stdout_bytes == sbom_bytes(small_archive.manifest)
