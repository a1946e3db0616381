"""Find a photon from a command-line spec: ``file.py[:Class]`` or ``pkg.module:Class``.

Lepton's spellings are accepted too: ``py:file.py[:Class]``, ``py:pkg.module.Class``
and ``pkg.module.Class``. Its other photon types (``hf:``, ``vllm:``) are refused
with a message that says so.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from photonpack.serving.errors import PhotonpackError, PhotonSourceError

if TYPE_CHECKING:
    from photonpack.serving.photon import Photon

__all__ = ["PhotonSpec", "failure_location", "load_photon", "parse_spec"]

# Lepton's photon types that are not a Python class of the user's: what each one was.
_LEPTON_TYPES = {
    "hf": "a Hugging Face pipeline that Lepton assembled",
    "vllm": "a vLLM server that Lepton assembled",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PhotonSpec:
    """Where a photon lives, before anything is read or imported.

    Exactly one of ``path`` (a ``.py`` file) and ``module`` (a dotted module
    name, imported relative to ``root``) is set. ``class_name`` is ``None``
    when the spec names no class: the file must then hold exactly one
    Photon subclass.
    """

    path: Path | None = None
    module: str | None = None
    class_name: str | None = None
    root: Path = dataclasses.field(default_factory=Path.cwd)

    @property
    def directory(self) -> Path:
        """The photon's directory: its working directory when served."""
        if self.path is not None:
            return self.path.parent
        return self.root

    def __str__(self) -> str:
        where = str(self.path) if self.path is not None else str(self.module)
        return f"{where}:{self.class_name}" if self.class_name else where


def parse_spec(text: str, *, root: Path | None = None) -> PhotonSpec:
    """Parse ``file.py[:Class]`` or ``package.module:Class`` (relative to ``root``).

    Also Lepton's ``py:`` prefix and its dotted ``package.module.Class``.
    """
    base = (root or Path.cwd()).resolve()
    text = _lepton_form(text)
    where, _, class_name = text.rpartition(":") if ":" in text else (text, "", "")
    if not where:
        raise PhotonSourceError(
            f"invalid photon {text!r}: expected file.py[:Class] or module:Class"
        )
    if class_name and not class_name.isidentifier():
        raise PhotonSourceError(
            f"invalid photon {text!r}: {class_name!r} is not a Python class name"
        )
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = (base / where).resolve()
        if not path.is_file():
            raise PhotonSourceError(
                f"photon file {where} does not exist (looked in {base}); "
                "pass the path of the .py file that defines the Photon subclass"
            )
        return PhotonSpec(path=path, class_name=class_name or None, root=path.parent)
    if not all(part.isidentifier() for part in where.split(".")):
        raise PhotonSourceError(
            f"invalid photon {text!r}: expected file.py[:Class] or package.module:Class"
        )
    if not class_name and "." in where:  # Lepton's dotted form: package.module.Class
        where, _, class_name = where.rpartition(".")
    if not class_name:
        raise PhotonSourceError(
            f"photon {text!r} names a module without a class: write {where}:ClassName"
        )
    return PhotonSpec(module=where, class_name=class_name, root=base)


def _lepton_form(text: str) -> str:
    """``text`` without Lepton's ``py:`` schema; Lepton's other photon types are refused."""
    schema, colon, rest = text.partition(":")
    if colon and schema in _LEPTON_TYPES:
        raise PhotonSourceError(
            f"photon {text!r} is one of Lepton's {schema}: photons ({_LEPTON_TYPES[schema]}), "
            "a type photonpack does not support: write a Photon subclass that loads the model "
            "in init() and pass its file.py"
        )
    if not colon or schema != "py":
        return text
    if "://" in rest:
        raise PhotonSourceError(
            f"photon {text!r} names a git repository (Lepton's py:URL:path form), which "
            "photonpack does not fetch: clone it and pass the path of the photon's file.py"
        )
    return rest


def load_photon(spec: PhotonSpec | str) -> type[Photon]:
    """Import the photon's module and return its Photon subclass.

    Installs the ``leptonai`` shim first, so photons written for Lepton's SDK
    load unchanged. The photon's directory goes first on ``sys.path`` so that
    its sibling modules import.
    """
    from photonpack.serving.lepton import install_leptonai_shim
    from photonpack.serving.photon import Photon

    if isinstance(spec, str):
        spec = parse_spec(spec)
    install_leptonai_shim()
    directory = str(spec.directory)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module = _import(spec)
    if spec.class_name is not None:
        found = getattr(module, spec.class_name, None)
        if not (isinstance(found, type) and issubclass(found, Photon)):
            what = "is not defined" if found is None else f"is not a Photon subclass ({found!r})"
            raise PhotonSourceError(
                f"{spec}: {spec.class_name} {what} in {_where(spec)}; "
                f"available photons: {_names(_photons_in(module, Photon)) or 'none'}"
            )
        return found
    photons = _photons_in(module, Photon)
    if not photons:
        raise PhotonSourceError(
            f"{_where(spec)} defines no Photon subclass; write "
            "`class MyPhoton(Photon): ...` in it, or name the class as file.py:Class"
        )
    if len(photons) > 1:
        raise PhotonSourceError(
            f"{_where(spec)} defines several photons ({_names(photons)}); "
            f"name one, e.g. {spec}:{photons[0].__name__}"
        )
    return photons[0]


def _where(spec: PhotonSpec) -> str:
    return spec.path.name if spec.path is not None else f"module {spec.module}"


def _names(classes: list[type]) -> str:
    return ", ".join(cls.__name__ for cls in classes)


def _photons_in(module: ModuleType, base: type[Photon]) -> list[type[Photon]]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, base)
        and value is not base
        and value.__module__ == module.__name__
    ]


def _import(spec: PhotonSpec) -> ModuleType:
    try:
        if spec.path is None:
            assert spec.module is not None
            return importlib.import_module(spec.module)
        return _import_file(spec.path)
    except PhotonpackError:
        raise
    except SyntaxError as exc:
        line = (exc.text or "").rstrip()
        raise PhotonSourceError(
            f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}"
            + (f"\n    {line.strip()}" if line else "")
        ) from exc
    except ModuleNotFoundError as exc:
        if spec.module is not None and exc.name is not None and spec.module.startswith(exc.name):
            raise PhotonSourceError(
                f"module {spec.module} cannot be found from {spec.root}; "
                "run from the directory that contains it, or pass file.py"
            ) from exc
        if exc.name is not None and exc.name.split(".")[0] == "leptonai":
            raise PhotonSourceError(
                f"{_where(spec)} imports {exc.name} ({failure_location(exc)}), which photonpack "
                "does not provide: it stands in only for leptonai's photon SDK (leptonai, "
                "leptonai.photon, leptonai.photon.types, leptonai.client); install leptonai "
                "or import that name from elsewhere"
            ) from exc
        raise PhotonSourceError(
            f"{_where(spec)} imports {exc.name}, which is not installed here "
            f"({failure_location(exc)}); add it to the photon's requirement_dependency "
            f"and install it (pip install {exc.name})"
        ) from exc
    except Exception as exc:
        raise PhotonSourceError(
            f"importing {_where(spec)} failed ({failure_location(exc)}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def failure_location(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc`` outside photonpack: the user's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = str(Path(__file__).parent)
    user = [f for f in frames if "<frozen" not in f.filename and not f.filename.startswith(ours)]
    frame = (user or frames)[-1] if frames else None
    return f"{frame.filename}:{frame.lineno}" if frame else "unknown location"


def _import_file(path: Path) -> ModuleType:
    name = path.stem if path.stem.isidentifier() else "photon_module"
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    if existing is not None or name in sys.stdlib_module_names:
        name = f"_photonpack_photon_{name}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise PhotonSourceError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
