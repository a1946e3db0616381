"""The store's environments as a wheel cache: a wheel installed once is hard-linked after."""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import json
import marshal
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from photonpack.archive.manifest import FileEntry
from photonpack.cli import cli
from photonpack.errors import InstallError, IntegrityError
from photonpack.install.cache import WheelCache
from photonpack.install.environment import ensure_environment
from photonpack.install.installer import create_environment
from photonpack.install.interpreter import describe_interpreter
from photonpack.install.venv import ENVIRONMENT_LAYOUT
from photonpack.store import Store
from photonpack.verify import verify_store
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


def pointer_of(store: Store, wheel: Path) -> Path:
    return store.root / "installed" / f"{sha256(wheel)}-{INTERPRETER}-v{ENVIRONMENT_LAYOUT}"


def runtime_file(store: Store, text: str) -> FileEntry:
    """A runtime file in the store: environments differ by it as photons of two versions do."""
    data = text.encode()
    source = store.root.parent / f"runtime-{hashlib.sha256(data).hexdigest()}.py"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    store.add_blob_file(source, digest, len(data))
    return FileEntry(path="photonpack/serving.py", sha256=digest, size=len(data))


def stock(store: Store, wheels: Iterable[Path]) -> list[tuple[str, str]]:
    """The wheels as blobs of ``store``: their (sha256, filename) pairs."""
    pairs = []
    for wheel in wheels:
        store.add_blob_file(wheel, sha256(wheel), wheel.stat().st_size)
        pairs.append((sha256(wheel), wheel.name))
    return pairs


def environment(store: Store, wheels: list[Path], runtime: str = "") -> tuple[Path, bool]:
    """``ensure_environment`` for wheels and one runtime file (its text picks the digest)."""
    pairs = stock(store, wheels)
    return ensure_environment(store, wheels=pairs, runtime=[runtime_file(store, runtime)])


def test_a_second_environment_links_the_files_of_the_first(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    one, _ = environment(store, list(wheels.values()), "SERVING = 'one'\n")
    two, _ = environment(store, list(wheels.values()), "SERVING = 'two'\n")
    assert one != two
    for wheel in wheels.values():
        pointer = json.loads(pointer_of(store, wheel).read_text())
        assert pointer["environment"] == one.name  # the first environment installed it
    assert json.loads(pointer_of(store, wheels["alpha-1.0-py3-none-any.whl"]).read_text()) == {
        "environment": one.name, "dist_info": "alpha-1.0.dist-info",
    }  # fmt: skip
    shared = [f"{SITE}/alpha/__init__.py", f"{SITE}/alpha/__pycache__/__init__.{TAG}.pyc",
              "bin/alpha-cli", f"{SITE}/alpha-1.0.dist-info/RECORD"]  # fmt: skip
    for rel in shared:
        assert (one / rel).stat().st_ino == (two / rel).stat().st_ino, rel
        assert stat.S_IMODE((one / rel).stat().st_mode) & 0o222 == 0, rel  # read-only
    serving = f"{SITE}/photonpack/serving.py"
    assert (one / serving).stat().st_ino != (two / serving).stat().st_ino  # its own copy
    for env, name in ((one, "one"), (two, "two")):
        done = run_python(env, "import alpha, beta, photonpack.serving as s; print(s.SERVING)")
        assert (done.stdout, done.stderr) == (f"{name}\n", "")
        cli_run = subprocess.run(
            [str(env / "bin" / "alpha-cli")], capture_output=True, text=True, check=False
        )
        assert cli_run.stdout == "alpha\n"
        assert (env / f"{SITE}/photonpack/__pycache__/serving.{TAG}.pyc").is_file()
        assert (env / f"{SITE}/alpha-1.0.dist-info/INSTALLER").read_text() == "photonpack\n"
        assert_records_match(env)
    assert verify_store(store) == []


def test_the_first_environment_is_installed_as_without_a_cache(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    env, created = environment(store, list(wheels.values()))
    assert created
    pointers = sorted(p.name for p in (store.root / "installed").iterdir())
    assert len(pointers) == len(wheels) + 1  # and one for the runtime files
    assert {pointer_of(store, w).name for w in wheels.values()} < set(pointers)
    # Every file is the environment's own: one link, none in another tree of the store.
    files = [p for p in env.rglob("*") if p.is_file() and not p.is_symlink()]
    assert files and all(p.stat().st_nlink == 1 for p in files)
    assert not (store.root / "unpacked").exists()


def test_a_new_wheel_is_installed_next_to_linked_ones(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    shared = {"ns/__init__.py": "# shared namespace\n"}
    one = build_wheel(tmp_path, "one", "1.0", files={**shared, "ns/one.py": "X = 1\n"})
    two = build_wheel(tmp_path, "two", "1.0", files={**shared, "ns/two.py": "X = 2\n"})
    first, _ = environment(store, [one, wheels["beta-2.0-py3-none-any.whl"]])
    second, created = environment(store, [one, two])
    assert created
    init = f"{SITE}/ns/__init__.py"
    assert (second / init).stat().st_ino == (first / init).stat().st_ino  # linked, not rewritten
    assert json.loads(pointer_of(store, two).read_text())["environment"] == second.name
    assert json.loads(pointer_of(store, one).read_text())["environment"] == first.name
    # The new wheel's RECORD lists the shared source and its (linked) pyc too.
    record = (second / SITE / "two-1.0.dist-info" / "RECORD").read_text()
    assert "ns/__init__.py," in record and f"ns/__pycache__/__init__.{TAG}.pyc," in record
    result = run_python(second, "import ns.one, ns.two; print(ns.one.X + ns.two.X)")
    assert (result.stdout, result.stderr) == ("3\n", "")
    assert_records_match(second)
    third, _ = environment(store, [one, two], "THIRD = 3\n")  # both linked now
    assert (third / f"{SITE}/ns/two.py").stat().st_ino == (
        second / f"{SITE}/ns/two.py"
    ).stat().st_ino
    assert_records_match(third)
    assert verify_store(store) == []


def test_a_new_wheel_that_conflicts_with_a_linked_one_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    one = build_wheel(tmp_path, "one", "1.0", files={"clash.py": "X = 1\n"})
    two = build_wheel(tmp_path, "two", "1.0", files={"clash.py": "X = 2\n"})
    environment(store, [one])
    with pytest.raises(InstallError) as info:
        environment(store, [one, two])
    assert str(info.value) == (
        f"wheels one-1.0-py3-none-any.whl and two-1.0-py3-none-any.whl both install "
        f"{SITE}/clash.py with different content; a photon cannot depend on both. Remove one "
        "of them from the requirements and lock again."
    )
    assert not pointer_of(store, two).exists()
    assert [p.name for p in (store.root / "envs").iterdir()] and all(
        store.is_complete(p) for p in (store.root / "envs").iterdir()
    )


def test_a_killed_build_leaves_no_pointer_and_a_bad_pointer_is_ignored(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    pairs = [f"{digest}:{name}" for digest, name in stock(store, wheels.values())]
    # The build is killed after every file is written, just before it is published.
    code = """
import os, signal, sys
from pathlib import Path
from photonpack.install.environment import ensure_environment
from photonpack.store import Store
Store.publish_dir = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
pairs = [tuple(arg.split(":", 1)) for arg in sys.argv[2:]]
ensure_environment(Store(Path(sys.argv[1])), wheels=pairs, runtime=[])
"""
    done = subprocess.run(
        [sys.executable, "-c", code, str(store.root), *pairs],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == -9, done.stderr
    installed = store.root / "installed"
    assert not installed.exists() or not list(installed.iterdir())
    assert not (store.root / "envs").exists() or not list((store.root / "envs").iterdir())
    # A pointer to an environment that is not complete is not followed, nor a torn one.
    beta, alpha = wheels["beta-2.0-py3-none-any.whl"], wheels["alpha-1.0-py3-none-any.whl"]
    forged = store.root / "envs" / ("f" * 64)
    (forged / SITE / "beta-2.0.dist-info").mkdir(parents=True)
    (forged / SITE / "beta").mkdir()
    (forged / SITE / "beta" / "__init__.py").write_text("VERSION = 'forged'\n")
    (forged / SITE / "beta-2.0.dist-info" / "RECORD").write_text("beta/__init__.py,,\n")
    installed.mkdir(exist_ok=True)
    pointer_of(store, beta).write_text(
        json.dumps({"environment": forged.name, "dist_info": "beta-2.0.dist-info"})
    )
    pointer_of(store, alpha).write_text('{"environment": "')
    env, created = environment(store, [alpha, beta])
    assert created
    assert run_python(env, "import beta; print(beta.VERSION)").stdout == "2.0\n"
    assert json.loads(pointer_of(store, beta).read_text())["environment"] == env.name
    assert json.loads(pointer_of(store, alpha).read_text())["environment"] == env.name
    assert_records_match(env)


def test_verify_store_takes_every_environment_sharing_a_corrupted_file_out_of_use(
    tmp_path: Path, wheels: dict[str, Path], photonpack_home: Path
) -> None:
    store = Store()
    one, _ = environment(store, list(wheels.values()), "ONE = 1\n")
    two, _ = environment(store, list(wheels.values()), "TWO = 2\n")
    assert verify_store(store) == []

    source = one / SITE / "beta" / "__init__.py"
    source.chmod(0o644)  # root ignores the mode anyway; what matters is verify
    source.write_text("VERSION = '6.6'\n")  # same size, other bytes: one inode, both trees
    assert (two / SITE / "beta" / "__init__.py").read_text() == "VERSION = '6.6'\n"

    result = CliRunner().invoke(cli, ["verify", "--store"])
    assert result.exit_code == 3
    good, bad = b64(b"VERSION = '2.0'\n"), b64(b"VERSION = '6.6'\n")
    altered = (
        f"{SITE}/beta/__init__.py was altered (expected sha256 {good}, 16 bytes; found {bad}, "
        "16 bytes); it was taken out of use and will be built again on the next run"
    )
    assert sorted(result.output.splitlines()) == sorted(
        [f"FAIL environment {one.name}: {altered}", f"FAIL environment {two.name}: {altered}"]
    )
    assert not (one / ".complete").exists() and not (two / ".complete").exists()

    # Rebuilt from the verified blobs: the pointers name environments out of use.
    for env, runtime in ((two, "TWO = 2\n"), (one, "ONE = 1\n")):
        again, created = environment(store, list(wheels.values()), runtime)
        assert (again, created) == (env, True)
        assert run_python(again, "import beta; print(beta.VERSION)").stdout == "2.0\n"
    assert verify_store(store) == []


def test_environments_sharing_a_file_install_it_once(tmp_path: Path) -> None:
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
    with pytest.raises(InstallError) as info:
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
        environment(store, [wheel])
    assert str(info.value) == (
        "wheel cut-1.0-py3-none-any.whl cannot be trusted: it is not a valid zip archive "
        "(File is not a zip file). The archive that carries it was built from a broken or "
        "tampered wheel; rebuild it from a clean package index."
    )
    assert not (store.root / "installed").exists()
    assert not (store.root / "envs").exists() or not list((store.root / "envs").iterdir())


def test_concurrent_environments_sharing_wheels_both_build(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    entries = [runtime_file(store, f"N = {n}\n") for n in (1, 2)]
    pairs = [f"{digest}:{name}" for digest, name in stock(store, wheels.values())]
    code = """
import sys
from pathlib import Path
from photonpack.archive.manifest import FileEntry
from photonpack.install.environment import ensure_environment
from photonpack.store import Store
runtime = [FileEntry(path="photonpack/serving.py", sha256=sys.argv[2], size=int(sys.argv[3]))]
pairs = [tuple(arg.split(":", 1)) for arg in sys.argv[4:]]
print(ensure_environment(Store(Path(sys.argv[1])), wheels=pairs, runtime=runtime)[0])
"""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(store.root), e.sha256, str(e.size), *pairs],
            stdout=subprocess.PIPE,
            text=True,
        )
        for e in entries
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    envs = [Path(out.strip()) for out in outputs]
    assert envs[0] != envs[1]
    for env, n in zip(envs, (1, 2), strict=True):
        done = run_python(env, "import beta, photonpack.serving as s; print(beta.VERSION, s.N)")
        assert done.stdout == f"2.0 {n}\n"
        assert_records_match(env)
    for wheel in wheels.values():  # whichever finished last, the pointer names one of them
        assert json.loads(pointer_of(store, wheel).read_text())["environment"] in {
            env.name for env in envs
        }
    assert verify_store(store) == []


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
    # marshal output depends on the compiling process: two environments may hold
    # different (equally valid) pycs of one shared source.
    shared = {"ns/__init__.py": "# shared namespace\n"}
    one = build_wheel(tmp_path, "one", "1.0", files={**shared, "ns/one.py": "X = 1\n"})
    two = build_wheel(tmp_path, "two", "1.0", files={**shared, "ns/two.py": "X = 2\n"})
    store = Store(tmp_path / "s")
    first, _ = environment(store, [one])
    second, _ = environment(store, [two])
    rel = f"ns/__pycache__/__init__.{TAG}.pyc"
    pyc = second / SITE / rel
    other = pyc.read_bytes()[:16] + marshal.dumps(compile(shared["ns/__init__.py"], "x", "exec"))
    pyc.chmod(0o644)
    pyc.write_bytes(other)
    record = second / SITE / "two-1.0.dist-info" / "RECORD"
    record.chmod(0o644)
    text = record.read_text()
    row = next(line for line in text.splitlines() if line.startswith(rel + ","))
    record.write_text(text.replace(row, f"{rel},sha256={b64(other)},{len(other)}"))
    assert verify_store(store) == []

    third, _ = environment(store, [one, two])
    env_pyc = third / SITE / rel
    assert env_pyc.stat().st_ino == (first / SITE / rel).stat().st_ino
    env_record = third / SITE / "two-1.0.dist-info" / "RECORD"
    assert env_record.stat().st_ino != record.stat().st_ino  # rewritten, not linked
    assert stat.S_IMODE(env_record.stat().st_mode) & 0o222 == 0
    assert f"{rel},sha256={b64(env_pyc.read_bytes())}," in env_record.read_text()
    assert_records_match(third)
    result = run_python(third, "import ns.one, ns.two; print(ns.one.X + ns.two.X)")
    assert (result.stdout, result.stderr) == ("3\n", "")


def test_an_environment_on_another_filesystem_gets_copies(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    # /dev/shm is a tmpfs: hard links from the store's filesystem fail there with EXDEV.
    store = Store(tmp_path / "store")
    source, _ = environment(store, list(wheels.values()))
    other = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        create_environment(other / "env", wheels=wheels, cache=WheelCache(store))
        rel = f"{SITE}/beta/__init__.py"
        copied, cached = other / "env" / rel, source / rel
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


def test_a_file_missing_from_a_source_environment_is_refused_until_verify_takes_it_out(
    tmp_path: Path, wheels: dict[str, Path], photonpack_home: Path
) -> None:
    store = Store()
    one, _ = environment(store, list(wheels.values()), "ONE = 1\n")
    (one / SITE / "beta" / "__init__.py").unlink()
    with pytest.raises(IntegrityError) as info:
        environment(store, list(wheels.values()), "TWO = 2\n")
    assert str(info.value) == (
        f"the environment {one} lacks {SITE}/beta/__init__.py, which its RECORD lists; "
        "run 'photonpack verify --store' to take it out of use, then run again"
    )
    assert [p.name for p in (store.root / "envs").iterdir()] == [one.name]
    result = CliRunner().invoke(cli, ["verify", "--store"])
    assert result.exit_code == 3
    assert result.output.startswith(
        f"FAIL environment {one.name}: {SITE}/beta/__init__.py cannot be read ("
    )
    two, created = environment(store, list(wheels.values()), "TWO = 2\n")
    assert created
    assert run_python(two, "import beta; print(beta.VERSION)").stdout == "2.0\n"


def test_runtime_files_are_a_recorded_distribution_verified_and_linked_like_a_wheel(
    tmp_path: Path, wheels: dict[str, Path], photonpack_home: Path
) -> None:
    store = Store()
    alpha, beta = wheels["alpha-1.0-py3-none-any.whl"], wheels["beta-2.0-py3-none-any.whl"]
    one, _ = environment(store, [alpha], "SERVING = 1\n")
    two, _ = environment(store, [beta], "SERVING = 1\n")  # other wheels, same runtime
    serving, pyc = (
        f"{SITE}/photonpack/serving.py",
        f"{SITE}/photonpack/__pycache__/serving.{TAG}.pyc",
    )
    for rel in (serving, pyc, f"{SITE}/photonpack-0.dist-info/RECORD"):
        assert (one / rel).stat().st_ino == (two / rel).stat().st_ino, rel
    record = (one / SITE / "photonpack-0.dist-info" / "RECORD").read_text().splitlines()
    assert [row.split(",")[0] for row in record] == [
        "photonpack-0.dist-info/INSTALLER", "photonpack-0.dist-info/METADATA",
        f"photonpack/__pycache__/serving.{TAG}.pyc", "photonpack/serving.py",
        "photonpack-0.dist-info/RECORD",
    ]  # fmt: skip
    done = run_python(two, "import importlib.metadata as m; print(m.version('photonpack'))")
    assert (done.stdout, done.stderr) == ("0\n", "")
    assert_records_match(one)

    (one / serving).chmod(0o644)
    (one / serving).write_text("SERVING = 2\n")  # same size: only the hash tells
    result = CliRunner().invoke(cli, ["verify", "--store"])
    assert result.exit_code == 3
    assert sorted(line.split(":")[0] for line in result.output.splitlines()) == sorted(
        [f"FAIL environment {one.name}", f"FAIL environment {two.name}"]
    )
    assert f"{serving} was altered" in result.output


def test_the_runtime_distribution_is_named_after_the_runtime_version(tmp_path: Path) -> None:
    about = tmp_path / "about.py"
    about.write_text('"""v"""\n\n__version__ = "1.2.3"\n')
    create_environment(
        tmp_path / "env", wheels=[], runtime_files={"photonpack/__about__.py": about}
    )
    done = run_python(
        tmp_path / "env", "import importlib.metadata as m; print(m.version('photonpack'))"
    )
    assert (done.stdout, done.stderr) == ("1.2.3\n", "")
    assert_records_match(tmp_path / "env")


def test_a_wheel_blob_altered_after_verification_is_refused_and_removed(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    beta = wheels["beta-2.0-py3-none-any.whl"]
    blob = store.add_blob_file(beta, sha256(beta), beta.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte off
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as info:
        ensure_environment(store, wheels=[(sha256(beta), beta.name)], runtime=[])
    assert str(info.value) == (
        f"wheel {beta.name}: the store's blob sha256:{sha256(beta)} was altered after it was "
        "verified; it was removed: run the archive again to restore it"
    )
    assert not blob.exists()
    assert not (store.root / "envs").exists() or not list((store.root / "envs").iterdir())
    env, created = environment(store, [beta])  # the blob back, from a verified copy
    assert created
    assert run_python(env, "import beta; print(beta.VERSION)").stdout == "2.0\n"


def test_a_runtime_blob_altered_after_verification_is_refused_and_removed(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    entry = runtime_file(store, "SERVING = 1\n")
    blob = store.blob_path(entry.sha256)
    blob.chmod(0o644)
    blob.write_text("SERVING = 2\n")
    with pytest.raises(IntegrityError) as info:
        ensure_environment(store, wheels=[], runtime=[entry])
    assert str(info.value).startswith(
        f"runtime file photonpack/serving.py: the store's blob sha256:{entry.sha256} was altered"
    )
    assert not blob.exists()


def test_a_source_whose_dist_info_was_removed_is_not_linked_from(
    tmp_path: Path, wheels: dict[str, Path], photonpack_home: Path
) -> None:
    store = Store()
    one, _ = environment(store, list(wheels.values()), "ONE = 1\n")
    shutil.rmtree(one / SITE / "beta-2.0.dist-info")  # verify --store cannot see this
    assert verify_store(store) == []
    two, created = environment(store, list(wheels.values()), "TWO = 2\n")
    assert created
    assert run_python(two, "import beta; print(beta.VERSION)").stdout == "2.0\n"
    beta = wheels["beta-2.0-py3-none-any.whl"]
    assert json.loads(pointer_of(store, beta).read_text())["environment"] == two.name
    assert (two / SITE / "beta" / "__init__.py").stat().st_ino != (
        one / SITE / "beta" / "__init__.py"
    ).stat().st_ino  # installed afresh
    assert_records_match(two)


def test_a_malformed_record_row_is_found_by_verify_store_and_rebuilt(
    tmp_path: Path, wheels: dict[str, Path], photonpack_home: Path
) -> None:
    store = Store()
    one, _ = environment(store, list(wheels.values()), "ONE = 1\n")
    record = one / SITE / "beta-2.0.dist-info" / "RECORD"
    record.chmod(0o644)
    record.write_text(record.read_text() + "beta/extra.py,sha256=x\n")
    with pytest.raises(IntegrityError, match="malformed RECORD row"):
        environment(store, list(wheels.values()), "TWO = 2\n")
    result = CliRunner().invoke(cli, ["verify", "--store"])
    assert result.exit_code == 3
    assert result.output.startswith(
        f"FAIL environment {one.name}: {SITE}/beta-2.0.dist-info/RECORD has a malformed row "
    )
    two, created = environment(store, list(wheels.values()), "TWO = 2\n")
    assert created
    assert_records_match(two)


def test_a_pointer_that_cannot_be_written_costs_a_reinstall_not_the_run(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    store.root.mkdir()
    (store.root / "installed").write_text("not a directory\n")  # every pointer write fails
    one, created = environment(store, list(wheels.values()), "ONE = 1\n")
    assert created and store.is_complete(one)
    two, created = environment(store, list(wheels.values()), "TWO = 2\n")
    assert created
    rel = f"{SITE}/beta/__init__.py"
    assert (one / rel).stat().st_ino != (two / rel).stat().st_ino  # nothing to link from
    assert run_python(two, "import beta; print(beta.VERSION)").stdout == "2.0\n"


def test_store_du_counts_the_files_two_environments_share_once(
    tmp_path: Path, wheels: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "store")
    environment(store, list(wheels.values()), "SERVING = 'one'\n")
    environment(store, list(wheels.values()), "SERVING = 'two'\n")
    monkeypatch.setenv("PHOTONPACK_HOME", str(store.root))
    done = CliRunner().invoke(cli, ["store", "du", "--json"])
    assert done.exit_code == 0, done.output
    usage = json.loads(done.output)
    areas = {area["area"]: area for area in usage["areas"]}
    # What plain du would count: every file of both environments, inode or not.
    files = [p for p in (store.root / "envs").rglob("*") if p.is_file() and not p.is_symlink()]
    distinct = {(p.stat().st_ino): p.stat().st_size for p in files}
    envs = areas["envs"]
    assert envs["files"] == len(files)
    assert envs["size"] == sum(distinct.values())
    assert envs["linked"] == sum(p.stat().st_size for p in files) - sum(distinct.values()) > 0
    blobs = sum(p.stat().st_size for p in (store.root / "blobs").rglob("*") if p.is_file())
    assert areas["blobs"]["size"] == blobs
    assert usage["total"] == sum(area["size"] for area in usage["areas"])
    table = CliRunner().invoke(cli, ["store", "du"])
    assert table.exit_code == 0 and table.output.splitlines()[0].split()[:3] == [
        "AREA", "SIZE", "FILES",
    ]  # fmt: skip
    assert table.output.splitlines()[-1].startswith("total")


def test_a_new_environment_reports_the_bytes_it_writes_and_a_reused_one_nothing(
    tmp_path: Path, wheels: dict[str, Path]
) -> None:
    store = Store(tmp_path / "store")
    pairs = stock(store, wheels.values())
    members = sum(
        info.file_size
        for wheel in wheels.values()
        for info in zipfile.ZipFile(wheel).infolist()
        if not info.filename.endswith("/RECORD")  # the installer writes its own
    )
    heard: list[tuple[str, int]] = []
    sizes: list[int] = []

    class Recorder:  # what the CLI's progress line is told
        def begin(self, total: int) -> None:
            heard.append(("begin", total))

        def update(self, done: int) -> None:
            sizes.append(done)

    @contextlib.contextmanager
    def installing(count: int) -> Iterator[Recorder]:
        heard.append(("wheels", count))
        yield Recorder()

    runtime = [runtime_file(store, "")]
    env, created = ensure_environment(store, wheels=pairs, runtime=runtime, installing=installing)
    assert created
    assert heard == [("wheels", 2), ("begin", members)]
    assert sizes == sorted(sizes) and sizes[-1] == members  # a running total, to the end
    assert_records_match(env)

    heard.clear()
    _, created = ensure_environment(store, wheels=pairs, runtime=runtime, installing=installing)
    assert not created and heard == []  # a warm start draws no install line
