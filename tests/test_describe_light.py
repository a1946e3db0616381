"""`build` describes a photon without its biggest wheels unless its import reaches them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from photonpack.archive.reader import read_manifest
from photonpack.install.leftout import LEAVE_OUT_BYTES, leave_out
from photonpack.store import Store
from tests.support.index import PackageIndex
from tests.support.stack import build_photon, write_photon
from tests.support.wheels import build_big_wheel, build_wheel

HEAVY = "ppheavy"  # a name no other test's index uses: the index is shared by the session


@pytest.fixture(scope="module")
def heavy_index(real_index: PackageIndex) -> PackageIndex:
    """``real_index`` with ``ppheavy`` 1.0: a wheel big enough to be left out, with a plugin."""
    wheel = build_big_wheel(real_index.files_dir, HEAVY, "1.0", LEAVE_OUT_BYTES + (1 << 20))
    assert wheel.stat().st_size >= LEAVE_OUT_BYTES
    return real_index


def _photon(tmp_path: Path, top: str, init: str = "pass") -> Path:
    body = textwrap.dedent(
        f"""
        from photonpack import Photon

        class Heavy(Photon):
            requirement_dependency = ["{HEAVY}"]

            def init(self):
                {init}

            @Photon.handler
            def version(self) -> str:
                import {HEAVY}
                return {HEAVY}.VERSION
        """
    )
    return write_photon(tmp_path / "src", top + "\n" + body, name="heavy.py")


def _handlers(archive: Path) -> list[str]:
    return [handler.name for handler in read_manifest(archive).handlers]


def _envs_with_heavy(home: Path) -> list[Path]:
    return sorted(home.glob(f"envs/*/lib/python*/site-packages/{HEAVY}"))


def test_a_photon_importing_its_big_wheel_in_init_is_described_without_it(
    heavy_index: PackageIndex, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    photon = _photon(tmp_path, "", init=f"import {HEAVY}")
    built = build_photon(heavy_index, photon, tmp_path / "h.photon", store=Store(home))
    assert _handlers(built.path) == ["version"]
    assert _envs_with_heavy(home) == []  # the 9 MiB wheel was not installed to describe it


def test_a_photon_importing_its_big_wheel_at_import_gets_it_installed(
    heavy_index: PackageIndex, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    photon = _photon(tmp_path, f"import {HEAVY}\nassert {HEAVY}.VERSION == '1.0'")
    built = build_photon(heavy_index, photon, tmp_path / "h.photon", store=Store(home))
    assert _handlers(built.path) == ["version"]
    assert len(_envs_with_heavy(home)) == 1


def test_a_caught_import_of_a_wheel_left_out_still_sees_it(
    heavy_index: PackageIndex, tmp_path: Path
) -> None:
    # A photon that falls back when its library is missing must be described as it
    # will run, with the library: the handler it defines only then is in the contract.
    photon = write_photon(
        tmp_path / "src",
        f"""
        from photonpack import Photon
        try:
            import {HEAVY}
        except ImportError:
            {HEAVY} = None

        class Heavy(Photon):
            requirement_dependency = ["{HEAVY}"]

            if {HEAVY} is not None:
                @Photon.handler
                def accelerated(self) -> str:
                    return "yes"

            @Photon.handler
            def plain(self) -> str:
                return "no"
        """,
        name="heavy.py",
    )
    built = build_photon(heavy_index, photon, tmp_path / "h.photon", store=Store(tmp_path / "h"))
    assert sorted(_handlers(built.path)) == ["accelerated", "plain"]


def test_metadata_of_a_wheel_left_out_reads_as_installed(
    heavy_index: PackageIndex, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    photon = _photon(
        tmp_path,
        "import importlib.metadata as md\n"
        f"assert md.version('{HEAVY}') == '1.0', md.version('{HEAVY}')\n"
        f"assert md.distribution('{HEAVY}').read_text('INSTALLER') == 'photonpack\\n'\n"
        f"assert '{HEAVY}' in {{d.metadata['Name'] for d in md.distributions()}}\n",
    )
    built = build_photon(heavy_index, photon, tmp_path / "h.photon", store=Store(home))
    assert _handlers(built.path) == ["version"]
    assert _envs_with_heavy(home) == []


def test_a_photon_failing_to_import_fails_as_it_does_with_every_wheel(
    heavy_index: PackageIndex, tmp_path: Path
) -> None:
    from photonpack.errors import BuildError

    photon = _photon(tmp_path, "raise RuntimeError('no GPU here')")
    with pytest.raises(BuildError, match="fails to load in its locked environment"):
        build_photon(heavy_index, photon, tmp_path / "h.photon", store=Store(tmp_path / "home"))
    assert not (tmp_path / "h.photon").exists()


HEAVIER = "ppheavier"  # a big wheel needing a small one, ``pphelper``, that only it imports
HELPER = "pphelper"
HOOK = "pphook"  # what only ppheavier needs too, with a .pth: kept in, it runs at every start


@pytest.fixture(scope="module")
def heavier_index(real_index: PackageIndex) -> PackageIndex:
    build_wheel(real_index.files_dir, HELPER, "1.0")
    build_wheel(real_index.files_dir, HOOK, "1.0", files={f"{HOOK}.pth": "import os\n"})
    build_big_wheel(
        real_index.files_dir,
        HEAVIER,
        "1.0",
        LEAVE_OUT_BYTES + (1 << 20),
        requires=[HELPER, HOOK],
    )
    return real_index


def _heavier(tmp_path: Path, top: str) -> Path:
    body = f"""
        from photonpack import Photon

        class Heavier(Photon):
            requirement_dependency = ["{HEAVIER}"]

            @Photon.handler
            def helped(self) -> str:
                import {HELPER}
                return {HELPER}.VERSION
        """
    return write_photon(tmp_path / "src", top + "\n" + textwrap.dedent(body), name="heavier.py")


def _envs_with(home: Path, module: str) -> list[Path]:
    return sorted(home.glob(f"envs/*/lib/python*/site-packages/{module}"))


def test_a_small_wheel_only_a_big_one_needs_is_left_out_with_it(
    heavier_index: PackageIndex, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    built = build_photon(
        heavier_index, _heavier(tmp_path, ""), tmp_path / "h.photon", store=Store(home)
    )
    assert _handlers(built.path) == ["helped"]
    assert sorted(w.name for w in read_manifest(built.path).wheels if "pph" in w.name) == [
        HEAVIER,
        HELPER,
        HOOK,
    ]  # all are in the archive; neither of the first two was installed to describe it
    assert _envs_with(home, HELPER) == [] and _envs_with(home, HEAVIER) == []
    # one environment, made while the big wheel downloaded, the .pth wheel in it
    assert [p.name for p in home.glob("envs/*/lib/python*/site-packages/*.pth")] == [f"{HOOK}.pth"]
    assert len(list(home.glob("envs/*/pyvenv.cfg"))) == 1


def test_a_photon_importing_what_its_big_wheel_needs_gets_it_and_its_needs(
    heavier_index: PackageIndex, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    top = f"import {HELPER}\nassert {HELPER}.VERSION == '1.0'"
    built = build_photon(
        heavier_index, _heavier(tmp_path, top), tmp_path / "h.photon", store=Store(home)
    )
    assert _handlers(built.path) == ["helped"]
    assert len(_envs_with(home, HELPER)) == 1 and _envs_with(home, HEAVIER) == []
    top = f"import {HEAVIER}\nimport {HELPER}"  # the big one is asked for: what it needs too
    home = tmp_path / "again"
    built = build_photon(
        heavier_index, _heavier(tmp_path, top), tmp_path / "i.photon", store=Store(home)
    )
    assert _handlers(built.path) == ["helped"]
    assert len(_envs_with(home, HEAVIER)) == 1 and len(_envs_with(home, HELPER)) == 1


def test_a_namespace_shared_with_a_small_wheel_leaves_both_out(tmp_path: Path) -> None:
    big = build_big_wheel(tmp_path, "ns-big", "1.0", 2 << 20)
    small = build_wheel(tmp_path, "ns-small", "1.0", files={"ns_big/small.py": "X = 1\n"})
    pth = build_wheel(tmp_path, "hook", "1.0", files={"hook.pth": "import os\n"})
    wheels = [
        ("a" * 64, big.name, big.stat().st_size, big),
        ("b" * 64, small.name, small.stat().st_size, small),
        ("c" * 64, pth.name, pth.stat().st_size, pth),
    ]
    left = leave_out(wheels, min_bytes=1 << 20)
    assert sorted(w.filename for w in left.values()) == sorted([big.name, small.name])
    assert left["a" * 64].modules == frozenset({"ns_big"})
    assert left["a" * 64].name == "ns_big"
    # a .pth wheel sharing the namespace keeps it in: its hook runs at every start
    hooked = build_wheel(tmp_path / "h", "ns-hook", "1.0", files={"ns_big/h.pth": "", "x.pth": ""})
    wheels.append(("d" * 64, hooked.name, hooked.stat().st_size, hooked))
    assert leave_out(wheels, min_bytes=1 << 20) == {}


def test_the_describe_boot_imports_the_standard_library_only() -> None:
    # describe_boot runs before site: it may import the standard library only.
    source = (Path(__file__).parent.parent / "photonpack/serving/describe_boot.py").read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and "__future__" not in line
    }
    stdlib = {"importlib", "json", "os", "pathlib", "re", "site", "sys", "typing", "zipfile"}
    assert imports <= stdlib
