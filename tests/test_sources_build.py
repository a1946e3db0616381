"""Sdists built hermetically at build: no network, locked build wheels only, cached, carried."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from photonpack.archive import read_manifest
from photonpack.errors import BuildError
from photonpack.lock.target import Target
from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.offline import serve_offline
from tests.support.repack import closure, repack
from tests.support.sdists import build_sdist
from tests.support.stack import build_photon, write_photon

SOURCES = """
from photonpack import Photon


class Svc(Photon):
    requirement_dependency = {requirements!r}

    @Photon.handler
    def versions(self) -> dict:
        import {modules}
        return {{m.__name__: m.VERSION for m in ({modules},)}}
"""


@pytest.fixture(scope="module")
def index(real_index: PackageIndex) -> PackageIndex:
    """The session's real index plus hatchling and a few sdist-only projects."""
    for name in closure(["hatchling"]):
        if not list(real_index.files_dir.glob(f"{name.replace('-', '_')}-*.whl")):
            repack(name, real_index.files_dir)
    build_sdist(real_index.files_dir, "docopty", "0.6.2", requires=["tinydep>=1.0"])
    build_sdist(real_index.files_dir, "hatchy", "0.3", backend="hatchling")
    build_sdist(real_index.files_dir, "phoner", "1.0", network=True)
    build_sdist(real_index.files_dir, "failing", "1.0", fail=True)
    build_sdist(real_index.files_dir, "swapped", "1.0")
    build_sdist(
        real_index.files_dir, "asking", "1.0", asks=["tinydep>=1.0"]
    )  # on the index: pip takes it at lock
    build_sdist(real_index.files_dir, "natively", "1.0", tag=f"cp311-cp311-{_host_platform()}")
    build_sdist(real_index.files_dir, "counted", "1.0", marker=_ran(real_index))  # PKG-INFO 2.1
    return real_index


def _ran(index: PackageIndex) -> Path:
    """The file ``counted``'s backend adds a line to in each process it runs in."""
    return index.files_dir.parent / "counted.backend-ran"


def _runs(index: PackageIndex) -> int:
    marker = _ran(index)
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def _host_platform() -> str:
    return Target.host().platform


def photon(directory: Path, *requirements: str) -> Path:
    modules = ", ".join(r.replace("-", "_") for r in requirements)
    return write_photon(
        directory, SOURCES.format(requirements=list(requirements), modules=modules), "svc.py"
    )


def test_sdists_are_built_into_the_archive_with_their_source_and_served_offline(
    index: PackageIndex, tmp_path: Path
) -> None:
    store = Store(tmp_path / "home")
    source = photon(tmp_path / "src", "docopty", "hatchy")
    result = build_photon(index, source, tmp_path / "svc.photon", store=store)
    manifest = result.manifest
    built = {w.name: w for w in manifest.wheels if w.source is not None}
    assert sorted(built) == ["docopty", "hatchy"]
    for name, wheel in built.items():
        assert wheel.filename.endswith("py3-none-any.whl")  # pure: serves every target
        sdist = (index.files_dir / wheel.source.filename).read_bytes()  # type: ignore[union-attr]
        assert wheel.source.sha256 == hashlib.sha256(sdist).hexdigest()  # type: ignore[union-attr]
        assert wheel.targets == tuple(manifest.targets), name
    labels = manifest.blob_labels()
    assert labels[built["hatchy"].source.sha256] == ["source:hatchy-0.3.tar.gz"]  # type: ignore[union-attr]
    assert read_manifest(result.path).digest == manifest.digest
    import json

    import jsonschema

    schema = Path(__file__).parents[1] / "schema" / "photon.schema.json"
    jsonschema.validate(manifest.to_dict(), json.loads(schema.read_text()))
    output = serve_offline(result.path, tmp_path / "airgap", "print(client.versions())", port=18951)
    assert "'docopty': '0.6.2'" in output and "'hatchy': '0.3'" in output


def test_a_second_build_rebuilds_nothing_and_gives_the_same_bytes(
    index: PackageIndex, tmp_path: Path
) -> None:
    store = Store(tmp_path / "home")
    source = photon(tmp_path / "src", "docopty")
    first = build_photon(index, source, tmp_path / "a.photon", store=store)
    logs = sorted((store.root / "logs" / "build").iterdir())
    stamps = [log.stat().st_mtime_ns for log in logs]
    second = build_photon(index, source, tmp_path / "b.photon", store=store)
    assert [log.stat().st_mtime_ns for log in logs] == stamps  # no build ran
    assert first.path.read_bytes() == second.path.read_bytes()
    fresh = build_photon(index, source, tmp_path / "c.photon", store=Store(tmp_path / "other"))
    assert fresh.path.read_bytes() == first.path.read_bytes()  # rebuilt: reproducible


def test_a_dynamic_sdist_is_built_once_from_lock_to_build(
    index: PackageIndex, tmp_path: Path
) -> None:
    source = photon(tmp_path / "src", "counted")
    before = _runs(index)
    first = build_photon(index, source, tmp_path / "a.photon", store=Store(tmp_path / "home"))
    lock_and_build = _runs(index) - before
    # The lock is fresh: another store builds the sdist at build, once, with no lock step.
    again = build_photon(
        index, source, tmp_path / "b.photon", store=Store(tmp_path / "other"), locked=True
    )
    build_only = _runs(index) - before - lock_and_build
    assert lock_and_build == build_only > 0  # built while locking, reused by build: not twice
    assert again.path.read_bytes() == first.path.read_bytes()


def test_a_wheel_built_while_locking_is_not_reused_when_a_build_input_differs(
    index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photonpack.lock.index import IndexSettings
    from photonpack.lock.lockfile import LockOptions, lock_photon
    from photonpack.serving.source import parse_spec
    from photonpack.wheelbuild.prebuilt import lock_time_builder

    store = Store(tmp_path / "home")
    source = photon(tmp_path / "src", "counted")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")  # a build input: part of the key
    options = LockOptions(
        index=IndexSettings(index_url=index.url), builder=lock_time_builder(store)
    )
    before = _runs(index)
    lock_photon(parse_spec(str(source)), options)
    at_lock = _runs(index) - before
    assert at_lock > 0
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    build_photon(index, source, tmp_path / "a.photon", store=store, locked=True)
    assert _runs(index) - before == 2 * at_lock  # another epoch: built again, never reused
    build_photon(index, source, tmp_path / "b.photon", store=store, locked=True)
    assert _runs(index) - before == 2 * at_lock  # the same inputs: from the cache


def test_a_backend_that_reaches_for_the_network_gets_a_clear_error(
    index: PackageIndex, tmp_path: Path
) -> None:
    store = Store(tmp_path / "home")
    with pytest.raises(BuildError) as info:
        build_photon(index, photon(tmp_path / "src", "phoner"), tmp_path / "x.photon", store=store)
    message = str(info.value)
    assert message.startswith(
        "building phoner-1.0.tar.gz tried to reach the network, which a hermetic build cannot"
    )
    assert "Temporary failure in name resolution" in message
    assert f"full log in {store.root / 'logs' / 'build' / 'phoner-1.0.log'}" in message
    assert not (tmp_path / "x.photon").exists()


def test_a_platform_wheel_built_here_cannot_serve_another_target(
    index: PackageIndex, tmp_path: Path
) -> None:
    host = Target.host()
    other = Target.parse("cp311-manylinux_2_28_x86_64")  # what the repacked serving stack needs
    if other.supports(f"natively-1.0-cp311-cp311-{host.platform}.whl"):
        pytest.skip(f"this machine's wheels ({host.platform}) install on {other} too")
    source = photon(tmp_path / "src", "natively")
    with pytest.raises(BuildError) as info:
        _build_for(index, source, tmp_path, (host, other))
    assert str(info.value) == (
        f"natively 1.0 builds from its sdist into natively-1.0-cp311-cp311-{host.platform}.whl, "
        f"a wheel for this machine only, and target {other} needs it; build a wheel on a "
        f"{other} machine (pip wheel --no-deps natively==1.0) and lock with --find-links DIR"
    )


def _build_for(
    index: PackageIndex, source: Path, tmp_path: Path, targets: tuple[Target, ...]
) -> None:
    from photonpack.build import BuildOptions, build
    from photonpack.lock.index import IndexSettings
    from photonpack.lock.lockfile import LockOptions
    from photonpack.serving.source import parse_spec

    lock = LockOptions(index=IndexSettings(index_url=index.url), targets=targets)
    build(
        parse_spec(str(source)),
        BuildOptions(output=tmp_path / "x.photon", lock=lock),
        store=Store(tmp_path / "home"),
    )


def test_inspect_sbom_diff_and_push_show_a_wheel_built_from_source(
    index: PackageIndex, tmp_path: Path
) -> None:
    import dataclasses

    from photonpack.diff import diff
    from photonpack.diff_sides import side_from_manifest
    from photonpack.sbom.cyclonedx import sbom
    from photonpack.summary import inspect_report, render_inspect

    source = photon(tmp_path / "src", "docopty")
    manifest = build_photon(index, source, tmp_path / "a.photon").manifest
    (wheel,) = [w for w in manifest.wheels if w.source is not None]
    assert wheel.source is not None
    report = inspect_report(manifest)
    (package,) = [p for p in report["packages"] if p["name"] == "docopty"]
    assert package["wheels"][0]["built_from"] == wheel.source.to_dict()
    assert f"built from docopty-0.6.2.tar.gz sha256:{wheel.source.sha256[:12]}" in (
        render_inspect(report)
    )
    (component,) = [c for c in sbom(manifest)["components"] if c.get("name") == "docopty"]
    assert {"name": "photonpack:source-sha256", "value": wheel.source.sha256} in (
        component["properties"]
    )
    from photonpack.registry import oci_manifest

    assert b'"org.opencontainers.image.title":"sources/docopty-0.6.2.tar.gz"' in (
        oci_manifest(manifest)
    )  # push names the sdist's layer
    other = dataclasses.replace(wheel, sha256="0" * 64)
    changed = dataclasses.replace(
        manifest, wheels=tuple(other if w is wheel else w for w in manifest.wheels)
    )
    (change,) = diff(side_from_manifest(manifest, "a"), side_from_manifest(changed, "b")).packages
    assert change.kind == "rehashed"
    assert change.wheels[0].endswith(
        f"(both built from docopty-0.6.2.tar.gz pin sha256:{wheel.source.sha256}: not reproducible)"
    )


def test_verify_rebuild_builds_the_sdist_again_and_finds_it_reproducible(
    index: PackageIndex, tmp_path: Path, photonpack_home: Path
) -> None:
    from click.testing import CliRunner

    from photonpack.cli import cli

    source = photon(tmp_path / "src", "hatchy")
    built = build_photon(index, source, tmp_path / "svc.photon")  # the default store
    (log,) = (photonpack_home / "logs" / "build").iterdir()
    first = log.stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["verify", str(built.path), "--rebuild", str(source)])
    assert result.exit_code == 0, result.output
    assert f"reproducible: rebuilding {source} gives {built.digest}" in result.output
    assert log.stat().st_mtime_ns != first  # built again, not taken from the cache


def test_a_failing_build_shows_the_backends_last_lines_and_the_log(
    index: PackageIndex, tmp_path: Path
) -> None:
    store = Store(tmp_path / "home")
    source = photon(tmp_path / "src", "failing")
    with pytest.raises(BuildError) as info:
        build_photon(index, source, tmp_path / "x.photon", store=store)
    message = str(info.value)
    assert message.startswith("building failing-1.0.tar.gz failed; the backend's last lines:\n")
    assert "    checking for a C compiler... no" in message
    assert "RuntimeError: error: no C compiler found" in message
    assert message.endswith(f"full log in {store.root / 'logs' / 'build' / 'failing-1.0.log'}")
    assert not (tmp_path / "x.photon").exists()


def test_an_sdist_whose_bytes_differ_from_the_lock_is_refused_with_exit_3(
    index: PackageIndex, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from photonpack.cli import cli

    source = photon(tmp_path / "src", "swapped")
    build_photon(index, source, tmp_path / "a.photon", store=Store(tmp_path / "home"))
    index.tamper("swapped-1.0.tar.gz")
    try:
        result = CliRunner().invoke(
            cli, ["build", "-m", str(source), "-o", str(tmp_path / "b.photon"),
                  "--index-url", index.url],
        )  # fmt: skip
    finally:
        index._tampered.clear()
    assert result.exit_code == 3, result.output
    assert "swapped-1.0.tar.gz from " in result.output
    assert "does not match the lock" in result.output
    assert not (tmp_path / "b.photon").exists()


def test_a_dynamic_build_requirement_the_lock_cannot_hold_is_named(
    index: PackageIndex, tmp_path: Path
) -> None:
    with pytest.raises(BuildError) as info:
        build_photon(
            index, photon(tmp_path / "src", "asking"), tmp_path / "x.photon",
            store=Store(tmp_path / "home"),
        )  # fmt: skip
    assert str(info.value) == (
        "building asking-1.0.tar.gz: its backend asks for tinydep>=1.0, which its locked build "
        "environment does not hold (a dynamic build requirement photonpack cannot lock); build "
        "a wheel yourself (pip wheel --no-deps) and lock with --find-links DIR"
    )


def test_verify_rebuild_works_air_gapped_from_the_archive_alone(
    index: PackageIndex, tmp_path: Path
) -> None:
    import os
    import shutil
    import subprocess
    import sys

    source = photon(tmp_path / "src", "docopty", "hatchy")
    built = build_photon(index, source, tmp_path / "svc.photon", store=Store(tmp_path / "home"))
    hatchy = next(w.source for w in built.manifest.wheels if w.name == "hatchy")
    assert hatchy is not None
    assert any(b.filename.startswith("hatchling-") for b in hatchy.build_wheels)
    labels = built.manifest.blob_labels()
    for wheel in hatchy.build_wheels:  # carried as blobs of the archive
        assert labels[wheel.sha256] == [f"build:{wheel.filename}"]
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("this test needs root and unshare(1) (CI runs as root)")
    airgap = tmp_path / "airgap"
    shutil.copytree(tmp_path / "src", airgap / "src")  # the source and its lock, nothing else
    archive = Path(shutil.copy(built.path, airgap / "svc.photon"))
    verify = [sys.executable, "-m", "photonpack", "verify", str(archive)]
    done = subprocess.run(
        ["unshare", "--net", "--", *verify, "--rebuild", str(airgap / "src" / "svc.py")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PHOTONPACK_HOME": str(airgap / "home")},  # an empty store
        cwd=airgap,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"gives {built.digest}" in done.stdout
    assert len(list((airgap / "home" / "logs" / "build").iterdir())) == 2  # both built again
