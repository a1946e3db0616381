"""The base interpreter an environment is built on: what it is, and what of it matters.

An environment depends on its interpreter's identity (``interpreter_id``:
implementation, version, ABI flags, platform), its site-packages layout,
bytecode cache tag and wheel tags. They are read in this process for the
interpreter running photonpack, and by running the same functions' source in
any other interpreter (``-I -S``, with only ``packaging`` on its path). A warm
start asks only for the identity, without listing wheel tags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import packaging

from photonpack.errors import InstallError

__all__ = ["Interpreter", "describe_interpreter", "interpreter_id", "is_host"]


@dataclass(frozen=True, kw_only=True)
class Interpreter:
    """The facts about a base interpreter that an environment depends on."""

    executable: Path  # the base interpreter, never a venv's python
    id: str  # "cpython-3.11.7-x86_64-linux-gnu"
    short_version: str  # "3.11"
    site_packages: str  # "lib/python3.11/site-packages", relative to the venv
    cache_tag: str  # "cpython-311"
    tags: tuple[str, ...]  # supported wheel tags, best first


def _identity() -> str:
    # Self-contained, as _describe: "cpython-3.11.7-x86_64-linux-gnu".
    import platform
    import sys
    import sysconfig

    multiarch = sysconfig.get_config_var("MULTIARCH") or sysconfig.get_platform().replace("-", "_")
    return f"{sys.implementation.name}-{platform.python_version()}{sys.abiflags}-{multiarch}"


def _describe() -> dict[str, Any]:
    # Self-contained but for _identity: their source also runs inside other interpreters.
    import sys
    import sysconfig

    from packaging.tags import sys_tags

    short = f"{sys.version_info[0]}.{sys.version_info[1]}"
    threaded = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    return {
        "executable": getattr(sys, "_base_executable", None) or sys.executable,
        "id": _identity(),
        "short_version": short,
        "site_packages": f"lib/python{short}{threaded}/site-packages",
        "cache_tag": sys.implementation.cache_tag,
        "tags": [str(tag) for tag in sys_tags()],
    }


def _host_executable() -> Path:
    return Path(getattr(sys, "_base_executable", None) or sys.executable)


def _probe(python: Path) -> dict[str, Any]:
    import inspect

    script = (
        "from __future__ import annotations\n"
        + inspect.getsource(_identity)
        + inspect.getsource(_describe)
        + "import json, sys\nsys.path.insert(0, sys.argv[1])\nprint(json.dumps(_describe()))\n"
    )
    packaging_root = str(Path(packaging.__file__).parent.parent)
    try:
        out = subprocess.run(
            [str(python), "-I", "-S", "-c", script, packaging_root],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        facts: dict[str, Any] = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        stderr = getattr(exc, "stderr", None) or ""
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else str(exc)
        raise InstallError(
            f"cannot run the interpreter {python} ({reason}). Pass the path of a working "
            "CPython 3 interpreter, or none to use the one running photonpack."
        ) from exc
    return facts


@lru_cache(maxsize=8)
def describe_interpreter(python: Path | None = None) -> Interpreter:
    """What an environment built on ``python`` (default: this base interpreter) depends on."""
    host = _host_executable()
    same = python is None or os.path.realpath(python) == os.path.realpath(host)
    facts = _describe() if same else _probe(python)  # type: ignore[arg-type]
    if same:
        facts["executable"] = str(host)
    return Interpreter(
        executable=Path(facts["executable"]), id=facts["id"],
        short_version=facts["short_version"], site_packages=facts["site_packages"],
        cache_tag=facts["cache_tag"], tags=tuple(facts["tags"]),
    )  # fmt: skip


def interpreter_id(python: Path | None = None) -> str:
    """``<implementation>-<version><abiflags>-<multiarch>``: ``cpython-3.11.7-x86_64-linux-gnu``.

    For this interpreter (a warm start's question) without listing its wheel tags.
    """
    return _host_identity() if python is None else describe_interpreter(python).id


@lru_cache(maxsize=1)
def _host_identity() -> str:
    return _identity()


def is_host(interpreter: Interpreter) -> bool:
    """Whether ``interpreter`` is the one running photonpack (so it can compile in-process)."""
    return os.path.realpath(interpreter.executable) == os.path.realpath(_host_executable())
