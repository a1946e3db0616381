"""Find a photon from a command-line spec: ``file.py[:Class]`` or ``pkg.module:Class``.

Lepton's spellings are accepted too: ``py:file.py[:Class]``, ``py:pkg.module.Class``
and ``pkg.module.Class``. Its other photon types (``hf:``, ``vllm:``) are refused
with a message that says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from photonpack.serving.errors import PhotonSourceError

__all__ = ["PhotonSpec", "parse_spec"]

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
