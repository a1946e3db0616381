"""Find a photon from a command-line spec: ``file.py[:Class]`` or ``pkg.module:Class``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from photonpack.serving.errors import PhotonSourceError

__all__ = ["PhotonSpec", "parse_spec"]


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
    """Parse ``file.py[:Class]`` or ``package.module:Class`` (relative to ``root``)."""
    base = (root or Path.cwd()).resolve()
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
    if not class_name:
        raise PhotonSourceError(
            f"photon {text!r} names a module without a class: write {where}:ClassName"
        )
    return PhotonSpec(module=where, class_name=class_name, root=base)
