"""``photonpack sbom``: deterministic CycloneDX 1.6, valid against the vendored schema."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import referencing
from click.testing import CliRunner
from packaging.utils import canonicalize_name
from referencing.jsonschema import DRAFT7

from photonpack.cli import cli
from photonpack.sbom import SBOM_NAMESPACE, Facts, WheelFacts, purl, sbom, sbom_bytes, spdx
from photonpack.sbom.document import archive_sbom
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
    assert out.read_bytes() == printed.stdout_bytes == archive_sbom(small_archive.path, "cyclonedx")


def spdx_problems(document: dict[str, Any], tmp_path: Path) -> list[str]:
    """What the SPDX project's own validator (spdx-tools) finds wrong with ``document``."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = tmp_path / "photon.spdx.json"
    path.write_text(json.dumps(document))
    return [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]


def test_sbom_with_facts_says_licenses_descriptions_and_references(
    small_archive: Archive, tmp_path: Path
) -> None:
    wheel = small_archive.manifest.wheels[0]
    facts = Facts(
        dependencies={"tinydep": ()},
        direct=("tinydep",),
        wheel_urls={wheel.filename: f"https://files.example.org/{wheel.filename}"},
        wheels={
            wheel.filename: WheelFacts(
                summary="A tiny dependency",
                license_expression="MIT OR Apache-2.0",
                urls=(
                    ("Homepage", "https://tiny.example.org"),
                    ("Source", "https://git.example.org/tiny"),
                ),
            )
        },
    )
    document = sbom(small_archive.manifest, facts)
    assert list(cyclonedx_validator().iter_errors(document)) == []
    component = next(c for c in document["components"] if c["type"] == "library")
    assert component["description"] == "A tiny dependency"
    assert component["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert component["externalReferences"] == [
        {"type": "distribution", "url": f"https://files.example.org/{wheel.filename}"},
        {"type": "website", "url": "https://tiny.example.org"},
        {"type": "vcs", "url": "https://git.example.org/tiny"},
    ]
    # A wheel that depends on nothing says so; CycloneDX reads [] as "none".
    assert document["dependencies"][1] == {"ref": f"wheel:{wheel.filename}", "dependsOn": []}

    free_text = Facts(
        wheels={wheel.filename: WheelFacts(license="BSD", license_classifiers=("BSD License",))}
    )
    component = next(
        c for c in sbom(small_archive.manifest, free_text)["components"] if c["type"] == "library"
    )
    assert component["licenses"] == [
        {"license": {"name": "BSD"}},
        {"license": {"name": "BSD License"}},
    ]
    package = spdx(small_archive.manifest, free_text)["packages"][1]
    assert (package["licenseDeclared"], package["licenseComments"]) == (
        "NOASSERTION",
        "Declared in METADATA: BSD; BSD License",
    )
    assert spdx_problems(spdx(small_archive.manifest, facts), tmp_path) == []


def test_sbom_without_a_lock_leaves_wheel_dependencies_unknown(small_archive: Archive) -> None:
    document = sbom(small_archive.manifest)
    assert [d["ref"] for d in document["dependencies"]] == [
        document["metadata"]["component"]["bom-ref"]
    ]


def _lock_graph(archive: Path) -> dict[str, set[str]]:
    """name -> dependency names, straight from the lock file inside the archive."""
    from photonpack.archive import read_manifest
    from photonpack.lock.pylock import load_toml

    manifest = read_manifest(archive)
    with tempfile.TemporaryDirectory() as tmp:
        from photonpack.archive import DirectorySink, unpack

        unpack(archive, DirectorySink(Path(tmp)))
        entry = next(f for f in manifest.files if f.path == manifest.lock)
        lock = load_toml((Path(tmp) / entry.sha256).read_text(), path=Path(manifest.lock))
    return {
        canonicalize_name(p["name"]): {canonicalize_name(d["name"]) for d in p["dependencies"]}
        for p in lock["packages"]
    }


def _declares_a_license(archive: Path) -> dict[str, bool]:
    """wheel filename -> whether its METADATA declares a license (read here, independently)."""
    import email.parser
    import zipfile

    from photonpack.archive import DirectorySink, read_manifest, unpack

    manifest = read_manifest(archive)
    declared = {}
    with tempfile.TemporaryDirectory() as tmp:
        unpack(archive, DirectorySink(Path(tmp)))
        for wheel in manifest.wheels:
            with zipfile.ZipFile(Path(tmp) / wheel.sha256) as zf:
                name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
                headers = email.parser.BytesHeaderParser().parsebytes(zf.read(name))
            classifiers = [
                c for c in headers.get_all("Classifier") or [] if c.startswith("License ::")
            ]
            declared[wheel.filename] = bool(
                (headers.get("License-Expression") or "").strip()
                or (headers.get("License") or "").strip()
                or any(c.count("::") >= 2 for c in classifiers)
            )
    return declared


def test_sbom_of_a_built_photon_has_the_locks_graph_and_every_declared_license(
    counter_archive: Path, tmp_path: Path
) -> None:
    from photonpack.archive import read_manifest

    manifest = read_manifest(counter_archive)
    document = json.loads(archive_sbom(counter_archive, "cyclonedx"))
    assert list(cyclonedx_validator().iter_errors(document)) == []
    names = {f"wheel:{w.filename}": canonicalize_name(w.name) for w in manifest.wheels}
    graph = {
        names[d["ref"]]: {names[ref] for ref in d["dependsOn"]}
        for d in document["dependencies"]
        if d["ref"] in names
    }
    lock = _lock_graph(counter_archive)
    assert graph == {name: deps & set(graph) for name, deps in lock.items() if name in graph}
    assert any(graph.values())  # the serving stack has real edges (fastapi -> starlette, ...)

    licensed = {
        c["bom-ref"].removeprefix("wheel:")
        for c in document["components"]
        if c["type"] == "library" and c.get("licenses")
    }
    declared = _declares_a_license(counter_archive)
    assert licensed == {filename for filename, has in declared.items() if has}
    assert licensed  # real wheels declare licenses

    spdx_document = json.loads(archive_sbom(counter_archive, "spdx"))
    assert spdx_problems(spdx_document, tmp_path) == []
    ids = {p["SPDXID"]: canonicalize_name(p["name"]) for p in spdx_document["packages"][1:]}
    edges = {
        (ids[r["spdxElementId"]], ids[r["relatedSpdxElement"]])
        for r in spdx_document["relationships"]
        if r["spdxElementId"] in ids
    }
    assert edges == {(a, b) for a, deps in graph.items() for b in deps}


def test_both_formats_are_the_same_bytes_every_time(counter_archive: Path) -> None:
    for fmt in ("cyclonedx", "spdx"):
        assert archive_sbom(counter_archive, fmt) == archive_sbom(counter_archive, fmt)
    printed = CliRunner().invoke(cli, ["sbom", str(counter_archive), "--format", "spdx"])
    assert printed.exit_code == 0
    assert printed.stdout_bytes == archive_sbom(counter_archive, "spdx")


def test_spdx_lists_the_photons_own_files_with_their_checksums(
    small_archive: Archive, tmp_path: Path
) -> None:
    import hashlib

    document = json.loads(archive_sbom(small_archive.path, "spdx"))
    assert spdx_problems(document, tmp_path) == []
    manifest = small_archive.manifest
    contents = {f.sha256: small_archive.blob_path(f.sha256).read_bytes() for f in manifest.files}
    assert [f["fileName"] for f in document["files"]] == [f"./{f.path}" for f in manifest.files]
    assert [f["checksums"] for f in document["files"]] == [
        [
            {"algorithm": "SHA1", "checksumValue": hashlib.sha1(contents[f.sha256]).hexdigest()},
            {"algorithm": "SHA256", "checksumValue": f.sha256},
        ]
        for f in manifest.files
    ]
    contained = [
        r["relatedSpdxElement"]
        for r in document["relationships"]
        if r["relationshipType"] == "CONTAINS"
    ]
    assert contained == [f["SPDXID"] for f in document["files"]]
    assert document["packages"][0]["filesAnalyzed"] is True
    assert archive_sbom(small_archive.path, "spdx") == archive_sbom(small_archive.path, "spdx")
