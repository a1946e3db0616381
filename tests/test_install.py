"""create_environment: real venvs from real wheels, every refusal with its exact message."""

from __future__ import annotations

import base64
import csv
import ensurepip
import hashlib
import os
import stat
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from photonpack.errors import InstallError, IntegrityError
from photonpack.install.installer import create_environment, interpreter_id
from tests.support.wheels import build_wheel

SITE = f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
TAG = sys.implementation.cache_tag
TRUST = "The archive that carries it was built from a broken or tampered wheel; rebuild it from a clean package index."  # noqa: E501


def run_python(env: Path, code: str, **kwargs: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **kwargs}
    environ.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(env / "bin" / "python"), "-c", code],
        capture_output=True, text=True, env=environ, check=False, cwd=env,
    )  # fmt: skip


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def rewrite(
    wheel: Path, edit: Callable[[dict[str, bytes]], None], *, modes: dict[str, int] | None = None
) -> Path:
    """Rewrite a wheel's members in place without touching its RECORD (unless ``edit`` does)."""
    with zipfile.ZipFile(wheel) as zf:
        contents = {name: zf.read(name) for name in zf.namelist()}
    edit(contents)
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (modes or {}).get(name, 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One environment with a console script, .data schemes and a runtime file, shared."""
    root = tmp_path_factory.mktemp("built")
    alpha = build_wheel(
        root / "wheels", "alpha", "1.0",
        files={"alpha/__init__.py": "def main():\n    print('alpha says hi')\n    return 0\n"},
        entry_points={"alpha-cli": "alpha:main"},
    )  # fmt: skip
    data = "gamma-3.0.data"
    gamma = build_wheel(
        root / "wheels", "gamma", "3.0",
        files={
            "gamma/__init__.py": "VALUE = 3\n",
            f"{data}/scripts/gamma-tool": "#!python\nimport gamma\nprint('tool', gamma.VALUE)\n",
            f"{data}/headers/gamma.h": "int gamma(void);\n",
            f"{data}/data/share/gamma/notes.txt": "notes\n",
            f"{data}/platlib/gamma_native.py": "NATIVE = True\n",
        },
    )  # fmt: skip
    runtime = root / "blob"
    runtime.write_text("SERVING = 'yes'\n")
    # Wheels given as filename -> file, the way the store holds them (blobs by hash).
    blob = root / "blobs" / hashlib.sha256(gamma.read_bytes()).hexdigest()
    blob.parent.mkdir()
    blob.write_bytes(gamma.read_bytes())
    env = root / "env"
    create_environment(
        env,
        wheels={alpha.name: alpha, gamma.name: blob},
        runtime_files={"photonpack/serving.py": runtime},
    )
    return env


def test_environment_imports_its_wheels_and_runtime_files(built: Path) -> None:
    result = run_python(
        built,
        "import alpha, gamma, gamma_native, photonpack.serving as s, sys;"
        "print(gamma.VALUE, gamma_native.NATIVE, s.SERVING, sys.prefix)",
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"3 True yes {built}\n"


def test_environment_does_not_see_host_site_packages(built: Path) -> None:
    # pytest is installed in the host's venv, not in the photon's environment.
    result = run_python(built, "import pytest")
    assert result.returncode == 1
    assert result.stderr.strip().endswith("ModuleNotFoundError: No module named 'pytest'")
    paths = run_python(built, "import sys; print('\\n'.join(sys.path))").stdout.split()
    assert str(built / SITE) in paths
    assert not [p for p in paths if "site-packages" in p and not p.startswith(str(built))]


def test_console_script_and_data_scripts_run(built: Path) -> None:
    cli = subprocess.run(
        [str(built / "bin" / "alpha-cli")], capture_output=True, text=True, check=False
    )
    assert (cli.returncode, cli.stdout, cli.stderr) == (0, "alpha says hi\n", "")
    tool = subprocess.run(
        [str(built / "bin" / "gamma-tool")], capture_output=True, text=True, check=False
    )
    assert (tool.returncode, tool.stdout, tool.stderr) == (0, "tool 3\n", "")
    assert (built / "bin" / "gamma-tool").read_text().startswith("#!/bin/sh\n'''exec' ")
    assert stat.S_IMODE((built / "bin" / "alpha-cli").stat().st_mode) & 0o111 == 0o111


def test_data_schemes_land_in_headers_and_data(built: Path) -> None:
    assert (built / "include/site/python3.11/gamma/gamma.h").read_text() == "int gamma(void);\n"
    assert (built / "share/gamma/notes.txt").read_text() == "notes\n"


def test_every_python_file_has_an_unchecked_hash_pyc(built: Path) -> None:
    site = built / SITE
    sources = sorted(site.rglob("*.py"))
    assert [p.relative_to(site).as_posix() for p in sources] == [
        "alpha/__init__.py", "gamma/__init__.py", "gamma_native.py", "photonpack/serving.py",
    ]  # fmt: skip
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{TAG}.pyc"
        header = pyc.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        assert flags == 0b01, pyc  # hash-based, check_source off
        assert str(built).encode() not in pyc.read_bytes()


def test_record_lists_every_installed_file_with_its_hash(built: Path) -> None:
    site = built / SITE
    listed: set[Path] = set()
    for record in sorted(site.glob("*.dist-info/RECORD")):
        rows = list(csv.reader(record.read_text().splitlines()))
        assert rows[-1] == [record.relative_to(site).as_posix(), "", ""]
        for path, digest, size in rows[:-1]:
            data = (site / path).read_bytes()
            assert (digest, int(size)) == (record_hash(data), len(data)), path
            listed.add((site / path).resolve())
        assert (record.parent / "INSTALLER").read_text() == "photonpack\n"
    installed = {p.resolve() for p in built.rglob("*") if p.is_file() and not p.is_symlink()} - {
        built / "pyvenv.cfg"
    }
    # Every file is listed, photonpack's runtime files too (in photonpack-0.dist-info).
    assert installed - listed == set(site.glob("*.dist-info/RECORD"))
    assert site / "photonpack/serving.py" in listed


def test_environment_works_after_rename_and_names_no_build_path(
    built: Path, tmp_path: Path
) -> None:
    import shutil

    temp = tmp_path / "tmp-build-dir"
    shutil.copytree(built, temp, symlinks=True)
    final = tmp_path / "final"
    temp.rename(final)
    for path in final.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert str(built).encode() not in path.read_bytes(), path
    result = run_python(final, "import sys, gamma; print(sys.prefix, gamma.__file__)")
    assert result.stdout == f"{final} {final / SITE / 'gamma/__init__.py'}\n"
    cli = subprocess.run(
        [str(final / "bin" / "alpha-cli")], capture_output=True, text=True, check=False
    )
    assert cli.stdout == "alpha says hi\n"


def test_tracebacks_name_the_real_source_path(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path, "boom", "1.0", files={"boom.py": "def go():\n    raise KeyError(1)\n"}
    )
    create_environment(tmp_path / "env", wheels=[wheel])
    result = run_python(tmp_path / "env", "import boom; boom.go()")
    assert f'File "{tmp_path / "env" / SITE / "boom.py"}", line 2, in go' in result.stderr


def test_warm_import_uses_the_precompiled_bytecode(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "warm", "1.0")
    env = tmp_path / "env"
    create_environment(env, wheels=[wheel])
    # The environment is immutable: an unchecked-hash pyc is loaded without reading the source.
    (env / SITE / "warm/__init__.py").write_text("raise SystemExit('source was compiled')\n")
    result = run_python(env, "import warm; print(warm.VERSION)")
    assert (result.stdout, result.stderr) == ("1.0\n", "")


def test_test_suites_inside_packages_get_no_pyc_but_still_import(tmp_path: Path) -> None:
    files = {
        "suite/__init__.py": "VERSION = '1.0'\n",
        "suite/testing.py": "HELPER = True\n",
        "suite/tests/__init__.py": "",
        "suite/tests/test_it.py": "OK = 'yes'\n",
        "suite/sub/test/check.py": "OK = 'also'\n",
    }
    wheel = build_wheel(tmp_path, "suite", "1.0", files=files)
    env = tmp_path / "env"
    create_environment(env, wheels=[wheel])
    site = env / SITE
    assert sorted(p.relative_to(site).as_posix() for p in site.rglob("*.pyc")) == [
        f"suite/__pycache__/__init__.{TAG}.pyc", f"suite/__pycache__/testing.{TAG}.pyc",
    ]  # fmt: skip
    result = run_python(
        env, "import suite.tests.test_it as t, suite.sub.test.check as c; print(t.OK, c.OK)"
    )
    assert (result.stdout, result.stderr) == ("yes also\n", "")


def test_environment_without_bytecode_has_no_pyc(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "plain", "1.0")
    create_environment(tmp_path / "env", wheels=[wheel], compile_bytecode=False)
    assert not list((tmp_path / "env").rglob("*.pyc"))
    assert run_python(tmp_path / "env", "import plain; print(plain.VERSION)").stdout == "1.0\n"


def test_real_pip_wheel_installs_and_runs(tmp_path: Path) -> None:
    (wheel,) = (Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl")
    env = tmp_path / "env"
    create_environment(env, wheels=[wheel])
    version = wheel.name.split("-")[1]
    result = subprocess.run(
        [str(env / "bin" / "pip"), "--version"], capture_output=True, text=True, check=False
    )
    assert result.stdout.startswith(f"pip {version} from {env / SITE / 'pip'} ")
    check = subprocess.run(
        [str(env / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert check.stdout == f"pip=={version}\n"


def test_identical_file_shared_by_two_wheels_is_installed_once(tmp_path: Path) -> None:
    shared = {"ns/__init__.py": "# shared namespace\n"}
    one = build_wheel(tmp_path, "one", "1.0", files={**shared, "ns/one.py": "X = 1\n"})
    two = build_wheel(tmp_path, "two", "1.0", files={**shared, "ns/two.py": "X = 2\n"})
    create_environment(tmp_path / "env", wheels=[one, two])
    result = run_python(tmp_path / "env", "import ns.one, ns.two; print(ns.one.X + ns.two.X)")
    assert result.stdout == "3\n"


def test_wheels_installing_different_content_at_one_path_are_refused(tmp_path: Path) -> None:
    one = build_wheel(tmp_path, "one", "1.0", files={"clash.py": "X = 1\n"})
    two = build_wheel(tmp_path, "two", "1.0", files={"clash.py": "X = 2\n"})
    with pytest.raises(InstallError) as info:
        create_environment(tmp_path / "env", wheels=[two, one])
    assert str(info.value) == (
        f"wheels one-1.0-py3-none-any.whl and two-1.0-py3-none-any.whl both install "
        f"{SITE}/clash.py with different content; a photon cannot depend on both. Remove one "
        "of them from the requirements and lock again."
    )
    assert not (tmp_path / "env").exists()


def test_existing_destination_is_refused(tmp_path: Path) -> None:
    (tmp_path / "env").mkdir()
    with pytest.raises(InstallError) as info:
        create_environment(tmp_path / "env", wheels=[])
    assert str(info.value) == (
        f"cannot create an environment at {tmp_path / 'env'}: something is already there. "
        "Environments are always built fresh; remove it or pick another path."
    )


def test_unwritable_destination_is_an_environment_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(InstallError) as info:
        create_environment(tmp_path / "file" / "env", wheels=[])
    assert str(info.value) == (
        f"cannot create the environment at {tmp_path / 'file' / 'env'}: Not a directory "
        f"({tmp_path / 'file' / 'env' / SITE}). Check that the disk has free space and the "
        "directory is writable, or set PHOTONPACK_HOME to another place."
    )


def test_full_disk_is_an_environment_error_and_leaves_nothing(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes write() fail with EFBIG, as a full disk fails with ENOSPC.
    wheel = build_wheel(tmp_path, "big", "1.0", files={"big/blob.bin": b"\0" * 200_000})
    code = f"""
import resource, signal
from pathlib import Path
from photonpack.install.installer import create_environment
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    create_environment(Path({str(tmp_path / "env")!r}), wheels=[Path({str(wheel)!r})])
except Exception as exc:
    print(type(exc).__name__, exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout == (
        f"InstallError cannot create the environment at {tmp_path / 'env'}: File too large "
        f"({tmp_path / 'env' / SITE / 'big/blob.bin'}). Check that the disk has free space and "
        "the directory is writable, or set PHOTONPACK_HOME to another place.\n"
    )
    assert not (tmp_path / "env").exists()


def test_runtime_file_outside_site_packages_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("")
    with pytest.raises(InstallError) as info:
        create_environment(
            tmp_path / "env", wheels=[], runtime_files={"../x.py": tmp_path / "f.py"}
        )
    assert (
        str(info.value) == "runtime file path '../x.py' is not a relative path inside site-packages"
    )
    assert not (tmp_path / "env").exists()


def test_incompatible_wheel_is_refused_naming_its_tags(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "native", "1.0", tag="cp27-cp27m-win_amd64")
    with pytest.raises(InstallError) as info:
        create_environment(tmp_path / "env", wheels=[wheel])
    assert str(info.value) == (
        f"wheel native-1.0-cp27-cp27m-win_amd64.whl is built for cp27-cp27m-win_amd64, which "
        f"{interpreter_id()} cannot run. Build the photon for this machine's target (photonpack "
        "targets name interpreter and platform, e.g. cp311-manylinux_2_28_x86_64)."
    )
    assert not (tmp_path / "env").exists()


def _member_data(name: str, data: bytes) -> Callable[[dict[str, bytes]], None]:
    def edit(contents: dict[str, bytes]) -> None:
        contents[name] = data

    return edit


def _drop(name: str) -> Callable[[dict[str, bytes]], None]:
    def edit(contents: dict[str, bytes]) -> None:
        del contents[name]

    return edit


FLIPPED = record_hash(b"VERSION = '1.1'\n").removeprefix("sha256=")
CASES = {
    "flipped_byte": (
        _member_data("evil/__init__.py", b"VERSION = '1.1'\n"),
        {},
        "member evil/__init__.py has sha256 " + FLIPPED + ", but RECORD says ",
    ),
    "size_mismatch": (
        _member_data("evil/__init__.py", b"VERSION = '1.0' \n"),
        {},
        "member evil/__init__.py is 17 bytes but evil-1.0.dist-info/RECORD says 16",
    ),
    "unlisted_member": (
        _member_data("evil/extra.py", b""),
        {},
        "member evil/extra.py is not listed in evil-1.0.dist-info/RECORD",
    ),
    "listed_but_missing": (
        _drop("evil/__init__.py"),
        {},
        "evil-1.0.dist-info/RECORD lists evil/__init__.py, which the wheel does not hold",
    ),
    "path_traversal": (
        _member_data("evil/../../escape.py", b""),
        {},
        "member 'evil/../../escape.py' is not a safe relative path",
    ),
    "absolute_path": (
        _member_data("/etc/evil.py", b""),
        {},
        "member '/etc/evil.py' is not a safe relative path",
    ),
    "symlink_member": (
        _member_data("evil/link", b"/etc/passwd"),
        {"evil/link": stat.S_IFLNK | 0o777},
        "member evil/link is not a regular file",
    ),
    "missing_record": (
        _drop("evil-1.0.dist-info/RECORD"),
        {},
        "evil-1.0.dist-info/RECORD is missing",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_untrustworthy_wheel_is_refused_naming_the_member(tmp_path: Path, case: str) -> None:
    edit, modes, reason = CASES[case]
    good = build_wheel(tmp_path, "good", "1.0")
    wheel = rewrite(build_wheel(tmp_path, "evil", "1.0"), edit, modes=modes)
    with pytest.raises(IntegrityError) as info:
        create_environment(tmp_path / "env", wheels=[good, wheel])
    message = str(info.value)
    assert message.startswith(f"wheel evil-1.0-py3-none-any.whl cannot be trusted: {reason}")
    assert message.endswith(f". {TRUST}")
    assert info.value.exit_code == 3
    assert not (tmp_path / "env").exists()
    assert not (tmp_path / "escape.py").exists()


def _break_deflate(wheel: Path, member: str) -> None:
    """Make the member's deflate stream start with a reserved block type (BTYPE 11)."""
    with zipfile.ZipFile(wheel) as zf:
        offset = zf.getinfo(member).header_offset
    data = bytearray(wheel.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[offset + 26 : offset + 30])
    data[offset + 30 + name_length + extra_length] = 0xFF
    wheel.write_bytes(data)


# Members are inflated by zlib-ng where it is installed, else by the standard zlib
# (an interpreter zlib-ng has no wheel for): both paths, each in a fresh interpreter.
INFLATERS = {"zlib-ng": "", "zlib": "import sys\nsys.modules['zlib_ng'] = None\n"}
INSTALL_BOTH = """
import sys
from pathlib import Path
from photonpack.errors import IntegrityError
from photonpack.install.installer import create_environment
create_environment(Path(sys.argv[1]), wheels=[Path(sys.argv[2])])
try:
    create_environment(Path(sys.argv[3]), wheels=[Path(sys.argv[4])])
except IntegrityError as exc:
    print(exc)
print("zlib-ng" if sys.modules.get("zlib_ng") else "zlib")
"""


@pytest.mark.parametrize("inflater", sorted(INFLATERS))
def test_each_inflater_installs_and_refuses_a_broken_deflate_stream(
    tmp_path: Path, inflater: str
) -> None:
    good = build_wheel(tmp_path / "good", "plain", "1.0", files={"plain.py": "VERSION = '1.0'\n"})
    bad = build_wheel(tmp_path / "bad", "plain", "1.0", files={"plain.py": "VERSION = '1.0'\n"})
    _break_deflate(bad, "plain.py")
    env, refused = tmp_path / "env", tmp_path / "refused"
    result = subprocess.run(
        [sys.executable, "-c", INFLATERS[inflater] + INSTALL_BOTH, env, good, refused, bad],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout == (
        "wheel plain-1.0-py3-none-any.whl cannot be trusted: member plain.py is not valid "
        f"deflate data. {TRUST}\n{inflater}\n"
    )
    assert run_python(env, "import plain; print(plain.VERSION)").stdout == "1.0\n"
    assert not refused.exists()


def test_truncated_wheel_is_refused(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "cut", "1.0")
    wheel.write_bytes(wheel.read_bytes()[:-40])
    with pytest.raises(IntegrityError) as info:
        create_environment(tmp_path / "env", wheels=[wheel])
    assert str(info.value) == (
        "wheel cut-1.0-py3-none-any.whl cannot be trusted: it is not a valid zip archive "
        f"(File is not a zip file). {TRUST}"
    )
    assert not (tmp_path / "env").exists()


def test_sync_filesystem_flushes_or_says_which_path_failed(tmp_path: Path) -> None:
    from photonpack._fs import sync_filesystem

    (tmp_path / "f").write_bytes(b"x")
    sync_filesystem(tmp_path)  # syncfs(2) on Linux: no error on a real directory
    with pytest.raises(FileNotFoundError):
        sync_filesystem(tmp_path / "missing")
