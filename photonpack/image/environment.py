"""The photon's environment for an image: installed here, run by the base's Python.

photonpack's own installer writes the venv into a staging directory from the
archive's verified wheels and runtime files, exactly as ``photonpack run``
does, except that its interpreter is described instead of probed: it is the
base's CPython (which cannot run on this machine), and the wheels' tags are
those of the base's own target. ``bin/python`` links to that interpreter by
its path in the image and ``pyvenv.cfg`` names it, so the staging directory
becomes ``/opt/photon/env`` in the image unchanged.

Bytecode needs an interpreter of the base's version: when this machine's
Python has the same ``major.minor``, it compiles (a pyc depends only on the
source and the compiler's version); otherwise the image has none, and says so.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from photonpack.image.checks import BaseFacts, BasePython
from photonpack.install.bytecode import BytecodeCompiler
from photonpack.install.cache import WheelCache
from photonpack.install.extract import InstalledDist
from photonpack.install.installer import compile_few, install_wheels, pyc_rows, write_record
from photonpack.install.interpreter import Interpreter, describe_interpreter
from photonpack.install.owners import Linked
from photonpack.install.serving_dist import place_runtime
from photonpack.install.venv import create_venv
from photonpack.lock.target import Target

__all__ = ["ENV_PATH", "StagedEnvironment", "bytecode_python", "image_interpreter", "stage"]

ENV_PATH = "opt/photon/env"  # in the image, without the leading "/"
_MULTIARCH = {"glibc": "linux-gnu", "musl": "linux-musl"}


@dataclass(frozen=True, kw_only=True)
class StagedEnvironment:
    """The staged venv, and which distribution owns each of its files."""

    root: Path
    dists: tuple[InstalledDist, ...]  # sorted by label (wheel filename, or the runtime)
    owned: Mapping[str, tuple[str, ...]]  # label -> paths relative to root (files, pycs)
    compiled: bool


def image_interpreter(python: BasePython, target: Target, facts: BaseFacts) -> Interpreter:
    """The base's CPython as the installer needs it, without running it.

    ``target`` is the base's own target (its glibc), so every wheel it can run installs.
    """
    libc = _MULTIARCH.get(facts.libc[0] if facts.libc else "glibc", "linux-gnu")
    return Interpreter(
        executable=Path(python.executable),
        id=f"cpython-{python.version}-{facts.architecture}-{libc}",
        short_version=python.short_version,
        site_packages=f"lib/python{python.short_version}/site-packages",
        cache_tag=f"cpython-3{python.minor}",
        tags=tuple(str(tag) for tag in target.tags()),
    )


def bytecode_python(python: BasePython) -> Path | None:
    """An interpreter here that compiles bytecode for ``python``, or None."""
    if sys.version_info[:2] == (3, python.minor) and sys.implementation.name == "cpython":
        return Path(getattr(sys, "_base_executable", None) or sys.executable)
    return None


def _pyvenv_cfg(interpreter: Interpreter) -> str:
    # create_venv resolves the executable on *this* machine; the image names the base's.
    executable = interpreter.executable
    return (
        f"home = {executable.parent}\n"
        "include-system-site-packages = false\n"
        f"version = {interpreter.id.split('-')[1]}\n"
        f"executable = {executable}\n"
    )


def _linkable(
    cache: WheelCache | None, compiler: Path | None, image: Interpreter
) -> Interpreter | None:
    """This machine's interpreter, when its store environments hold what the image would.

    A wheel installed for an interpreter of the same CPython ``major.minor`` and
    platform gives the same files, and its pycs are what ``compiler`` (this
    interpreter) would write: linking them from the store is installing and
    compiling without doing either.
    """
    if cache is None or compiler is None:
        return None
    host = describe_interpreter()
    same = (
        host.short_version == image.short_version
        and host.cache_tag == image.cache_tag
        and host.site_packages == image.site_packages
        and host.id.split("-", 2)[2:] == image.id.split("-", 2)[2:]
        and os.path.realpath(host.executable) == os.path.realpath(compiler)
    )
    return host if same else None


def _under(prefix: str, path: Path) -> str:
    """``path`` relative to the staging root (``prefix``: the root and a separator).

    String work, not ``Path.relative_to``: it runs once for each of an image's files.
    """
    text = str(path)
    if not text.startswith(prefix):
        raise ValueError(f"{text} is not in the staged environment {prefix}")
    return text[len(prefix) :]


def _linked_owned(linked: Linked, root: Path, site: Path) -> dict[str, list[str]]:
    """The files linked from the store by distribution label, with each one's RECORD."""
    owned: dict[str, list[str]] = {}
    prefix = f"{root}{os.sep}"
    for path, owner in linked.items():
        relative = path.removeprefix(prefix)
        owned.setdefault(owner.dist, []).append(relative)
        folder, name = os.path.split(path)
        if name == "METADATA" and folder.endswith(".dist-info") and Path(folder).parent == site:
            owned[owner.dist].append(_under(prefix, Path(folder, "RECORD")))
    return owned


def stage(
    root: Path,
    interpreter: Interpreter,
    *,
    wheels: Sequence[tuple[str, Path]],
    runtime_files: Mapping[str, Path],
    compiler: Path | None,
    cache: WheelCache | None = None,
) -> StagedEnvironment:
    """Install the wheels and runtime files into a new venv at ``root`` (must not exist).

    With ``cache``, the wheels (and runtime files) that environments of the
    store already hold installed and compiled on an interpreter giving the same
    files (``_linkable``) are hard-linked from there; the others are installed.
    """
    scheme = create_venv(root, interpreter)
    (root / "pyvenv.cfg").write_text(_pyvenv_cfg(interpreter))
    site = scheme.site_packages
    workers = max(1, os.cpu_count() or 1) if compiler is not None else 0
    host = _linkable(cache, compiler, interpreter)
    compiled_runtime: dict[Path, tuple[str, int]] = {}
    with contextlib.ExitStack() as stack:
        fresh, place, linked = list(wheels), bool(runtime_files), Linked()
        if cache is not None and host is not None:
            fresh, place, linked = stack.enter_context(
                cache.link(wheels, runtime_files, scheme, host)
            )
        bytecode = stack.enter_context(
            BytecodeCompiler(compiler or Path(sys.executable), workers=workers if fresh else 0)
        )
        dists = install_wheels(
            fresh, scheme, interpreter=interpreter, on_written=bytecode.submit, taken=linked
        )
        if place:
            taken = [*linked, *(str(path) for dist in dists for path, _h, _s in dist.rows)]
            dists.append(place_runtime(site, runtime_files, taken))
            rows = [(path, size) for path, _h, size in dists[-1].rows]
            if fresh:
                bytecode.submit(site, rows)
            elif compiler is not None:  # every wheel linked: a few files, compiled here
                here = host or describe_interpreter()
                compiled_runtime = compile_few(here, site, [path for path, _s in rows])
        compiled = bytecode.finish() | compiled_runtime
    # A source skipped because a linked wheel put it there already has its pyc.
    compiled |= {
        Path(path): (f"{owner.algorithm}={owner.digest}", owner.size)
        for path, owner in linked.items()
        if path.endswith(".pyc")
    }
    owned: dict[str, tuple[str, ...]] = {
        label: tuple(sorted(set(paths)))
        for label, paths in _linked_owned(linked, root, site).items()
    }
    prefix = f"{root}{os.sep}"
    for dist in dists:
        extra = pyc_rows(dist, site, interpreter.cache_tag, compiled)
        write_record(dist, scheme, extra=extra)
        paths = [*(path for path, _h, _s in dist.rows), *extra, site / dist.dist_info / "RECORD"]
        owned[dist.label] = tuple(sorted({_under(prefix, path) for path in paths}))
    return StagedEnvironment(
        root=root,
        dists=tuple(sorted(dists, key=lambda d: d.label)),
        owned=owned,
        compiled=compiler is not None,
    )
