"""Import a photon's module and find its :class:`~photonpack.serving.photon.Photon` subclass.

This is the one place that runs a photon's module-level code: in the serve
process, in ``describe`` (at build), and for ``run -m``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from photonpack.serving.errors import PhotonpackError, PhotonSourceError, failure_location
from photonpack.serving.source import PhotonSpec, parse_spec

if TYPE_CHECKING:
    from photonpack.serving.photon import Photon

__all__ = ["failure_location", "load_photon"]  # failure_location: re-exported from errors


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
