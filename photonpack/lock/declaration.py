"""What a photon declares, read from its source without running it.

``requirement_dependency``, ``system_dependency``, ``extra_files`` and
``image`` are class attributes that are almost always literals. Reading them
with ``ast`` lets ``photonpack lock`` run where the photon's own imports
(torch, numpy, ...) are not installed. Inheritance between Photon subclasses
of the same file is followed; a photon may subclass ``photonpack.Photon`` or
Lepton's ``leptonai.photon.Photon``. When a value is not a literal, or a base
class lives in another module, the photon is imported instead
(:func:`photonpack.serving.source.load_photon`).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib
import io
import os
import tokenize
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

from photonpack.errors import PhotonDefinitionError, PhotonSourceError
from photonpack.serving.requirements import LEPTON_REQUIREMENTS
from photonpack.serving.source import PhotonSpec

__all__ = ["ATTRIBUTES", "Declaration", "read_declaration"]

ATTRIBUTES = (
    "requirement_dependency",
    "system_dependency",
    "extra_files",
    "image",
    "lepton_dependencies",
)
_PHOTON_BASES = {"Photon", "photonpack.Photon", "photon.Photon", "leptonai.photon.Photon"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Declaration:
    """A photon's declared dependencies and files."""

    class_name: str
    requirement_dependency: tuple[str, ...] = ()
    system_dependency: tuple[str, ...] = ()
    extra_files: tuple[tuple[str, str], ...] = ()  # (path in photon, local path)
    image: str | None = None
    # LEPTON_REQUIREMENTS when the photon's source imports leptonai, unless it opts out.
    lepton_dependencies: tuple[str, ...] = ()


class _NeedsImport(Exception):
    """The source alone cannot answer: import the photon."""


def read_declaration(spec: PhotonSpec) -> Declaration:
    """The photon's declaration: statically when possible, else by importing it."""
    path = _source_file(spec)
    if path is not None:
        try:
            return _read_static(path, spec)
        except _NeedsImport:
            pass
    return _read_imported(spec)


def _source_file(spec: PhotonSpec) -> Path | None:
    if spec.path is not None:
        return spec.path
    assert spec.module is not None
    base = spec.root.joinpath(*spec.module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _read_static(path: Path, spec: PhotonSpec) -> Declaration:
    try:
        source = _decoded(path.read_bytes(), path)
    except OSError as exc:
        raise PhotonSourceError(f"cannot read photon file {path}: {exc.strerror}") from exc
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        where = f"{path}:{exc.lineno}" if exc.lineno else f"{path}"
        raise PhotonSourceError(
            f"{where}: syntax error: {exc.msg}; fix the photon's source"
        ) from exc
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    photons = [name for name in classes if _is_photon(name, classes, set())]
    cls = _choose(spec, path, classes, photons)
    values: dict[str, Any] = {}
    for node in _lineage(cls, classes):
        for name, value in _assignments(node).items():
            values.setdefault(name, value)
    lepton = _imports_leptonai(tree)
    return _declaration(cls.name, values, where=f"{path.name}:{cls.name}", lepton=lepton)


def _imports_leptonai(tree: ast.Module) -> bool:
    """Whether the module imports ``leptonai`` anywhere: it was written for Lepton's SDK."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "leptonai" for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "leptonai":
            return True
    return False


def _decoded(data: bytes, path: Path) -> str:
    """The source text, in UTF-8 or the encoding its PEP 263 declaration names."""
    try:
        encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    except SyntaxError as exc:
        if str(exc).startswith("unknown encoding"):
            raise PhotonSourceError(
                f"{path}: {exc}: its coding declaration names no codec Python has; "
                "remove the declaration and save the file as UTF-8"
            ) from exc
        encoding = "utf-8"  # the first lines are not UTF-8: decoding says where
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        label = "UTF-8" if encoding.startswith("utf-8") else f"{encoding} (as it declares)"
        raise PhotonSourceError(
            f"{path}:{line}: the photon's source is not {label}: byte "
            f"0x{data[exc.start]:02x} at column {column} cannot be decoded; "
            "save the file as UTF-8, the encoding of Python source"
        ) from exc


def _choose(
    spec: PhotonSpec, path: Path, classes: Mapping[str, ast.ClassDef], photons: list[str]
) -> ast.ClassDef:
    if spec.class_name is not None:
        if spec.class_name not in photons:
            # Defined elsewhere (a re-export) or built dynamically: the import decides.
            raise _NeedsImport
        return classes[spec.class_name]
    if len(photons) == 1:
        return classes[photons[0]]
    if not photons:
        raise _NeedsImport
    raise PhotonSourceError(
        f"{path.name} defines several photons ({', '.join(photons)}); "
        f"name one, e.g. {path.name}:{photons[0]}"
    )


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        parent = _dotted(node.value)
        return f"{parent}.{node.attr}" if parent else None
    return None


def _is_photon(name: str, classes: Mapping[str, ast.ClassDef], seen: set[str]) -> bool:
    if name in seen or name not in classes:
        return False
    seen.add(name)
    for base in classes[name].bases:
        dotted = _dotted(base) or ""
        if dotted in _PHOTON_BASES or _is_photon(dotted, classes, seen):
            return True
    return False


def _lineage(cls: ast.ClassDef, classes: Mapping[str, ast.ClassDef]) -> list[ast.ClassDef]:
    """``cls`` and its in-file bases, nearest first (depth-first, left to right)."""
    order: list[ast.ClassDef] = []
    stack = [cls]
    while stack:
        node = stack.pop(0)
        if node in order:
            continue
        order.append(node)
        for base in node.bases:
            dotted = _dotted(base) or ""
            if dotted in classes:
                stack.insert(0, classes[dotted])
            elif dotted not in _PHOTON_BASES and dotted != "object":
                # A base from another module may declare attributes we cannot see.
                raise _NeedsImport
    return order


def _assignments(cls: ast.ClassDef) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for statement in cls.body:
        if isinstance(statement, ast.Assign):
            targets = [t.id for t in statement.targets if isinstance(t, ast.Name)]
            value: ast.expr | None = statement.value
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            targets, value = [statement.target.id], statement.value
        else:
            continue
        for name in targets:
            if name in ATTRIBUTES and value is not None:
                try:
                    found[name] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    raise _NeedsImport from None
    return found


def _read_imported(spec: PhotonSpec) -> Declaration:
    # Looked up at call time: source.load_photon pulls in the SDK, which locking avoids.
    load_photon = importlib.import_module("photonpack.serving.loader").load_photon
    try:
        with _exit_refused():
            cls = load_photon(spec)
    except SystemExit as exc:
        raise PhotonSourceError(
            f"the photon {spec} exited during import ({_exit_text(exc.code)} in its module "
            "code); photonpack imports it to read its declared attributes: move that call "
            'under `if __name__ == "__main__":` or into init()'
        ) from None
    values = {name: getattr(cls, name, None) for name in ATTRIBUTES}
    source = _source_file(spec)
    lepton = False
    if source is not None:
        try:
            lepton = _imports_leptonai(ast.parse(source.read_bytes()))
        except (OSError, SyntaxError, ValueError):
            lepton = False  # the import succeeded: the loader's source is what counts
    return _declaration(cls.__name__, values, where=f"{spec}", lepton=lepton)


@contextlib.contextmanager
def _exit_refused() -> Iterator[None]:
    """Make ``os._exit`` raise SystemExit while a photon imports in this process.

    ``os._exit`` ends the process at once, skipping every handler: a photon
    calling it at import would end ``photonpack lock`` with the photon's exit
    code and no word. Scoped to the import, and the CLI runs nothing else then.
    """

    def refuse(status: int) -> NoReturn:
        raise SystemExit(status)

    original = os._exit
    os._exit = refuse
    try:
        yield
    finally:
        os._exit = original


def _exit_text(code: object) -> str:
    if code is None or isinstance(code, int):
        return f"exit code {code or 0}: sys.exit or os._exit"
    return f"sys.exit({code!r})"


def _declaration(
    class_name: str, values: Mapping[str, Any], *, where: str, lepton: bool
) -> Declaration:
    wanted = values.get("lepton_dependencies")
    if wanted is not None and not isinstance(wanted, bool):
        raise PhotonSourceError(
            f"{where}: lepton_dependencies must be True, False or None (automatic), got {wanted!r}"
        )
    applies = lepton if wanted is None else wanted
    return Declaration(
        lepton_dependencies=LEPTON_REQUIREMENTS if applies else (),
        class_name=class_name,
        requirement_dependency=_strings(
            values.get("requirement_dependency"), where, "requirement_dependency"
        ),
        system_dependency=_strings(values.get("system_dependency"), where, "system_dependency"),
        extra_files=_extra_files(values.get("extra_files"), where),
        image=_image(values.get("image"), where),
    )


def _strings(value: Any, where: str, attribute: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise PhotonDefinitionError(
            f"{where}: {attribute} must be a list of strings, got {value!r}"
        )
    return tuple(v.strip() for v in value if v.strip())


def _extra_files(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return tuple((str(k), str(v)) for k, v in value.items())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple((v, v) for v in value)
    raise PhotonDefinitionError(
        f"{where}: extra_files must be a list of paths or a dict "
        f"{{path in photon: local path}}, got {value!r}"
    )


def _image(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise PhotonDefinitionError(f"{where}: image must be a string, got {value!r}")
