"""The photon's venv: the digest that names it, the bare venv, and flushing it to disk.

The venv is relocatable by rename, so the store can build it in a temp
directory and move it into place only when complete: ``bin/python`` links to
the base interpreter by absolute path, ``pyvenv.cfg`` names only that
interpreter, and no file mentions the directory it was built in (``.pyc`` files
name their source relative to site-packages, see ``bytecode.py``). Its key,
:func:`environment_digest`, covers the interpreter, the wheels, the runtime
files and the installer's layout version.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from photonpack._digest import is_sha256_hex
from photonpack.install.interpreter import Interpreter

__all__ = ["ENVIRONMENT_LAYOUT", "Scheme", "create_venv", "environment_digest"]

# Part of every environment digest: bump it when the installed layout changes,
# so that environments built by an older photonpack are never reused.
ENVIRONMENT_LAYOUT = 2  # 2: runtime files recorded in photonpack-<version>.dist-info


@dataclass(frozen=True, kw_only=True)
class Scheme:
    """Where each wheel scheme lands inside the environment (absolute paths)."""

    root: Path  # "data"
    site_packages: Path  # "purelib" and "platlib": one directory in a venv
    scripts: Path
    headers: Path  # include/site/pythonX.Y; each distribution gets a subdirectory


def environment_digest(
    *, interpreter: str, wheel_sha256s: Iterable[str], runtime_files: Mapping[str, str]
) -> str:
    """The hex key of the environment these wheels and runtime files make on ``interpreter``.

    ``runtime_files`` maps each runtime file's path (relative to site-packages)
    to its sha256: a file's place matters as much as its content. Order and
    duplicates do not matter; the installer's layout version is included.
    """
    wheels = sorted(set(wheel_sha256s))
    bad = [h for h in (*wheels, *runtime_files.values()) if not is_sha256_hex(h)]
    if bad:
        raise ValueError(f"not a lowercase sha256 hex digest: {bad[0]!r}")
    lines = [f"photonpack-environment {ENVIRONMENT_LAYOUT}", f"interpreter {interpreter}"]
    lines += [f"wheel {h}" for h in wheels]
    lines += [f"runtime {h} {path}" for path, h in sorted(runtime_files.items())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def create_venv(destination: Path, interpreter: Interpreter) -> Scheme:
    """Write an empty venv (no pip) at ``destination``.

    Written directly: ``python -m venv`` takes 50 ms and embeds the path in scripts.
    """
    site = destination / interpreter.site_packages
    site.mkdir(parents=True)
    (destination / "bin").mkdir()
    if sys.maxsize > 2**32 and sys.platform != "darwin":
        (destination / "lib64").symlink_to("lib")  # as venv does, for platlibdir=lib64
    executable = interpreter.executable
    (destination / "pyvenv.cfg").write_text(
        f"home = {executable.parent}\n"
        "include-system-site-packages = false\n"
        f"version = {interpreter.id.split('-')[1]}\n"
        f"executable = {os.path.realpath(executable)}\n"
    )
    (destination / "bin" / "python").symlink_to(executable)
    for alias in ("python3", f"python{interpreter.short_version}"):
        (destination / "bin" / alias).symlink_to("python")
    return Scheme(
        root=destination,
        site_packages=site,
        scripts=destination / "bin",
        headers=destination / "include" / "site" / f"python{interpreter.short_version}",
    )
