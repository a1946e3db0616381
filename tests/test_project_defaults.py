"""``[tool.photonpack]`` of pyproject.toml: project defaults the command line beats."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from photonpack.archive import write_archive
from photonpack.cli import cli
from photonpack.cli.defaults import read_defaults
from photonpack.lock.lockfile import read_lock
from tests.support.index import PackageIndex, add_serving_stack
from tests.support.registry import Registry, stage_photon
from tests.test_lock_cli import write_photon

TARGET = "cp311-manylinux_2_28_x86_64"
OTHER = "cp312-manylinux_2_28_x86_64"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("defaults-index")).start()
    add_serving_stack(served)
    served.add("beta", "2.0")
    yield served
    served.stop()


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _pyproject(directory: Path, body: str) -> Path:
    path = directory / "pyproject.toml"
    path.write_text("[project]\nname = 'app'\n\n[tool.photonpack]\n" + textwrap.dedent(body))
    return path


def _photonpack_toml(directory: Path, body: str) -> Path:
    path = directory / "photonpack.toml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize("layout", ["pyproject", "photonpack.toml", "both"])
def test_lock_takes_index_and_targets_from_the_defaults_and_the_command_line_wins(
    index: PackageIndex, tmp_path: Path, layout: str
) -> None:
    photon = write_photon(tmp_path, ["beta"])
    index_line, targets_line = f'index-url = "{index.url}"\n', f'targets = ["{TARGET}"]\n'
    if layout == "pyproject":
        _pyproject(tmp_path, index_line + targets_line)
    elif layout == "photonpack.toml":
        _photonpack_toml(tmp_path, index_line + targets_line)
    else:  # merged: targets from pyproject only, index-url from both, the same value
        _pyproject(tmp_path, index_line + targets_line)
        _photonpack_toml(tmp_path, index_line)
    locked = _run("lock", "-m", str(photon))
    assert locked.exit_code == 0, locked.output
    lock = read_lock(tmp_path / "pylock.counter.toml")
    assert [str(t) for t in lock.targets] == [TARGET]
    assert lock.inputs.index.index_url == index.url
    assert _run("lock", "--check", "-m", str(photon)).exit_code == 0

    again = _run("lock", "-m", str(photon), "--target", OTHER)
    assert again.exit_code == 0, again.output
    assert [str(t) for t in read_lock(tmp_path / "pylock.counter.toml").targets] == [OTHER]


def test_find_links_are_relative_to_the_pyproject(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    _pyproject(tmp_path, 'find-links = ["wheels", "https://example.org/links.html"]\n')
    defaults = read_defaults(tmp_path)
    assert defaults.find_links == (str(tmp_path / "wheels"), "https://example.org/links.html")
    assert read_defaults(tmp_path / "nowhere").path is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            'index_url = "https://mirror.example.org/simple"\n',
            "[tool.photonpack] has an unknown key 'index_url'; the known keys are index-url, "
            "extra-index-url, find-links, targets, registry",
        ),
        ('targets = "cp311"\n', "tool.photonpack.targets must be a list of strings"),
        ("registry = 5\n", "tool.photonpack.registry must be a string"),
        ('index-url = "ftp://mirror"\n', "tool.photonpack.index-url 'ftp://mirror': "),
    ],
)
def test_a_bad_pyproject_default_is_one_line_naming_the_file_and_key(
    tmp_path: Path, body: str, says: str
) -> None:
    _refused(tmp_path, _pyproject, body, says)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("[tool.photonpack]\nregistry = 'r'\n",
         "write the keys at the top of photonpack.toml, without [tool.photonpack]"),
        ("index_url = 'https://m'\n",
         "it has an unknown key 'index_url'; the known keys are index-url, extra-index-url, "
         "find-links, targets, registry"),
        ("targets = 'cp311'\n", "targets must be a list of strings"),
        ("find-links = ['ftp://mirror']\n", "find-links 'ftp://mirror': "),
    ],
)  # fmt: skip
def test_a_bad_photonpack_toml_is_one_line_naming_the_file_and_key(
    tmp_path: Path, body: str, says: str
) -> None:
    _refused(tmp_path, _photonpack_toml, body, says)


def _refused(tmp_path: Path, write: Callable[[Path, str], Path], body: str, says: str) -> None:
    photon = write_photon(tmp_path, [])
    path = write(tmp_path, body)
    result = _run("lock", "-m", str(photon))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}: {says}")
    assert len(result.stderr.splitlines()) == 1


def test_push_without_ref_goes_to_the_pyproject_registry(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = stage_photon(tmp_path, "counter", [("alpha", "1.0")])
    archive = tmp_path / "counter.photon"
    with archive.open("wb") as out:
        write_archive(out, staged.manifest, staged.blob_path)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    missing = _run("push", str(archive))
    assert missing.exit_code == 2
    assert "REF may be left out when ./pyproject.toml [tool.photonpack] or ./photonpack.toml" in (
        missing.stderr
    )
    _pyproject(project, f'registry = "{registry.host}/defaults/"\n')
    pushed = _run("push", str(archive))
    assert pushed.exit_code == 0, pushed.output
    assert pushed.stderr.startswith(f"pushed {registry.host}/defaults/counter:latest: ")
    pulled = _run("pull", f"{registry.host}/defaults/counter:latest", "-o", str(tmp_path / "p"))
    assert pulled.exit_code == 0, pulled.output
    assert (tmp_path / "p").read_bytes() == archive.read_bytes()


def test_a_key_both_files_set_differently_is_one_line_naming_both(tmp_path: Path) -> None:
    photon = write_photon(tmp_path, [])
    pyproject = _pyproject(tmp_path, 'registry = "registry.example.org/team"\n')
    toml = _photonpack_toml(tmp_path, 'registry = "registry.example.org/other"\n')
    result = _run("lock", "-m", str(photon))
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {pyproject} and {toml} both set registry, to different values; "
        "keep it in one of them\n",
    )


def test_deploy_builds_for_the_default_registry_of_photonpack_toml(
    counter_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photonpack_home: Path
) -> None:
    from tests.support.images import write_base

    base = write_base(tmp_path / "base")
    monkeypatch.chdir(tmp_path)
    _photonpack_toml(tmp_path, 'registry = "registry.example.org:5000/team/"\n')
    result = _run(
        "deploy", str(counter_archive), "--base", f"oci:{base}", "--dry-run", "-o", "json"
    )
    assert result.exit_code == 0, result.output
    deployment = next(o for o in json.loads(result.stdout) if o["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("registry.example.org:5000/team/counter@sha256:")
    given = _run(
        "deploy", str(counter_archive), "--base", f"oci:{base}", "--registry",
        "registry.example.org:5000/elsewhere", "--dry-run", "-o", "json",
    )  # fmt: skip
    assert "registry.example.org:5000/elsewhere@sha256:" in given.stdout
