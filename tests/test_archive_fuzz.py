"""Property tests (Hypothesis) of the manifest reader and the archive scanner.

For generated and mutated inputs each either accepts an input that is really
valid (it matches schema/photon.schema.json and round-trips) or raises
PhotonpackError; ``verify`` exits 0, 1 or 3 with one error line, and exits 0
only for the very archive it was given before the mutation. Examples and
deadlines are bounded so the whole file runs in well under 30 s.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photonpack.archive.manifest import Manifest
from photonpack.cli import cli
from photonpack.errors import PhotonpackError
from tests.support.archives import Archive, compress, decompress

SCHEMA = json.loads((Path(__file__).parents[1] / "schema" / "photon.schema.json").read_text())
FUZZ = settings(
    max_examples=200,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any text, lone surrogates and control characters included.
TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=16,
)


def accepted_is_valid(manifest: Manifest) -> None:
    """What the reader accepted matches the schema and round-trips exactly."""
    jsonschema.validate(manifest.to_dict(), SCHEMA)
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


def paths_in(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a decoded JSON document (keys and indices from the root)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_in(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths_in(item, (*prefix, i))
    return found


@FUZZ
@given(JSON)
def test_generated_json_is_a_manifest_or_an_archive_error(value: Any) -> None:
    try:
        manifest = Manifest.from_dict(value)
    except PhotonpackError:
        return
    accepted_is_valid(manifest)


@FUZZ
@given(data=st.data())
def test_a_manifest_edited_anywhere_is_valid_or_refused(
    small_archive: Archive, data: st.DataObject
) -> None:
    document = json.loads(small_archive.manifest.to_bytes())  # a copy: to_dict() shares objects
    where = data.draw(st.sampled_from(paths_in(document)[1:]))
    parent = document
    for step in where[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = data.draw(JSON)
    try:
        manifest = Manifest.from_dict(document)
    except PhotonpackError:
        return
    accepted_is_valid(manifest)


@FUZZ
@given(data=st.data())
def test_manifest_bytes_mutated_are_valid_or_refused(
    small_archive: Archive, data: st.DataObject
) -> None:
    raw = bytearray(small_archive.manifest.to_bytes())
    at = data.draw(st.integers(0, len(raw) - 1))
    edit = data.draw(st.sampled_from(["flip", "insert", "delete"]))
    if edit == "flip":
        raw[at] ^= 1 << data.draw(st.integers(0, 7))
    elif edit == "insert":
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        del raw[at : at + data.draw(st.integers(1, 64))]
    try:
        manifest = Manifest.from_bytes(bytes(raw))
    except PhotonpackError:
        return
    accepted_is_valid(manifest)


def _mutate(data: bytes, draw: st.DataObject) -> bytes:
    raw = bytearray(data)
    at = draw.draw(st.integers(0, len(raw) - 1))
    edit = draw.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
    if edit == "flip":
        raw[at] ^= 1 << draw.draw(st.integers(0, 7))
    elif edit == "insert":
        raw[at:at] = draw.draw(st.binary(min_size=1, max_size=600))
    elif edit == "delete":
        del raw[at : at + draw.draw(st.integers(1, 600))]
    elif edit == "truncate":
        del raw[at:]
    else:
        raw += draw.draw(st.binary(min_size=1, max_size=600))
    return bytes(raw)


def _verify(archive: bytes, digest: str) -> tuple[int, str, str]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "fuzzed.photon"
        path.write_bytes(archive)
        result = CliRunner().invoke(cli, ["verify", str(path), "--digest", digest])
    return result.exit_code, result.stdout, result.stderr


@FUZZ
@pytest.mark.parametrize("layer", ["tar", "zstd"])
@given(data=st.data())
def test_a_verified_archive_mutated_is_never_accepted(
    small_archive: Archive, layer: str, data: st.DataObject
) -> None:
    """A mutation of the tar stream (recompressed) or of the file itself, verified with
    its digest pinned (a valid edit of the manifest is another photon: ``--digest`` is
    how a user refuses it): verify exits 1 or 3 with one error line, or 0 only if the
    tar it read is the original one."""
    tar = decompress(small_archive.path)
    if layer == "tar":
        mutated = _mutate(tar, data)
        archive = compress(mutated)
    else:
        archive = _mutate(small_archive.path.read_bytes(), data)
    code, stdout, stderr = _verify(archive, small_archive.manifest.digest)
    assert code in (0, 1, 3), (code, stderr)
    assert "Traceback" not in stdout + stderr
    if code == 0:
        same = mutated if layer == "tar" else decompress_bytes(archive)
        # Only zero padding within what tar itself writes may differ.
        assert same.rstrip(b"\0") == tar.rstrip(b"\0")
        assert stdout.split()[2] == small_archive.manifest.digest
    else:
        assert len(stderr.splitlines()) == 1, stderr


def decompress_bytes(archive: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(archive).read()
