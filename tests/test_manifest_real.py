"""Manifests that the real build pipeline writes: schema, verify, inspect and SBOM agree."""

from __future__ import annotations

from pathlib import Path

from photonpack.archive import read_manifest
from photonpack.sbom import sbom
from photonpack.verify import verify_archive
from tests.test_manifest import validate_schema
from tests.test_sbom import cyclonedx_validator


def test_built_counter_manifest_matches_the_schema_and_verifies(counter_archive: Path) -> None:
    manifest = read_manifest(counter_archive)
    validate_schema(manifest.to_dict())
    assert manifest.name == "counter"
    assert {h.name for h in manifest.handlers} == {"add", "sub"}
    result = verify_archive(counter_archive)
    assert result.problems == ()
    assert list(cyclonedx_validator().iter_errors(sbom(manifest))) == []
