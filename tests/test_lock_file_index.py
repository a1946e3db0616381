"""Locking against a ``file://`` index: a wheel's METADATA member is read, not the whole wheel.

The lock's sha256 of such a wheel is its page's ``#sha256=`` fragment; the bytes
are checked by ``build``, which re-hashes every locked file.
"""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

from click.testing import CliRunner

from photonpack.cli import cli
from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, lock_photon
from photonpack.lock.target import Target
from photonpack.serving.source import PhotonSpec, parse_spec
from tests.support.index import PackageIndex, add_serving_stack
from tests.support.wheels import build_wheel

TARGET = Target.parse("cp311-manylinux_2_28_x86_64")


def _photon(directory: Path) -> PhotonSpec:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "svc.py").write_text(
        textwrap.dedent(
            """
            from photonpack import Photon

            class Svc(Photon):
                requirement_dependency = ["alpha"]
            """
        )
    )
    return parse_spec("svc.py", root=directory)


def _stack(root: Path) -> PackageIndex:
    index = PackageIndex(root)
    add_serving_stack(index)
    index.add("alpha", "1.0", requires=["beta>=2"])
    index.add("beta", "2.0")
    index.add("beta", "2.1")
    return index


def _locked(index_url: str, directory: Path) -> list[tuple[str, str, str, str, int]]:
    options = LockOptions(index=IndexSettings(index_url=index_url), targets=(TARGET,))
    lock = lock_photon(_photon(directory), options).lock
    return [(w.name, w.version, w.filename, w.sha256, w.size) for w in lock.wheels()]


def test_a_file_index_locks_what_the_same_index_served_over_http_does(tmp_path: Path) -> None:
    index = _stack(tmp_path / "index").start()
    try:
        over_http = _locked(index.url, tmp_path / "http")
    finally:
        index.stop()
    on_disk = _locked(index.write_pages(), tmp_path / "file")
    assert on_disk == over_http
    assert ("beta", "2.1") in [(name, version) for name, version, *_ in on_disk]
    for _, _, filename, sha256, size in on_disk:
        data = (index.files_dir / filename).read_bytes()
        assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_a_file_index_wheel_unlike_its_page_is_locked_by_the_page_and_refused_by_build(
    tmp_path: Path,
) -> None:
    index = _stack(tmp_path / "index")
    url = index.write_pages()
    honest = index.files_dir / "beta-2.1-py3-none-any.whl"
    published = hashlib.sha256(honest.read_bytes()).hexdigest()
    # Other bytes, the same METADATA: the lock reads only that member, so it takes the page's
    # digest; pip used to hash the whole file while locking.
    build_wheel(index.files_dir, "beta", "2.1", files={"beta/__init__.py": "EVIL = True\n"})
    assert hashlib.sha256(honest.read_bytes()).hexdigest() != published
    spec = _photon(tmp_path / "src")
    lock = lock_photon(spec, LockOptions(index=IndexSettings(index_url=url), targets=(TARGET,)))
    [beta] = [w for w in lock.lock.wheels() if w.name == "beta"]
    assert beta.sha256 == published
    args = ["-m", str(spec.path), "--index-url", url, "--target", str(TARGET)]
    result = CliRunner().invoke(
        cli,
        ["build", "--locked", *args, "-o", str(tmp_path / "svc.photon")],
        env={"PHOTONPACK_HOME": str(tmp_path / "home")},
    )
    assert result.exit_code == 3, result.output
    assert "beta-2.1-py3-none-any.whl" in result.stderr
    assert "does not match the lock" in result.stderr
    assert not (tmp_path / "svc.photon").exists()
