"""Loading a photon from source: file.py, file.py:Class, pkg.module:Class, and clear errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from photonpack.errors import PhotonDefinitionError, PhotonSourceError
from photonpack.serving.loader import load_photon
from photonpack.serving.photon import PhotonDefinitionWarning
from photonpack.serving.source import PhotonSpec, parse_spec
from tests.support.modules import write

ONE = """
from photonpack import Photon

class Echo(Photon):
    @Photon.handler
    def echo(self, text: str) -> str:
        return text
"""

pytestmark = pytest.mark.usefixtures("clean_modules")


def test_file_with_one_photon_loads_it(tmp_path: Path) -> None:
    write(tmp_path, "echo.py", ONE)
    cls: Any = load_photon(parse_spec("echo.py", root=tmp_path))
    assert cls.__name__ == "Echo"
    assert cls().echo(text="hi") == "hi"


def test_string_spec_is_parsed_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "echo.py", ONE)
    monkeypatch.chdir(tmp_path)
    assert load_photon("echo.py:Echo").__name__ == "Echo"


def test_sibling_modules_import(tmp_path: Path) -> None:
    write(tmp_path, "helper_mod_for_test.py", "VALUE = 41\n")
    write(
        tmp_path,
        "uses.py",
        """
        from helper_mod_for_test import VALUE
        from photonpack import Photon

        class Uses(Photon):
            @Photon.handler
            def value(self) -> int:
                return VALUE + 1
        """,
    )
    cls: Any = load_photon(parse_spec("uses.py", root=tmp_path))
    assert cls().value() == 42


def test_module_spec_loads_from_a_package(tmp_path: Path) -> None:
    write(tmp_path, "pkg_for_test/__init__.py", "")
    write(tmp_path, "pkg_for_test/service.py", ONE)
    cls = load_photon(parse_spec("pkg_for_test.service:Echo", root=tmp_path))
    assert cls.__module__ == "pkg_for_test.service"


def test_several_photons_need_a_name(tmp_path: Path) -> None:
    write(
        tmp_path,
        "two.py",
        ONE + "\nclass Other(Photon):\n    pass\n",
    )
    with pytest.raises(PhotonSourceError) as info:
        load_photon(parse_spec("two.py", root=tmp_path))
    assert str(info.value) == (
        f"two.py defines several photons (Echo, Other); name one, e.g. {tmp_path}/two.py:Echo"
    )
    assert load_photon(parse_spec("two.py:Other", root=tmp_path)).__name__ == "Other"


def test_imported_photons_are_not_counted(tmp_path: Path) -> None:
    write(tmp_path, "base_for_test.py", ONE)
    write(
        tmp_path,
        "child.py",
        """
        from base_for_test import Echo

        class Loud(Echo):
            pass
        """,
    )
    assert load_photon(parse_spec("child.py", root=tmp_path)).__name__ == "Loud"


def test_no_photon_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "none.py", "x = 1\n")
    with pytest.raises(PhotonSourceError) as info:
        load_photon(parse_spec("none.py", root=tmp_path))
    assert str(info.value) == (
        "none.py defines no Photon subclass; write `class MyPhoton(Photon): ...` in it, "
        "or name the class as file.py:Class"
    )


def test_named_class_that_is_missing_lists_the_photons(tmp_path: Path) -> None:
    write(tmp_path, "echo.py", ONE)
    with pytest.raises(PhotonSourceError) as info:
        load_photon(parse_spec("echo.py:Nope", root=tmp_path))
    assert str(info.value) == (
        f"{tmp_path}/echo.py:Nope: Nope is not defined in echo.py; available photons: Echo"
    )


def test_syntax_error_shows_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "from photonpack import Photon\n\ndef f(:\n    pass\n")
    with pytest.raises(PhotonSourceError) as info:
        load_photon(parse_spec("broken.py", root=tmp_path))
    assert str(info.value) == f"{path}:3: syntax error: invalid syntax\n    def f(:"


def test_missing_import_names_the_module_and_requirement_dependency(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "needs.py",
        """
        import numpy_not_installed_here
        from photonpack import Photon
        """,
    )
    with pytest.raises(PhotonSourceError) as info:
        load_photon(parse_spec("needs.py", root=tmp_path))
    assert str(info.value) == (
        f"needs.py imports numpy_not_installed_here, which is not installed here ({path}:2); "
        "add it to the photon's requirement_dependency and install it "
        "(pip install numpy_not_installed_here)"
    )


def test_error_at_import_time_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "raises.py", "x = 1\nraise RuntimeError('no model file')\n")
    with pytest.raises(PhotonSourceError) as info:
        load_photon(parse_spec("raises.py", root=tmp_path))
    assert str(info.value) == (
        f"importing raises.py failed ({path}:2): RuntimeError: no model file"
    )


def test_definition_errors_pass_through_unchanged(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.py",
        """
        from photonpack import Photon

        class Bad(Photon):
            requirement_dependency = "numpy"
        """,
    )
    with pytest.raises(PhotonDefinitionError, match="must be a list of strings"):
        load_photon(parse_spec("bad.py", root=tmp_path))


def test_misspelt_declaration_warns_and_the_photon_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "typo.py",
        """
        from leptonai.photon import Photon

        class Typo(Photon):
            system_dependencies = ["ffmpeg"]
        """,
    )
    with pytest.warns(PhotonDefinitionWarning, match="did you mean system_dependency") as record:
        cls = load_photon(parse_spec("typo.py", root=tmp_path))
    assert (cls.__name__, record[0].filename, record[0].lineno) == ("Typo", str(path), 4)


def test_missing_module_spec_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PhotonSourceError) as info:
        load_photon(parse_spec("nowhere_pkg.service:Echo", root=tmp_path))
    assert str(info.value) == (
        f"module nowhere_pkg.service cannot be found from {tmp_path}; "
        "run from the directory that contains it, or pass file.py"
    )


LEPTON = """
from leptonai.photon import Photon, handler, HTTPException, File, PNGResponse, StreamingResponse
from leptonai import Photon as TopLevelPhoton
from leptonai.client import Client, local
from leptonai.photon.types import File as TypesFile

assert Photon is TopLevelPhoton and File is TypesFile

class Legacy(Photon):
    @handler
    def add(self, x: int) -> int:
        return x + 1
"""


def test_lepton_imports_resolve_to_photonpack_when_leptonai_is_absent(tmp_path: Path) -> None:
    import photonpack

    write(tmp_path, "legacy.py", LEPTON)
    cls: Any = load_photon(parse_spec("legacy.py", root=tmp_path))
    assert issubclass(cls, photonpack.Photon)
    assert cls().add(x=1) == 2
    assert sys.modules["leptonai.client"].Client is photonpack.Client


def test_unsupported_leptonai_module_says_what_the_shim_covers(tmp_path: Path) -> None:
    path = write(tmp_path, "worker.py", "from leptonai.util import tool\n")
    with pytest.raises(PhotonSourceError) as info:
        load_photon(parse_spec("worker.py", root=tmp_path))
    assert str(info.value) == (
        f"worker.py imports leptonai.util ({path}:1), which photonpack does not provide: it "
        "stands in only for leptonai's photon SDK (leptonai, leptonai.photon, "
        "leptonai.photon.types, leptonai.client); install leptonai or import that name "
        "from elsewhere"
    )


def test_lepton_spec_forms_name_the_same_photons(tmp_path: Path) -> None:
    write(tmp_path, "echo.py", ONE)
    write(tmp_path, "pkg_lepton_forms/__init__.py", "")
    write(tmp_path, "pkg_lepton_forms/service.py", ONE)
    file_spec = PhotonSpec(path=tmp_path / "echo.py", class_name="Echo", root=tmp_path)
    module_spec = PhotonSpec(module="pkg_lepton_forms.service", class_name="Echo", root=tmp_path)
    assert parse_spec("py:echo.py:Echo", root=tmp_path) == file_spec
    assert parse_spec("py:echo.py", root=tmp_path) == PhotonSpec(
        path=tmp_path / "echo.py", root=tmp_path
    )
    assert parse_spec("pkg_lepton_forms.service.Echo", root=tmp_path) == module_spec
    assert parse_spec("py:pkg_lepton_forms.service.Echo", root=tmp_path) == module_spec
    assert load_photon(module_spec).__module__ == "pkg_lepton_forms.service"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "hf:sshleifer/tiny-gpt2@5f91d94",
            "photon 'hf:sshleifer/tiny-gpt2@5f91d94' is one of Lepton's hf: photons (a Hugging "
            "Face pipeline that Lepton assembled), a type photonpack does not support: write a "
            "Photon subclass that loads the model in init() and pass its file.py",
        ),
        (
            "vllm:meta-llama/Llama-2-7b",
            "photon 'vllm:meta-llama/Llama-2-7b' is one of Lepton's vllm: photons (a vLLM server "
            "that Lepton assembled), a type photonpack does not support: write a Photon subclass "
            "that loads the model in init() and pass its file.py",
        ),
        (
            "py:https://github.com/leptonai/examples.git:counter.py:Counter",
            "photon 'py:https://github.com/leptonai/examples.git:counter.py:Counter' names a git "
            "repository (Lepton's py:URL:path form), which photonpack does not fetch: clone it "
            "and pass the path of the photon's file.py",
        ),
    ],
)
def test_lepton_photon_types_photonpack_lacks_are_named(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(PhotonSourceError) as info:
        parse_spec(text, root=tmp_path)
    assert str(info.value) == message
