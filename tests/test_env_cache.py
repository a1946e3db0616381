"""The store's unpacked-wheel cache: environments share verified, compiled files by hard link."""

from __future__ import annotations

import base64
import csv
import hashlib
import marshal
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.errors import EnvironmentError_, IntegrityError
from photonpack.runtime.cache import WheelCache
from photonpack.runtime.env import ensure_environment
from photonpack.runtime.install import create_environment
from photonpack.runtime.venv import ENVIRONMENT_LAYOUT, describe_interpreter
from photonpack.store import Store
from tests.support.wheels import build_wheel

SITE = f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
TAG = sys.implementation.cache_tag
INTERPRETER = describe_interpreter().id


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_python(env: Path, code: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(env / "bin" / "python"), "-c", code],
        capture_output=True, text=True, env={**environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False, cwd=env,
    )  # fmt: skip


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def assert_records_match(env: Path) -> None:
    for record in (env / SITE).glob("*.dist-info/RECORD"):
        for path, digest, size in csv.reader(record.read_text().splitlines()):
            if digest:
                data = (env / SITE / path).read_bytes()
                assert (digest, int(size)) == ("sha256=" + b64(data), len(data)), path


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Path]:
    alpha = build_wheel(
        tmp_path / "wheels", "alpha", "1.0",
        files={"alpha/__init__.py": "def main():\n    print('alpha')\n    return 0\n"},
        entry_points={"alpha-cli": "alpha:main"},
    )  # fmt: skip
    beta = build_wheel(tmp_path / "wheels", "beta", "2.0")
    return {alpha.name: alpha, beta.name: beta}


def entry_of(store: Store, wheel: Path) -> Path:
    return store.root / "unpacked" / f"{sha256(wheel)}-{INTERPRETER}-v{ENVIRONMENT_LAYOUT}"


def test_two_environments_share_the_unpacked_files_by_hard_link(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    runtime = tmp_path / "serving.py"
    runtime.write_text("SERVING = 'yes'\n")
    for name in ("one", "two"):
        create_environment(
            tmp_path / name, wheels=wheels, runtime_files={"photonpack/serving.py": runtime},
            cache=WheelCache(store),
        )  # fmt: skip
    entry = entry_of(store, wheels["alpha-1.0-py3-none-any.whl"])
    assert sorted(p.name for p in (store.root / "unpacked").iterdir()) == sorted(
        entry_of(store, w).name for w in wheels.values()
    )
    assert (entry / ".complete").is_file()
    shared = [f"{SITE}/alpha/__init__.py", f"{SITE}/alpha/__pycache__/__init__.{TAG}.pyc",
              "bin/alpha-cli", f"{SITE}/alpha-1.0.dist-info/RECORD"]  # fmt: skip
    for rel in shared:
        inode = (entry / rel).stat().st_ino
        assert (tmp_path / "one" / rel).stat().st_ino == inode, rel
        assert (tmp_path / "two" / rel).stat().st_ino == inode, rel
        assert stat.S_IMODE((entry / rel).stat().st_mode) & 0o222 == 0, rel  # read-only
    for name in ("one", "two"):
        env = tmp_path / name
        done = run_python(env, "import alpha, beta, photonpack.serving as s; print(s.SERVING)")
        assert (done.stdout, done.stderr) == ("yes\n", "")
        cli_run = subprocess.run(
            [str(env / "bin" / "alpha-cli")], capture_output=True, text=True, check=False
        )
        assert cli_run.stdout == "alpha\n"
        assert (env / f"{SITE}/photonpack/__pycache__/serving.{TAG}.pyc").is_file()
        assert (env / f"{SITE}/alpha-1.0.dist-info/INSTALLER").read_text() == "photonpack\n"
        assert_records_match(env)


def test_a_killed_cache_fill_is_not_taken_as_valid(tmp_path: Path, wheels: dict[str, Path]) -> None:
    store = Store(tmp_path / "store")
    # The fill is killed after every file is written, just before the entries are published.
    code = """
import os, signal, sys
from pathlib import Path
from photonpack.runtime import cache
from photonpack.runtime.install import create_environment
from photonpack.store import Store
Store.publish_dir = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
store = Store(Path(sys.argv[2]))
create_environment(Path(sys.argv[1]), wheels=[Path(p) for p in sys.argv[3:]],
                   cache=cache.WheelCache(store))
"""
    argv = [sys.executable, "-c", code, str(tmp_path / "env"), str(store.root)]
    argv += [str(w) for w in wheels.values()]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == -9, done.stderr
    unpacked = store.root / "unpacked"
    assert not unpacked.exists() or not list(unpacked.iterdir())
    assert [p.name.startswith("unpacked-") for p in (store.root / "tmp").iterdir()] == [True]
    # A half-written entry at the final place (no .complete) is not trusted either.
    entry = entry_of(store, wheels["beta-2.0-py3-none-any.whl"])
    (entry / SITE / "beta").mkdir(parents=True)
    (entry / SITE / "beta" / "__init__.py").write_text("VERSION = 'forged'\n")

    create_environment(tmp_path / "env", wheels=list(wheels.values()), cache=WheelCache(store))
    assert run_python(tmp_path / "env", "import beta; print(beta.VERSION)").stdout == "2.0\n"
    assert (entry / ".complete").is_file()
    assert_records_match(tmp_path / "env")


def test_verify_store_takes_a_corrupted_entry_and_its_environments_out_of_use(
    tmp_path: Path, wheels: dict[str, Path], photonpack_home: Path
) -> None:
    store = Store()
    pairs = []
    for filename, wheel in wheels.items():
        store.add_blob_file(wheel, sha256(wheel), wheel.stat().st_size)
        pairs.append((sha256(wheel), filename))
    env, created = ensure_environment(store, wheels=pairs, runtime=[])
    assert created
    assert store.verify() == []

    entry = entry_of(store, wheels["beta-2.0-py3-none-any.whl"])
    source = entry / SITE / "beta" / "__init__.py"
    source.chmod(0o644)  # root ignores the mode anyway; what matters is verify
    source.write_text("VERSION = '6.6'\n")  # same size, other bytes: one inode, both trees
    assert (env / SITE / "beta" / "__init__.py").read_text() == "VERSION = '6.6'\n"

    result = CliRunner().invoke(cli, ["verify", "--store"])
    assert result.exit_code == 3
    good, bad = b64(b"VERSION = '2.0'\n"), b64(b"VERSION = '6.6'\n")
    altered = (
        f"{SITE}/beta/__init__.py was altered (expected sha256 {good}, 16 bytes; found {bad}, "
        "16 bytes); it was taken out of use and will be built again on the next run"
    )
    assert result.output.splitlines() == [
        f"FAIL unpacked wheel {entry.name}: {altered}",
        f"FAIL environment {env.name}: {altered}",
    ]
    assert not (entry / ".complete").exists() and not (env / ".complete").exists()

    again, created = ensure_environment(store, wheels=pairs, runtime=[])
    assert (again, created) == (env, True)
    assert run_python(again, "import beta; print(beta.VERSION)").stdout == "2.0\n"
    assert store.verify() == []


def test_environments_sharing_a_file_through_the_cache_link_it_once(tmp_path: Path) -> None:
    shared = {"ns/__init__.py": "# shared namespace\n"}
    one = build_wheel(tmp_path, "one", "1.0", files={**shared, "ns/one.py": "X = 1\n"})
    two = build_wheel(tmp_path, "two", "1.0", files={**shared, "ns/two.py": "X = 2\n"})
    create_environment(tmp_path / "env", wheels=[one, two], cache=WheelCache(Store(tmp_path / "s")))
    result = run_python(tmp_path / "env", "import ns.one, ns.two; print(ns.one.X + ns.two.X)")
    assert (result.stdout, result.stderr) == ("3\n", "")
    assert_records_match(tmp_path / "env")


def test_conflicting_wheels_are_refused_through_the_cache_too(tmp_path: Path) -> None:
    one = build_wheel(tmp_path, "one", "1.0", files={"clash.py": "X = 1\n"})
    two = build_wheel(tmp_path, "two", "1.0", files={"clash.py": "X = 2\n"})
    with pytest.raises(EnvironmentError_) as info:
        create_environment(
            tmp_path / "env", wheels=[two, one], cache=WheelCache(Store(tmp_path / "s"))
        )
    assert str(info.value) == (
        f"wheels one-1.0-py3-none-any.whl and two-1.0-py3-none-any.whl both install "
        f"{SITE}/clash.py with different content; a photon cannot depend on both. Remove one "
        "of them from the requirements and lock again."
    )
    assert not (tmp_path / "env").exists()


def test_a_tampered_wheel_never_enters_the_cache(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "cut", "1.0")
    wheel.write_bytes(wheel.read_bytes()[:-40])
    store = Store(tmp_path / "s")
    with pytest.raises(IntegrityError) as info:
        create_environment(tmp_path / "env", wheels=[wheel], cache=WheelCache(store))
    assert str(info.value) == (
        "wheel cut-1.0-py3-none-any.whl cannot be trusted: it is not a valid zip archive "
        "(File is not a zip file). The archive that carries it was built from a broken or "
        "tampered wheel; rebuild it from a clean package index."
    )
    assert not (store.root / "unpacked").exists()
    assert not (tmp_path / "env").exists()


def test_concurrent_environments_fill_a_shared_entry_once(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    code = """
import sys
import tempfile
from pathlib import Path
from photonpack.runtime.cache import WheelCache
from photonpack.runtime.install import create_environment
from photonpack.store import Store
store = Store(Path(sys.argv[2]))
wheels = [Path(p) for p in sys.argv[3:]]
create_environment(Path(sys.argv[1]), wheels=wheels, cache=WheelCache(store))
"""
    paths = [str(w) for w in wheels.values()]
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path / env), str(store.root), *paths])
        for env in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    rel = f"{SITE}/beta/__init__.py"
    assert (tmp_path / "a" / rel).stat().st_ino == (tmp_path / "b" / rel).stat().st_ino
    assert len(list((store.root / "unpacked").iterdir())) == 2


def test_ensure_environment_passes_store_blobs_without_hashing_them_again(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    wheel = wheels["beta-2.0-py3-none-any.whl"]
    blob = store.add_blob_file(wheel, sha256(wheel), wheel.stat().st_size)
    assert WheelCache(store).digest_of(blob) == blob.name
    copy = tmp_path / "elsewhere.whl"
    copy.write_bytes(wheel.read_bytes())
    assert WheelCache(store).digest_of(copy) == sha256(wheel)


def test_a_shared_source_whose_pycs_differ_keeps_one_pyc_and_a_true_record(
    tmp_path: Path,
) -> None:
    # marshal output depends on the compiling process: two entries may hold different
    # (equally valid) pycs of one shared source.
    shared = {"ns/__init__.py": "# shared namespace\n"}
    one = build_wheel(tmp_path, "one", "1.0", files={**shared, "ns/one.py": "X = 1\n"})
    two = build_wheel(tmp_path, "two", "1.0", files={**shared, "ns/two.py": "X = 2\n"})
    store = Store(tmp_path / "s")
    cache = WheelCache(store)
    create_environment(tmp_path / "first", wheels=[one, two], cache=cache)
    entry = entry_of(store, two)
    rel = f"ns/__pycache__/__init__.{TAG}.pyc"
    pyc = entry / SITE / rel
    other = pyc.read_bytes()[:16] + marshal.dumps(compile(shared["ns/__init__.py"], "x", "exec"))
    pyc.chmod(0o644)
    pyc.write_bytes(other)
    record = entry / SITE / "two-1.0.dist-info" / "RECORD"
    record.chmod(0o644)
    text = record.read_text()
    row = next(line for line in text.splitlines() if line.startswith(rel + ","))
    record.write_text(text.replace(row, f"{rel},sha256={b64(other)},{len(other)}"))

    create_environment(tmp_path / "env", wheels=[one, two], cache=cache)
    env_pyc = tmp_path / "env" / SITE / rel
    assert env_pyc.stat().st_ino == (entry_of(store, one) / SITE / rel).stat().st_ino
    env_record = tmp_path / "env" / SITE / "two-1.0.dist-info" / "RECORD"
    assert env_record.stat().st_ino != record.stat().st_ino  # rewritten, not linked
    assert f"{rel},sha256={b64(env_pyc.read_bytes())}," in env_record.read_text()
    assert_records_match(tmp_path / "env")
    result = run_python(tmp_path / "env", "import ns.one, ns.two; print(ns.one.X + ns.two.X)")
    assert (result.stdout, result.stderr) == ("3\n", "")


def test_an_environment_on_another_filesystem_gets_copies(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    # /dev/shm is a tmpfs: hard links from the store's filesystem fail there with EXDEV.
    store = Store(tmp_path / "store")
    other = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        create_environment(other / "env", wheels=wheels, cache=WheelCache(store))
        rel = f"{SITE}/beta/__init__.py"
        copied, cached = (
            other / "env" / rel,
            entry_of(store, wheels["beta-2.0-py3-none-any.whl"]) / rel,
        )
        assert copied.read_bytes() == cached.read_bytes()
        assert (copied.stat().st_dev, copied.stat().st_ino) != (
            cached.stat().st_dev,
            cached.stat().st_ino,
        )
        assert stat.S_IMODE(copied.stat().st_mode) == stat.S_IMODE(cached.stat().st_mode) == 0o444
        done = run_python(other / "env", "import alpha, beta; print(beta.VERSION)")
        assert (done.stdout, done.stderr) == ("2.0\n", "")
        assert_records_match(other / "env")
    finally:
        shutil.rmtree(other)


def test_a_file_missing_from_an_entry_is_refused_until_verify_takes_it_out(
    tmp_path: Path, wheels: dict[str, Path], photonpack_home: Path
) -> None:
    store = Store()
    create_environment(tmp_path / "one", wheels=wheels, cache=WheelCache(store))
    entry = entry_of(store, wheels["beta-2.0-py3-none-any.whl"])
    (entry / SITE / "beta" / "__init__.py").unlink()
    with pytest.raises(IntegrityError) as info:
        create_environment(tmp_path / "two", wheels=wheels, cache=WheelCache(store))
    assert str(info.value) == (
        f"the unpacked wheel {entry / SITE / 'beta'} lacks __init__.py, which its RECORD lists; "
        "run 'photonpack verify --store' to take it out of use, then run again"
    )
    assert not (tmp_path / "two").exists()
    result = CliRunner().invoke(cli, ["verify", "--store"])
    assert result.exit_code == 3
    assert result.output.startswith(
        f"FAIL unpacked wheel {entry.name}: {SITE}/beta/__init__.py cannot be read ("
    )
    create_environment(tmp_path / "two", wheels=wheels, cache=WheelCache(store))
    assert run_python(tmp_path / "two", "import beta; print(beta.VERSION)").stdout == "2.0\n"
