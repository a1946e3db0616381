"""Answer ``import leptonai`` with photonpack's SDK when the real package is absent.

Photons written for Lepton AI's SDK then load unchanged. The real ``leptonai``
always wins when it is importable: this is a fallback, never a shadow.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

__all__ = ["install_leptonai_shim"]

# leptonai module -> photonpack modules whose public names it re-exports.
_ALIASES: dict[str, tuple[str, ...]] = {
    "leptonai": ("photonpack.serving.photon", "photonpack.serving.client"),
    "leptonai.photon": ("photonpack.serving.photon",),
    "leptonai.photon.photon": ("photonpack.serving.photon",),
    "leptonai.photon.types": ("photonpack.serving.photon",),
    "leptonai.photon.types.file": ("photonpack.serving.photon",),
    "leptonai.photon.types.responses": ("photonpack.serving.photon",),
    "leptonai.client": ("photonpack.serving.client",),
}


class _ShimFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the ``leptonai`` modules listed in ``_ALIASES`` and fills them from photonpack."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _ALIASES:
            return None
        is_package = any(name.startswith(fullname + ".") for name in _ALIASES)
        return importlib.util.spec_from_loader(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        for source in _ALIASES[module.__name__]:
            real = importlib.import_module(source)
            for name in getattr(real, "__all__", ()):
                setattr(module, name, getattr(real, name))
        module.__photonpack_shim__ = True  # type: ignore[attr-defined]


_FINDER = _ShimFinder()


def install_leptonai_shim() -> bool:
    """Make ``leptonai`` importable from photonpack unless the real one is; True if installed."""
    if _FINDER in sys.meta_path:
        return True
    if "leptonai" in sys.modules:
        return False
    if importlib.util.find_spec("leptonai") is not None:
        return False
    sys.meta_path.append(_FINDER)
    return True
