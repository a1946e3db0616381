"""``photonpack gc``: what no kept photon needs goes, safely while other processes run.

Real processes throughout: ``photonpack run`` servers, ``photonpack gc`` in
subprocesses, the counter photon built from the tests' index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from photonpack import Client
from photonpack._units import format_duration, parse_duration
from photonpack.admit import admit_archive
from photonpack.deploy.record import Record, Records
from photonpack.store import Store, locks
from tests.support.archives import Archive
from tests.support.index import PackageIndex
from tests.support.serving import Served
from tests.support.stack import COUNTER, build_photon, write_photon

_KEPT_AREAS = ("blobs/sha256", "manifests", "envs", "work")


def _photonpack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "photonpack", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _gc(*args: str) -> dict[str, Any]:
    done = _photonpack("gc", "--json", *args)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _freed(report: dict[str, Any]) -> dict[str, int]:
    return {area["area"]: area["items"] for area in report["areas"] if area["items"]}


def _contents(home: Path) -> dict[str, list[str]]:
    return {area: sorted(p.name for p in (home / area).glob("*")) for area in _KEPT_AREAS}


def _name(home: Path, archive: Path, name: str) -> None:
    """Name the archive's photon (admitted by a run before) in the store, as create does."""
    store = Store(home)
    digest = json.loads(_photonpack("verify", "--json", str(archive)).stdout)["digest"]
    store.refs.put(name, digest, archive.stat().st_size)
    locks.release()  # this process's hold on the store ends here, as a command's would


@pytest.fixture
def archive(counter_archive: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(counter_archive, tmp_path / "counter.photon"))


def _run_once(serve_photon: Callable[..., Served], spec: str) -> Served:
    served = serve_photon(spec)
    assert Client(served.url).add(x=2) == 2
    assert served.stop() == 0
    return served


def test_gc_keeps_a_named_photon_whole_and_it_runs_again_without_installing(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    _run_once(serve_photon, str(archive))
    _name(photonpack_home, archive, "counter")
    before = _contents(photonpack_home)

    report = _gc("--keep-recent", "0")
    assert report["roots"] == {"named": ["counter"], "deployed": [], "recent": []}
    assert report["photons"] == 1
    assert _contents(photonpack_home) == before
    for area in ("blobs", "manifests", "envs", "work"):
        assert _freed(report).get(area, 0) == 0

    again = serve_photon("-n counter")
    assert "environment reused" in again.stderr()
    assert Client(again.url).add(x=1) == 1


def test_gc_removes_a_photon_once_its_name_is_removed(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    _run_once(serve_photon, str(archive))
    _name(photonpack_home, archive, "counter")
    assert _photonpack("remove", "-n", "counter").returncode == 0

    kept = _gc()  # run within the last week: still kept
    assert kept["roots"]["recent"] and kept["photons"] == 1
    assert (photonpack_home / "envs").glob("*")

    report = _gc("--keep-recent", "0")
    assert report["photons"] == 0
    freed = _freed(report)
    assert freed["envs"] == 1
    assert freed["work"] == 1
    assert freed["manifests"] == 1
    assert freed["blobs"] > 1
    assert report["freed"]["size"] > 1_000_000  # the serving stack's environment
    assert _contents(photonpack_home) == {area: [] for area in _KEPT_AREAS}
    assert list((photonpack_home / "installed").iterdir()) == []
    assert list((photonpack_home / "tmp").iterdir()) == []

    # Nothing is left that a run would take as valid: it imports and installs again.
    served = serve_photon(str(archive))
    assert "environment installed" in served.stderr()
    assert Client(served.url).add(x=4) == 4


def test_dry_run_removes_nothing_and_reports_what_gc_then_frees(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    _run_once(serve_photon, str(archive))
    files = sorted(str(p) for p in photonpack_home.rglob("*") if p.name != ".lock")

    dry = _gc("--dry-run", "--keep-recent", "0")
    assert sorted(str(p) for p in photonpack_home.rglob("*") if p.name != ".lock") == files
    real = _gc("--keep-recent", "0")
    assert dry.pop("dry_run") is True
    assert real.pop("dry_run") is False
    assert dry == real
    assert real["freed"]["items"] > 0

    table = _photonpack("gc", "--dry-run")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["AREA", "ITEMS", "FILES", "WOULD", "FREE"]
    assert "dry run: nothing was removed" in table.stdout


def test_gc_never_removes_what_a_live_server_uses(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    served = serve_photon(str(archive))
    client = Client(served.url)
    assert client.add(x=3) == 3
    env = next((photonpack_home / "envs").iterdir())
    work = next((photonpack_home / "work").iterdir())

    report = _gc("--keep-recent", "0")
    assert report["in_use"] == [f"envs/{env.name}", f"work/{work.name}"]
    assert env.is_dir() and work.is_dir()
    assert _freed(report).get("envs", 0) == 0
    assert client.add(x=4) == 7  # the server still answers, from the same process
    assert served.process.poll() is None

    assert served.stop() == 0
    after = _gc("--keep-recent", "0")
    assert after["in_use"] == []
    assert _freed(after)["envs"] == 1
    assert not env.exists() and not work.exists()


def test_two_gc_at_once_are_safe(
    archive: Path, serve_photon: Callable[..., Served], photonpack_home: Path
) -> None:
    _run_once(serve_photon, str(archive))
    argv = [sys.executable, "-m", "photonpack", "gc", "--json", "--keep-recent", "0"]
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    reports = [json.loads(run.communicate(timeout=300)[0]) for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    # One collected everything, the other (after waiting for it) found nothing left.
    assert sorted(report["freed"]["items"] > 0 for report in reports) == [False, True]
    assert _contents(photonpack_home) == {area: [] for area in _KEPT_AREAS}


def test_gc_no_wait_fails_while_another_process_uses_the_store(photonpack_home: Path) -> None:
    store = Store(photonpack_home)
    store.refs.put("counter", "sha256:" + "a" * 64, 1)  # takes the store's shared lock
    busy = _photonpack("gc", "--no-wait")
    assert busy.returncode == 1
    assert busy.stderr == (
        f"error: another photonpack process is using the store {photonpack_home}; run gc "
        "again when it has finished, or without --no-wait to wait for it\n"
    )
    locks.release()
    assert _photonpack("gc", "--no-wait").returncode == 0


def test_gc_removes_stale_temporary_files_only(photonpack_home: Path) -> None:
    tmp = photonpack_home / "tmp"
    tmp.mkdir(parents=True)
    gone = tmp / "999999999-env-x"
    gone.mkdir()
    (gone / "f").write_bytes(b"x")
    live_young = tmp / f"{os.getppid()}-blob-y"
    live_young.write_bytes(b"y")
    live_old = tmp / f"{os.getppid()}-blob-z"
    live_old.write_bytes(b"z")
    hour_ago = time.time() - 3700
    os.utime(live_old, (hour_ago, hour_ago))

    report = _gc()
    assert _freed(report) == {"tmp": 2}
    assert sorted(p.name for p in tmp.iterdir()) == [live_young.name]


def test_gc_refuses_to_guess_when_a_ref_is_unreadable(photonpack_home: Path) -> None:
    refs = photonpack_home / "refs"
    refs.mkdir(parents=True)
    (refs / "broken.json").write_text("{")
    (photonpack_home / "blobs" / "sha256").mkdir(parents=True)
    blob = photonpack_home / "blobs" / "sha256" / ("b" * 64)
    blob.write_bytes(b"b")
    done = _photonpack("gc")
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: the ref {refs / 'broken.json'} cannot be read (")
    assert done.stderr.endswith(
        "so gc cannot tell what it keeps; nothing was removed: repair or remove that file, "
        "then run gc again\n"
    )
    assert blob.exists()


def test_gc_of_an_empty_or_missing_store_frees_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "photonpack", "gc", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PHOTONPACK_HOME": str(tmp_path / "none")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["freed"] == {"items": 0, "size": 0}
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("30s", 30), ("10m", 600), ("12h", 43200), ("7d", 604800)]
)
def test_durations_read_and_print_back(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == text


def test_a_bad_keep_window_is_a_usage_error() -> None:
    done = _photonpack("gc", "--keep-recent", "soon")
    assert done.returncode == 2
    assert done.stderr == (
        "error: --keep-recent 'soon' is not a duration: use a number and a unit (s, m, h, d, w)\n"
    )


def test_pointers_to_a_removed_environment_move_to_a_kept_one_that_shares_its_wheels(
    archive: Path,
    serve_photon: Callable[..., Served],
    photonpack_home: Path,
    real_index: PackageIndex,
    tmp_path: Path,
) -> None:
    _run_once(serve_photon, str(archive))  # installs the serving stack and tinydep 2.0
    (first_env,) = (photonpack_home / "envs").iterdir()
    source = write_photon(tmp_path / "v2", COUNTER.replace("tinydep>=1.0", "tinydep==1.0"))
    built = build_photon(real_index, source, tmp_path / "v2.photon")  # links the stack from it
    Store(photonpack_home).refs.put("counter-v2", built.digest, built.size)
    locks.release()
    second_env = next(p for p in (photonpack_home / "envs").iterdir() if p != first_env)

    report = _gc("--keep-recent", "0")
    assert _freed(report)["envs"] == 1
    assert not first_env.exists()
    assert report["moved_pointers"] > 10  # the serving stack's wheels
    pointers = [json.loads(p.read_bytes()) for p in (photonpack_home / "installed").iterdir()]
    assert {pointer["environment"] for pointer in pointers} == {second_env.name}

    # The first photon, run again, links the stack from the kept environment.
    _run_once(serve_photon, str(archive))
    (again,) = (p for p in (photonpack_home / "envs").iterdir() if p != second_env)
    module = next(again.glob("lib/python*/site-packages/fastapi/__init__.py"))
    kept = next(second_env.glob("lib/python*/site-packages/fastapi/__init__.py"))
    assert module.stat().st_ino == kept.stat().st_ino


def test_a_deployed_photon_is_kept_until_its_record_goes(
    small_archive: Archive, photonpack_home: Path
) -> None:
    manifest = admit_archive(small_archive.path, Store(photonpack_home))
    record = Record(
        name="web",
        engine="podman",
        photon=manifest.name,
        photon_digest=manifest.digest,
        image="localhost/counter:latest",
        url=None,
    )
    Records(photonpack_home).put(record, "")
    locks.release()
    blobs = sorted(p.name for p in (photonpack_home / "blobs" / "sha256").iterdir())

    kept = _gc("--keep-recent", "0")
    assert kept["roots"]["deployed"] == ["web"]
    assert kept["photons"] == 1
    assert sorted(p.name for p in (photonpack_home / "blobs" / "sha256").iterdir()) == blobs

    Records(photonpack_home).delete("web")
    gone = _gc("--keep-recent", "0")
    assert _freed(gone)["blobs"] == len(blobs)
    assert list((photonpack_home / "manifests").iterdir()) == []


def test_gc_waits_for_a_command_using_the_store_and_sees_what_it_did(
    small_archive: Archive, photonpack_home: Path
) -> None:
    store = Store(photonpack_home)
    manifest = admit_archive(small_archive.path, store)  # this process now holds the store
    store.refs.put("counter", manifest.digest, 1)
    argv = [sys.executable, "-m", "photonpack", "gc", "--json", "--keep-recent", "0"]
    waiting = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    store.refs.remove("counter")  # still this command's work: gc must see the store after it
    locks.release()
    report = json.loads(waiting.communicate(timeout=300)[0])
    assert waiting.returncode == 0
    assert report["roots"]["named"] == []
    assert _freed(report)["blobs"] == len(manifest.blobs())


def test_gc_drops_the_records_of_archives_gone_and_of_wheels_it_removes(
    real_index: PackageIndex, photonpack_home: Path, tmp_path: Path
) -> None:
    photon = write_photon(tmp_path / "src")
    out = tmp_path / "counter.photon"
    built = _photonpack("build", "-m", str(photon), "--index-url", real_index.url, "-o", str(out))
    assert built.returncode == 0, built.stderr
    written = list((photonpack_home / "written").glob("*.json"))
    inspected = list((photonpack_home / "inspected").glob("*.json"))
    assert len(written) == 1 and inspected
    _gc()  # the archive is still there, unchanged: its record stays (nothing is named: blobs go)
    assert [p.exists() for p in written] == [True]
    assert not list((photonpack_home / "inspected").glob("*.json"))
    out.unlink()
    freed = _freed(_gc())
    assert freed.get("written") == 1 and not written[0].exists()
