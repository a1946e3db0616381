"""Reading a photon's declared dependencies without importing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from photonpack.errors import PhotonDefinitionError, PhotonSourceError
from photonpack.lock.declaration import Declaration, read_declaration
from photonpack.serving.source import parse_spec
from tests.support.modules import write

pytestmark = pytest.mark.usefixtures("clean_modules")


def test_literals_are_read_without_importing_the_photon(tmp_path: Path) -> None:
    write(
        tmp_path,
        "model.py",
        """
        import torch_that_is_not_installed
        from photonpack import Photon

        class Model(Photon):
            requirement_dependency = ["numpy>=2", "torch; platform_machine == 'x86_64'"]
            system_dependency = ["wget"]
            extra_files = {"data/model.bin": "model.bin"}
            image: str = "python:3.11-slim"
        """,
    )
    assert read_declaration(parse_spec("model.py", root=tmp_path)) == Declaration(
        class_name="Model",
        requirement_dependency=("numpy>=2", "torch; platform_machine == 'x86_64'"),
        system_dependency=("wget",),
        extra_files=(("data/model.bin", "model.bin"),),
        image="python:3.11-slim",
    )


def test_attributes_are_inherited_from_photons_in_the_same_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        "two.py",
        """
        import photonpack

        class Base(photonpack.Photon):
            requirement_dependency = ["numpy"]
            image = "base:1"

        class Child(Base):
            image = "child:1"
        """,
    )
    declaration = read_declaration(parse_spec("two.py:Child", root=tmp_path))
    assert declaration.requirement_dependency == ("numpy",)
    assert declaration.image == "child:1"


def test_lepton_photon_base_is_recognised(tmp_path: Path) -> None:
    write(
        tmp_path,
        "lep.py",
        """
        from leptonai.photon import Photon

        class Old(Photon):
            requirement_dependency = ["requests"]
            extra_files = ["weights.txt"]
        """,
    )
    declaration = read_declaration(parse_spec("lep.py", root=tmp_path))
    assert declaration.class_name == "Old"
    assert declaration.requirement_dependency == ("requests",)
    assert declaration.extra_files == (("weights.txt", "weights.txt"),)


def test_module_spec_reads_the_module_file_under_root(tmp_path: Path) -> None:
    write(tmp_path, "pkg/__init__.py", "")
    write(
        tmp_path,
        "pkg/serve.py",
        """
        import not_installed_either
        from photonpack import Photon

        class Api(Photon):
            requirement_dependency = ["httpx"]
        """,
    )
    declaration = read_declaration(parse_spec("pkg.serve:Api", root=tmp_path))
    assert declaration.requirement_dependency == ("httpx",)


def test_several_photons_without_a_class_name_are_listed(tmp_path: Path) -> None:
    write(
        tmp_path,
        "many.py",
        """
        from photonpack import Photon
        class A(Photon): ...
        class B(Photon): ...
        """,
    )
    with pytest.raises(PhotonSourceError) as info:
        read_declaration(parse_spec("many.py", root=tmp_path))
    assert str(info.value) == "many.py defines several photons (A, B); name one, e.g. many.py:A"


def test_non_literal_value_falls_back_to_importing(tmp_path: Path) -> None:
    write(
        tmp_path,
        "computed.py",
        """
        from photonpack import Photon
        BASE = ["numpy"]

        class Computed(Photon):
            requirement_dependency = BASE + ["pandas"]
        """,
    )
    declaration = read_declaration(parse_spec("computed.py", root=tmp_path))
    assert declaration.requirement_dependency == ("numpy", "pandas")


def test_file_without_photon_reports_the_loader_error(tmp_path: Path) -> None:
    write(tmp_path, "empty.py", "x = 1\n")
    with pytest.raises(PhotonSourceError, match=r"empty\.py defines no Photon subclass"):
        read_declaration(parse_spec("empty.py", root=tmp_path))


def test_wrong_attribute_type_is_a_definition_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.py",
        """
        from photonpack import Photon

        class Bad(Photon):
            requirement_dependency = [1, 2]
        """,
    )
    with pytest.raises(PhotonDefinitionError) as info:
        read_declaration(parse_spec("bad.py", root=tmp_path))
    assert (
        str(info.value)
        == "bad.py:Bad: requirement_dependency must be a list of strings, got [1, 2]"
    )


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "broken.py", "class A(:\n")
    with pytest.raises(PhotonSourceError, match=r"broken.py:1: syntax error"):
        read_declaration(parse_spec("broken.py", root=tmp_path))
