"""Command lines that used to print a traceback or a misleading exit: one proper line each.

Index URLs pip cannot reach, photon sources that are not UTF-8, photons that
exit while they are imported, and archives that cannot be read: each case
asserts the exit code, the exact message and that nothing was written.
"""

from __future__ import annotations

import errno
import io
import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import reader
from photonpack.cli import cli
from photonpack.lock.declaration import read_declaration
from photonpack.serving.source import parse_spec
from tests.support.index import PackageIndex, add_serving_stack

TARGET = "cp311-manylinux_2_28_x86_64"
SCHEMES = "expected an http://, https:// or file:// URL"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("cli-faults-index")).start()
    add_serving_stack(served)
    served.add("beta", "2.0")
    yield served
    served.stop()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="photonpack")


def photon_file(directory: Path, source: bytes | str, name: str = "svc.py") -> Path:
    path = directory / name
    path.write_bytes(source.encode() if isinstance(source, str) else source)
    return path


LITERAL = (
    'from photonpack import Photon\n\nclass Svc(Photon):\n    requirement_dependency = ["beta"]\n'
)

# -- index locations --------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--index-url", "ftp://mirror/simple", f"it has the scheme ftp://; {SCHEMES}"),
        ("--index-url", "http://[::1", "it is not a valid URL (Invalid IPv6 URL)"),
        ("--index-url", "mirror.local/simple", f"it has no scheme; {SCHEMES}"),
        ("--index-url", "https:///simple", "it names no host"),
        ("--extra-index-url", "http://[::1", "it is not a valid URL (Invalid IPv6 URL)"),
        ("--find-links", "http://h:99999/", "it is not a valid URL (Port out of range 0-65535)"),
        ("--find-links", "gopher://h/", f"it has the scheme gopher://; {SCHEMES}"),
    ],
)
@pytest.mark.parametrize("command", ["lock", "build"])
def test_an_unusable_index_location_is_a_usage_error_before_anything_runs(
    tmp_path: Path, command: str, option: str, value: str, problem: str
) -> None:
    photon = photon_file(tmp_path, LITERAL)
    result = run(command, "-m", str(photon), option, value)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: Invalid value for '{option}': {value!r}: {problem} "
        f"(see 'photonpack {command} --help')\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.py"]


def test_a_find_links_directory_is_not_a_url_to_check(index: PackageIndex, tmp_path: Path) -> None:
    photon = photon_file(tmp_path, LITERAL)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    result = run(
        "lock", "-m", str(photon), "--index-url", index.url, "--find-links", str(wheels),
        "--target", TARGET,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


# -- photon sources that are not UTF-8 ---------------------------------------------


@pytest.mark.parametrize(
    ("source", "where", "byte", "column"),
    [
        (LITERAL.replace('"beta"', '"caf\xe9"').encode("latin-1"), 4, "e9", 35),
        (LITERAL.encode("utf-16"), 1, "ff", 1),
        (b"# caf\xe9\n" + LITERAL.encode(), 1, "e9", 6),
    ],
    ids=["latin-1-literal", "utf-16", "latin-1-comment"],
)
@pytest.mark.parametrize("command", ["lock", "build"])
def test_a_source_that_is_not_utf8_is_named_with_its_line_and_byte(
    index: PackageIndex,
    tmp_path: Path,
    command: str,
    source: bytes,
    where: int,
    byte: str,
    column: int,
) -> None:
    photon = photon_file(tmp_path, source)
    result = run(command, "-m", str(photon), "--index-url", index.url, "--target", TARGET)
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {photon}:{where}: the photon's source is not UTF-8: byte 0x{byte} at "
        f"column {column} cannot be decoded; save the file as UTF-8, the encoding of "
        "Python source\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.py"]


def test_a_source_declaring_its_encoding_is_read_in_it(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\n" + LITERAL.replace('"beta"', '"caf\xe9"')
    photon = photon_file(tmp_path, source.encode("latin-1"))
    declaration = read_declaration(parse_spec(str(photon)))
    assert declaration.requirement_dependency == ("caf\xe9",)


def test_an_unknown_declared_encoding_is_named(tmp_path: Path) -> None:
    photon = photon_file(tmp_path, "# -*- coding: nosuch -*-\n" + LITERAL)
    result = run("lock", "-m", str(photon))
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {photon}: unknown encoding: nosuch: its coding declaration names no codec "
        "Python has; remove the declaration and save the file as UTF-8\n",
    )


# -- photons that exit while imported -----------------------------------------------

# requirement_dependency is not a literal: lock imports the photon in its own process.
IMPORTED = (
    "import os, sys\nfrom photonpack import Photon\n{exit}\n\n"
    'class Svc(Photon):\n    requirement_dependency = ["be" + "ta"]\n'
)


@pytest.mark.parametrize(
    ("call", "said"),
    [
        ("sys.exit(3)", "exit code 3: sys.exit or os._exit"),
        ("os._exit(0)", "exit code 0: sys.exit or os._exit"),
        ("sys.exit('bye')", "sys.exit('bye')"),
    ],
)
@pytest.mark.parametrize("command", ["lock", "build"])
def test_a_photon_exiting_at_import_during_lock_is_an_error_not_an_exit(
    index: PackageIndex, tmp_path: Path, command: str, call: str, said: str
) -> None:
    original = os._exit
    photon = photon_file(tmp_path, IMPORTED.format(exit=call))
    result = run(command, "-m", str(photon), "--index-url", index.url, "--target", TARGET)
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: the photon {photon} exited during import ({said} in its module code); "
        "photonpack imports it to read its declared attributes: move that call under "
        '`if __name__ == "__main__":` or into init()\n',
    )
    assert os._exit is original
    assert not list(tmp_path.glob("pylock.*")) and not list(tmp_path.glob("*.photon"))


EXITING = (
    "import os, sys\nfrom photonpack import Photon\n{exit}\n\n"
    "class Svc(Photon):\n    requirement_dependency = []\n"
)


@pytest.mark.parametrize(
    ("call", "code"), [("sys.exit(3)", 3), ("os._exit(0)", 0), ("sys.exit(1)", 1)]
)
def test_a_photon_exiting_at_import_during_build_writes_no_archive(
    real_index: PackageIndex, tmp_path: Path, call: str, code: int
) -> None:
    photon = photon_file(tmp_path, EXITING.format(exit=call))
    archive = tmp_path / "svc.photon"
    result = run("build", "-m", str(photon), "--index-url", real_index.url, "-o", str(archive))
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: the photon svc.py:Svc exited during import (exit code {code}: sys.exit or "
        "os._exit in its module code), so its handler contract cannot be read; move that "
        'call under `if __name__ == "__main__":` or into init()\n',
    )
    assert not archive.exists()


def test_a_photon_printing_at_import_still_builds(real_index: PackageIndex, tmp_path: Path) -> None:
    source = EXITING.format(exit='print("hello")\nprint("{}")')
    photon = photon_file(tmp_path, source)
    archive = tmp_path / "svc.photon"
    result = run("build", "-m", str(photon), "--index-url", real_index.url, "-o", str(archive))
    assert result.exit_code == 0, result.output
    assert run("verify", str(archive)).exit_code == 0


# -- archives that cannot be read ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("verify", "/proc/self/mem"),
        ("inspect", "/proc/self/mem"),
        ("sbom", "/proc/self/mem"),
        ("diff", "/proc/self/mem", "/proc/self/mem"),
        ("push", "/proc/self/mem", "127.0.0.1:9/photons/svc:1"),
    ],
    ids=lambda args: args[0],
)
def test_a_file_the_kernel_cannot_read_is_named(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert (result.exit_code, result.stderr) == (
        1,
        "error: cannot read /proc/self/mem: Input/output error\n",
    )


class _FailingFile(io.FileIO):
    """A real file that fails as a dying disk would, after its first mebibyte."""

    def readinto(self, buffer: Any) -> int:
        if self.tell() >= 1 << 20:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return super().readinto(buffer)


@pytest.mark.parametrize("command", ["verify", "push"])
def test_a_read_error_in_the_middle_of_an_archive_is_named(
    counter_archive: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    request: pytest.FixtureRequest,
) -> None:
    assert counter_archive.stat().st_size > 2 << 20
    monkeypatch.setattr(reader, "io", types.SimpleNamespace(FileIO=_FailingFile))
    args = [command, str(counter_archive)]
    if command == "push":  # push asks the registry what it lacks, then reads the file
        args.append(f"{request.getfixturevalue('registry').host}/faults/svc:1")
    result = run(*args)
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: cannot read {counter_archive}: Input/output error\n",
    )
