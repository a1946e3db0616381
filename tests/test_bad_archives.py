"""Bad archives are refused, bounded, before anything is installed (issue 13).

Each archive here is crafted by hand (tarfile + zstandard): a manifest edited as
a dict, padding or a blob of zeros streamed into the frame. ``verify`` exits 3
naming what is wrong; ``run`` refuses before it installs or keeps anything.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from click.testing import CliRunner, Result

from photonpack.archive.manifest import Manifest
from photonpack.archive.tarstream import member_header
from photonpack.cli import cli
from tests.support.archives import Archive, compress, decompress

MTIME = 315532800
# sha256 of 1 GiB of zeros (hashlib over 1024 MiB of b"\0").
GIB_OF_ZEROS = "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(decompress(path)), mode="r:") as tf:
        return [(info.name, tf.extractfile(info).read()) for info in tf]  # type: ignore[union-attr]


def encode(manifest: dict[str, Any]) -> bytes:
    """Sorted, compact JSON; ASCII escapes so a lone surrogate can be written at all."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def stream_archive(out: Path, parts: Iterable[bytes]) -> Path:
    """Compress ``parts`` (the tar stream, piece by piece) into one zstd frame."""
    with (
        out.open("wb") as fh,
        zstandard.ZstdCompressor(level=3, write_checksum=True).stream_writer(
            fh, closefd=False
        ) as zw,
    ):
        for part in parts:
            zw.write(part)
    return out


def member(name: str, data: bytes) -> bytes:
    return member_header(name, len(data), MTIME) + data + b"\0" * (-len(data) % 512)


def rewrite(
    source: Path,
    out: Path,
    change: Callable[[dict[str, Any]], None],
    *,
    encoded: Callable[[bytes], bytes] = lambda data: data,
) -> Path:
    """``source`` with its manifest changed as a dict (and its bytes by ``encoded``)."""
    found = members(source)
    manifest = json.loads(found[0][1])
    change(manifest)
    head = member("photon.json", encoded(encode(manifest)))
    return stream_archive(out, [head, *(member(n, d) for n, d in found[1:]), b"\0" * 1024])


def store_is_empty(home: Path) -> bool:
    """Nothing was installed or kept: no manifest, no environment, no working directory."""
    kept = [home / d for d in ("manifests", "envs", "photons", "refs", "archives")]
    return not any(d.exists() and any(d.iterdir()) for d in kept)


def assert_refused(path: Path, problem: str, home: Path) -> None:
    """``verify`` exits 3 with exactly ``problem``; ``run`` exits 3 keeping nothing."""
    result = run("verify", str(path))
    assert result.exit_code == 3, result.output
    assert result.stdout == f"FAIL {problem}\n"
    assert result.stderr == (
        f"error: {path} failed verification (1 problem); the archive was damaged or altered: "
        "fetch or build it again\n"
    )
    ran = run("run", str(path), "--port", "0")
    assert ran.exit_code == 3, ran.output
    assert problem in ran.stderr
    assert "Traceback" not in ran.output
    assert store_is_empty(home)


def invalid(where: str, problem: str) -> str:
    manifest = "photon.json: expected a valid manifest, found invalid photon manifest"
    return f"{manifest} at {where}: {problem}"


# -- the entry names one of the archive's own files --------------------------------


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            "/elsewhere/evil.py:Evil",
            "expected file.py:Class naming one of the photon's own files, found "
            "'/elsewhere/evil.py:Evil' ('/elsewhere/evil.py' is not a normalized relative "
            "POSIX path)",
        ),
        (
            "../evil.py:Evil",
            "expected file.py:Class naming one of the photon's own files, found "
            "'../evil.py:Evil' ('../evil.py' is not a normalized relative POSIX path)",
        ),
        (
            "evil.py:Evil",
            "expected file.py:Class naming one of the photon's own files, found "
            "'evil.py:Evil' ('evil.py' is not listed in files)",
        ),
        (
            "os.path:Evil",
            "expected package.module:Class naming one of the photon's own files, found "
            "'os.path:Evil' ('os/path.py' or 'os/path/__init__.py' is not listed in files)",
        ),
        ("counter.py:class", "'class' in 'counter.py:class' is not a Python class name"),
    ],
)
def test_an_entry_outside_the_archive_is_refused_by_verify_and_run(
    small_archive: Archive, tmp_path: Path, photonpack_home: Path, entry: str, problem: str
) -> None:
    path = rewrite(small_archive.path, tmp_path / "bad.photon", lambda m: m.update(entry=entry))
    assert_refused(path, invalid("entry", problem), photonpack_home)


def test_run_never_imports_an_entry_outside_the_archive(
    counter_archive: Path, tmp_path: Path, photonpack_home: Path
) -> None:
    """The real counter archive pointed at a file outside it: its init() must never run."""
    marker = tmp_path / "evil-ran"
    evil = tmp_path / "elsewhere" / "evil.py"
    evil.parent.mkdir()
    evil.write_text(
        "from photonpack import Photon\n\n\nclass Evil(Photon):\n"
        f"    def init(self):\n        open({str(marker)!r}, 'w').close()\n"
    )
    path = rewrite(
        counter_archive, tmp_path / "evil.photon", lambda m: m.update(entry=f"{evil}:Evil")
    )
    done = subprocess.run(
        [sys.executable, "-m", "photonpack", "run", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "PHOTONPACK_HOME": str(photonpack_home)},
        check=False,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert f"found '{evil}:Evil'" in done.stderr
    assert not marker.exists()
    assert store_is_empty(photonpack_home)


def test_a_module_entry_naming_a_listed_file_is_accepted(small_archive: Archive) -> None:
    data = small_archive.manifest.to_dict()
    assert Manifest.from_dict({**data, "entry": "counter:Counter"}).entry == "counter:Counter"
    source = data["files"][0]
    package = [{**source, "path": "pkg/mod/__init__.py"}]
    files = sorted(data["files"] + package, key=lambda f: f["path"])
    moved = {**data, "entry": "pkg.mod:Counter", "files": files}
    assert Manifest.from_dict(moved).entry == "pkg.mod:Counter"


# -- paths every filesystem can hold ------------------------------------------------


def _with_files(*paths: str) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        source = manifest["files"][0]  # counter.py: its blob is in the archive
        manifest["files"] += [{**source, "path": path} for path in paths]
        manifest["files"].sort(key=lambda f: f["path"])

    return change


DEEP = "/".join(["d"] * 2100)


@pytest.mark.parametrize(
    ("paths", "problem"),
    [
        (
            ("A.py", "a.py"),
            "'a.py' and 'A.py' are the same file on case-insensitive or Unicode-normalizing "
            "filesystems; rename one",
        ),
        (
            ("caf\u00e9.py", "cafe\u0301.py"),
            "'caf\u00e9.py' and 'cafe\u0301.py' are the same file on case-insensitive or "
            "Unicode-normalizing filesystems; rename one",
        ),
        (("a", "a/b"), "'a' is a file, so 'a/b' cannot be inside it; rename one"),
    ],
)
def test_paths_that_collide_on_some_filesystem_are_refused(
    small_archive: Archive,
    tmp_path: Path,
    photonpack_home: Path,
    paths: tuple[str, ...],
    problem: str,
) -> None:
    path = rewrite(small_archive.path, tmp_path / "bad.photon", _with_files(*paths))
    assert_refused(path, invalid("files", problem), photonpack_home)


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (
            "n" * 4096,
            f"expected path parts of at most 255 bytes, found one of 4096 ({'n' * 24!r}...)",
        ),
        (DEEP, f"expected a path of at most 1024 bytes, found 4199 ({'d/' * 12!r}...)"),
        ("a\0b.py", "expected a path without control characters, found '\\x00'"),
        ("a\nb.py", "expected a path without control characters, found '\\n'"),
    ],
)
def test_a_path_no_filesystem_holds_is_refused(
    small_archive: Archive, tmp_path: Path, photonpack_home: Path, bad: str, problem: str
) -> None:
    path = rewrite(small_archive.path, tmp_path / "bad.photon", _with_files(bad))
    index = sorted([bad, *(f.path for f in small_archive.manifest.files)]).index(bad)
    assert_refused(path, invalid(f"files[{index}].path", problem), photonpack_home)


# -- values that would crash a reader ---------------------------------------------


def test_json_nested_100000_deep_is_refused(
    small_archive: Archive, tmp_path: Path, photonpack_home: Path
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    path = rewrite(
        small_archive.path,
        tmp_path / "deep.photon",
        lambda m: m.update(openapi="DEEP"),
        encoded=lambda data: data.replace(b'"DEEP"', deep),
    )
    problem = (
        "photon.json: expected a valid manifest, found invalid photon manifest: photon.json "
        "nests deeper than the JSON decoder allows; a manifest nests at most 64 levels"
    )
    assert_refused(path, problem, photonpack_home)


def test_json_nested_past_the_bound_is_refused_where_it_is(
    small_archive: Archive, tmp_path: Path, photonpack_home: Path
) -> None:
    nested: Any = {}
    for _ in range(70):
        nested = {"a": nested}
    path = rewrite(small_archive.path, tmp_path / "deep.photon", lambda m: m.update(openapi=nested))
    where = "photon.json.openapi" + ".a" * 63  # photon.json is level 1, openapi level 2
    assert_refused(
        path, invalid(where, "expected JSON nested at most 64 deep, found more"), photonpack_home
    )


@pytest.mark.parametrize(
    ("field", "value", "where", "problem"),
    [
        (
            "description",
            "\ud800",
            "photon.json.photon.description",
            "expected Unicode text, found a lone surrogate \\ud800",
        ),
        (
            "handler_timeout",
            -5,
            "photon.handler_timeout",
            "expected a number > 0 and <= 86400, found -5",
        ),
        (
            "handler_timeout",
            0,
            "photon.handler_timeout",
            "expected a number > 0 and <= 86400, found 0",
        ),
        (
            "handler_max_concurrency",
            10**18,
            "photon.handler_max_concurrency",
            f"expected an integer <= 10000, found {10**18}",
        ),
        (
            "handler_max_concurrency",
            0,
            "photon.handler_max_concurrency",
            "expected an integer >= 1, found 0",
        ),
    ],
)
def test_photon_attributes_out_of_bounds_are_refused(
    small_archive: Archive,
    tmp_path: Path,
    photonpack_home: Path,
    field: str,
    value: object,
    where: str,
    problem: str,
) -> None:
    path = rewrite(
        small_archive.path, tmp_path / "bad.photon", lambda m: m["photon"].update({field: value})
    )
    assert_refused(path, invalid(where, problem), photonpack_home)


def test_an_infinite_timeout_is_refused(
    small_archive: Archive, tmp_path: Path, photonpack_home: Path
) -> None:
    path = rewrite(
        small_archive.path,
        tmp_path / "inf.photon",
        lambda m: m["photon"].update(handler_timeout=12345.5),
        encoded=lambda data: data.replace(b"12345.5", b"1e400"),
    )
    assert_refused(
        path,
        invalid("photon.json.photon.handler_timeout", "expected a finite number, found inf"),
        photonpack_home,
    )


# -- bounded reading: padding, expansion, canonical headers ------------------------


def test_4_gib_of_zero_padding_after_the_tar_end_is_refused(
    small_archive: Archive, tmp_path: Path, photonpack_home: Path
) -> None:
    zeros = bytes(1 << 20)
    padding = (zeros for _ in range(4096))
    path = stream_archive(tmp_path / "padded.photon", [decompress(small_archive.path), *padding])
    assert_refused(
        path,
        "(end of archive): expected nothing after the end-of-archive blocks but at most "
        "10240 bytes of zero padding (what tar writes), found more zero bytes",
        photonpack_home,
    )


def test_a_missing_second_end_block_is_refused(small_archive: Archive, tmp_path: Path) -> None:
    path = tmp_path / "short.photon"
    path.write_bytes(compress(decompress(small_archive.path)[:-512]))
    result = run("verify", str(path))
    assert result.exit_code == 3
    assert result.stdout == (
        "FAIL (end of archive): expected the second end-of-archive block, found 0 bytes "
        "(truncated)\n"
    )


def _zeros_archive(source: Archive, out: Path, size: int, sha256: str) -> Path:
    """``source`` with one more file: ``size`` bytes of zeros, streamed."""
    found = members(source.path)
    manifest = json.loads(found[0][1])
    _with_files()(manifest)
    entry = {"path": "zeros.bin", "sha256": sha256, "size": size, "executable": False}
    manifest["files"] = sorted([*manifest["files"], entry], key=lambda f: f["path"])
    blobs = sorted([*found[1:], (f"blobs/sha256/{sha256}", b"")])

    def parts() -> Iterable[bytes]:
        yield member("photon.json", encode(manifest))
        for name, data in blobs:
            if name.endswith(sha256):
                yield member_header(name, size, MTIME)
                yield from (bytes(1 << 20) for _ in range(size >> 20))
            else:
                yield member(name, data)
        yield b"\0" * 1024

    return stream_archive(out, parts())


def test_a_declared_gib_of_zeros_is_refused_past_the_ratio_bound(
    small_archive: Archive, tmp_path: Path, photonpack_home: Path
) -> None:
    path = _zeros_archive(small_archive, tmp_path / "bomb.photon", 1 << 30, GIB_OF_ZEROS)
    result = run("verify", str(path))
    assert result.exit_code == 3, result.output
    [line] = result.stdout.splitlines()
    assert line.startswith(
        f"FAIL blobs/sha256/{GIB_OF_ZEROS}: expected an archive expanding at most 1000:1 past "
        "its first 64.0 MiB (PHOTONPACK_MAX_RATIO sets the bound), found "
    )
    assert run("run", str(path), "--port", "0").exit_code == 3
    assert store_is_empty(photonpack_home)


def test_the_ratio_bound_is_overridable(small_archive: Archive, tmp_path: Path) -> None:
    import hashlib

    size = 80 << 20
    sha256 = hashlib.sha256(bytes(size)).hexdigest()
    path = _zeros_archive(small_archive, tmp_path / "sparse.photon", size, sha256)
    assert run("verify", str(path)).exit_code == 3
    assert run("verify", str(path), env={"PHOTONPACK_MAX_RATIO": "100000"}).exit_code == 0
    bad = run("verify", str(path), env={"PHOTONPACK_MAX_RATIO": "lots"})
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: PHOTONPACK_MAX_RATIO must be a whole number >= 1")
    assert len(bad.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("field", "offset", "value"),
    [("mode", 100, b"0000755\0"), ("uname", 265, b"root\0"), ("mtime", 136, b"00000000001\0")],
)
def test_a_tar_header_altered_in_any_field_is_refused(
    small_archive: Archive, tmp_path: Path, field: str, offset: int, value: bytes
) -> None:
    found = members(small_archive.path)
    name, data = found[1]
    header = bytearray(member_header(name, len(data), MTIME))
    header[offset : offset + len(value)] = value
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    tampered = [member(*found[0]), bytes(header) + data + b"\0" * (-len(data) % 512)]
    tampered += [member(n, d) for n, d in found[2:]]
    path = stream_archive(tmp_path / f"{field}.photon", [*tampered, b"\0" * 1024])
    result = run("verify", str(path))
    assert result.exit_code == 3
    assert result.stdout.startswith(
        f"FAIL {name}: expected the tar header photonpack writes (mode 644, owner 0, mtime "
        f"{MTIME} like the first member), found another header (a field was altered)\n"
    )
