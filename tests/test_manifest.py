"""The manifest model: round trips, canonical bytes, digest, validation with locations."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from photonpack.archive.manifest import Manifest, canonical_json
from photonpack.errors import ArchiveError
from tests.support.archives import Archive

SCHEMA = json.loads((Path(__file__).parents[1] / "schema" / "photon.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def validate_schema(data: object) -> None:
    """Raise jsonschema.ValidationError unless ``data`` matches schema/photon.schema.json."""
    VALIDATOR.validate(data)


def test_manifest_round_trips_through_dict_and_bytes(small_archive: Archive) -> None:
    manifest = small_archive.manifest
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest
    assert Manifest.from_bytes(json.dumps(manifest.to_dict(), indent=2).encode()) == manifest


def test_canonical_bytes_sort_keys_without_spaces() -> None:
    assert canonical_json({"b": [1, "é"], "a": None}) == '{"a":null,"b":[1,"é"]}'.encode()


def test_digest_is_sha256_of_canonical_bytes(small_archive: Archive) -> None:
    manifest = small_archive.manifest
    expected = "sha256:" + hashlib.sha256(manifest.to_bytes()).hexdigest()
    assert manifest.digest == expected
    assert manifest.to_bytes() == canonical_json(manifest.to_dict())


def test_real_manifest_validates_against_json_schema(small_archive: Archive) -> None:
    validate_schema(small_archive.manifest.to_dict())


def test_blobs_lists_each_distinct_content_once(small_archive: Archive) -> None:
    manifest = small_archive.manifest
    pairs = [(e.sha256, e.size) for e in (*manifest.files, *manifest.runtime)]
    pairs += [(w.sha256, w.size) for w in manifest.wheels]
    assert manifest.blobs() == dict(sorted(pairs))
    assert list(manifest.blobs()) == sorted(manifest.blobs())
    assert manifest.total_size == sum(manifest.blobs().values())


def test_same_content_twice_is_one_blob(tmp_path: Path) -> None:
    from tests.support.archives import make_archive

    archive = make_archive(tmp_path, extra_files={"a.txt": b"same", "b.txt": b"same"})
    sha = hashlib.sha256(b"same").hexdigest()
    assert archive.manifest.blobs()[sha] == 4
    assert archive.manifest.blob_labels()[sha] == ["a.txt", "b.txt"]


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _swap_files(d: dict[str, Any]) -> None:
    d["files"].reverse()


def _duplicate_wheel(d: dict[str, Any]) -> None:
    d["wheels"].append(copy.deepcopy(d["wheels"][0]))


def _drop(key: str) -> Mutation:
    return lambda d: d.pop(key)


# (mutation, exact message, whether JSON Schema alone can see it)
INVALID: dict[str, tuple[Mutation, str, bool]] = {
    "bad sha256": (
        _set("wheels.0.sha256", "ABC"),
        "invalid photon manifest at wheels[0].sha256: 'ABC' does not match [0-9a-f]{64}",
        True,
    ),
    "negative size": (
        _set("files.0.size", -1),
        "invalid photon manifest at files[0].size: expected an integer >= 0, found -1",
        True,
    ),
    "size as string": (
        _set("files.1.size", "12"),
        "invalid photon manifest at files[1].size: expected an integer, found a string",
        True,
    ),
    "unknown key": (
        _set("wheels.0.url", "https://x"),
        "invalid photon manifest at wheels[0].url: unknown key (this photonpack does not know it)",
        True,
    ),
    "missing key": (
        _drop("tools"),
        "invalid photon manifest at photon.json: missing key 'tools'",
        True,
    ),
    "bad name": (
        _set("name", "My_Photon"),
        "invalid photon manifest at name: 'My_Photon' does not match "
        "[a-z](?:[-a-z0-9]{0,30}[a-z0-9])?",
        True,
    ),
    "name ending in a hyphen": (
        _set("name", "counter-"),
        "invalid photon manifest at name: 'counter-' does not match "
        "[a-z](?:[-a-z0-9]{0,30}[a-z0-9])?",
        True,
    ),
    "escaping path": (
        _set("files.0.path", "../etc/passwd"),
        "invalid photon manifest at files[0].path: '../etc/passwd' is not a normalized "
        "relative POSIX path",
        True,
    ),
    "future schema": (
        _set("schema_version", 2),
        "invalid photon manifest at schema_version: this photonpack reads schema version 1, "
        "found 2; use the photonpack version that built the archive",
        True,
    ),
    "bad method": (
        _set("handlers.0.method", "FETCH"),
        "invalid photon manifest at handlers[0].method: expected one of "
        "['DELETE', 'GET', 'PATCH', 'POST', 'PUT'], found 'FETCH'",
        True,
    ),
    "unsorted files": (
        _swap_files,
        "invalid photon manifest at files[1]: path 'data/model.bin' is not sorted after "
        "'pylock.counter.toml'",
        False,
    ),
    "duplicate wheel": (
        _duplicate_wheel,
        "invalid photon manifest at wheels[1]: duplicate filename 'tinydep-1.0-py3-none-any.whl'",
        False,
    ),
    "lock not in files": (
        _set("lock", "pylock.other.toml"),
        "invalid photon manifest at lock: 'pylock.other.toml' is not listed in files",
        False,
    ),
    "wheel target unknown": (
        _set("wheels.0.targets", ["cp312-manylinux_2_28_aarch64"]),
        "invalid photon manifest at wheels[0].targets: 'cp312-manylinux_2_28_aarch64' is not "
        "one of targets",
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_manifest_rejects_invalid_field_naming_its_location(
    small_archive: Archive, case: str
) -> None:
    mutate, message, schema_sees_it = INVALID[case]
    data = copy.deepcopy(small_archive.manifest.to_dict())
    mutate(data)
    with pytest.raises(ArchiveError) as caught:
        Manifest.from_dict(data)
    assert caught.value.message == message
    if schema_sees_it:
        with pytest.raises(jsonschema.ValidationError):
            validate_schema(data)


def test_manifest_rejects_one_content_with_two_sizes(small_archive: Archive) -> None:
    data = copy.deepcopy(small_archive.manifest.to_dict())
    data["files"][0]["sha256"] = data["wheels"][0]["sha256"]
    with pytest.raises(ArchiveError) as caught:
        Manifest.from_dict(data)
    first = data["files"][0]["size"]
    wheel = data["wheels"][0]["size"]
    assert caught.value.message == (
        f"invalid photon manifest at wheels[0].size: {wheel} differs from {first} given for "
        "the same sha256 at files[0].size"
    )


def test_from_bytes_rejects_duplicate_keys_and_bad_json() -> None:
    with pytest.raises(ArchiveError) as caught:
        Manifest.from_bytes(b'{"name":"a","name":"b"}')
    assert caught.value.message == (
        "invalid photon manifest: photon.json is not valid JSON (duplicate key 'name')"
    )
    with pytest.raises(ArchiveError) as caught:
        Manifest.from_bytes(b"[1, NaN]")
    assert caught.value.message == (
        "invalid photon manifest: photon.json is not valid JSON (NaN is not valid JSON)"
    )


def _with_source(*build_wheels: dict[str, Any]) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        d["wheels"][0]["source"] = {
            "filename": "tinydep-1.0.tar.gz",
            "url": "https://example.org/tinydep-1.0.tar.gz",
            "sha256": "a" * 64,
            "size": 10,
            "build_wheels": list(build_wheels),
        }

    return mutate


def test_a_sources_build_wheels_are_blobs_of_the_archive(small_archive: Archive) -> None:
    build = {"filename": "hatchling-1.0-py3-none-any.whl", "sha256": "b" * 64, "size": 20}
    data = copy.deepcopy(small_archive.manifest.to_dict())
    _with_source(build)(data)
    validate_schema(data)
    manifest = Manifest.from_dict(data)
    assert manifest.to_dict() == data
    assert manifest.blobs()["b" * 64] == 20
    assert manifest.blob_labels()["b" * 64] == ["build:hatchling-1.0-py3-none-any.whl"]
    for bad, message in (
        ({**build, "filename": "hatchling.tar.gz"}, "'hatchling.tar.gz' is not a wheel filename"),
        ({**build, "size": -1}, "expected an integer >= 0, found -1"),
    ):
        _with_source(bad)(data)
        with pytest.raises(ArchiveError) as caught:
            Manifest.from_dict(data)
        assert caught.value.message.endswith(message)
        assert "wheels[0].source.build_wheels[0]" in caught.value.message
        with pytest.raises(jsonschema.ValidationError):
            validate_schema(data)
