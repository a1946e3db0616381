"""Answer ``import leptonai`` with photonpack's SDK when the real package is absent.

Photons and client code written for Lepton AI's SDK then run unchanged. The
real ``leptonai`` always wins when it is importable: this is a fallback, never
a shadow. Two things install it: :func:`install_leptonai_shim` (every
photonpack command that loads a photon calls it), and, in plain Python, the
``photonpack_leptonai.pth`` start-up hook that photonpack's wheel puts in
site-packages (``hooks/_photonpack_leptonai.py``), which asks
:func:`find_shim_spec` only after every other finder found no ``leptonai``.

The modules are lazy: ``from leptonai.client import Client`` imports the
client and nothing of FastAPI; ``leptonai.photon`` is imported on first use.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import Any

from photonpack.__about__ import __version__ as _photonpack_version

__all__ = ["LEPTON_VERSION", "find_shim_spec", "install_leptonai_shim", "shim_modules"]

# The last leptonai release with photons: the API these modules stand in for.
LEPTON_VERSION = "0.27.3"

_PHOTON = "photonpack.serving.photon"
_TYPES = "photonpack.serving.lepton_types"
_CLIENT = "photonpack.serving.client"
_SDK = ("Photon", "handler", "HTTPException", "StreamingResponse", "File")
_RESPONSES = ("PNGResponse", "JPEGResponse", "WAVResponse")
_HELPERS = ("get_file_content", "make_img_response", "make_jpeg_response", "make_png_response")

# leptonai module -> {name: photonpack module that defines it}: Lepton's names, no more.
_MODULES: dict[str, dict[str, str]] = {
    "leptonai": {
        **dict.fromkeys((*_SDK, *_RESPONSES), _PHOTON),
        **dict.fromkeys(("Client", "local", "current"), _CLIENT),
    },
    "leptonai.photon": {
        **dict.fromkeys((*_SDK, *_RESPONSES), _PHOTON),
        **dict.fromkeys(
            ("FileParam", "StaticFiles", "get_file_content", "make_png_response"), _TYPES
        ),
    },
    "leptonai.photon.photon": {
        **dict.fromkeys((*_SDK, *_RESPONSES), _PHOTON),
        **dict.fromkeys(("FileParam", "StaticFiles"), _TYPES),
    },
    "leptonai.photon.types": dict.fromkeys(
        ("File", "FileParam", *_RESPONSES, *_HELPERS, "to_bool"), _TYPES
    ),
    "leptonai.photon.types.file": {"File": _TYPES},
    "leptonai.photon.types.fileparam": {"FileParam": _TYPES},
    "leptonai.photon.types.responses": {**dict.fromkeys(_RESPONSES, _TYPES)},
    "leptonai.photon.types.util": dict.fromkeys((*_HELPERS, "to_bool"), _TYPES),
    "leptonai.client": dict.fromkeys(("Client", "local", "current"), _CLIENT),
}


def shim_modules() -> dict[str, list[str]]:
    """Each ``leptonai`` module the shim provides, with the names it defines."""
    return {module: sorted(names) for module, names in _MODULES.items()}


class _ShimModule(types.ModuleType):
    """A ``leptonai`` module whose names are fetched from photonpack on first use."""

    def __getattr__(self, name: str) -> Any:
        source = _MODULES[self.__name__].get(name)
        if source is not None:
            value = getattr(importlib.import_module(source), name)
        elif f"{self.__name__}.{name}" in _MODULES:  # `import leptonai; leptonai.photon`
            value = importlib.import_module(f"{self.__name__}.{name}")
        else:
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r}: photonpack stands in for "
                f"leptonai's photon SDK only ({', '.join(sorted(_MODULES[self.__name__]))})"
            )
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        below = [m.rsplit(".", 1)[1] for m in _MODULES if m.rpartition(".")[0] == self.__name__]
        return sorted({*super().__dir__(), *_MODULES[self.__name__], *below})


class _ShimFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the ``leptonai`` modules listed in ``_MODULES``."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _MODULES:
            return None
        parent = sys.modules.get("leptonai")
        if fullname != "leptonai" and not getattr(parent, "__photonpack_shim__", False):
            return None  # never a module of ours inside a real leptonai
        is_package = any(name.startswith(fullname + ".") for name in _MODULES)
        return importlib.util.spec_from_loader(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _ShimModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__all__ = sorted(_MODULES[module.__name__])  # type: ignore[attr-defined]
        module.__photonpack_shim__ = True  # type: ignore[attr-defined]
        if module.__name__ == "leptonai":
            # Compares as Lepton's last release; the local part says who answers.
            module.__version__ = f"{LEPTON_VERSION}+photonpack.{_photonpack_version}"  # type: ignore[attr-defined]


_FINDER = _ShimFinder()


def find_shim_spec(fullname: str) -> importlib.machinery.ModuleSpec | None:
    """The spec of the shim's module ``fullname``, or None; for the start-up hook."""
    return _FINDER.find_spec(fullname, None)


def install_leptonai_shim() -> bool:
    """Make ``leptonai`` importable from photonpack unless the real one is; True if installed."""
    if _FINDER in sys.meta_path:
        return True
    loaded = sys.modules.get("leptonai")
    if loaded is not None:
        return bool(getattr(loaded, "__photonpack_shim__", False))
    spec = importlib.util.find_spec("leptonai")
    if spec is not None and spec.loader is not _FINDER:  # the real one (the hook answers with ours)
        return False
    sys.meta_path.append(_FINDER)
    return True
