"""The photon's venv: interpreter facts, the environment digest, the venv itself, bytecode.

The venv is relocatable by rename, so the store can build it in a temp
directory and move it into place only when complete: ``bin/python`` links to
the base interpreter by absolute path, ``pyvenv.cfg`` names only that
interpreter, and no file mentions the directory it was built in (``.pyc`` files
name their source relative to site-packages; the import system rewrites that
to the real path when it loads them).

Bytecode is compiled by the environment's own interpreter as *unchecked-hash*
pycs: valid whatever the files' mtimes become, never re-validated against the
source at import (the environment is immutable and its RECORD files hash every
file, pycs included), so a warm start under ``PYTHONDONTWRITEBYTECODE=1``
imports without compiling.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import packaging

from photonpack.errors import InstallError

__all__ = [
    "ENVIRONMENT_LAYOUT",
    "TEST_DIRECTORIES",
    "BytecodeCompiler",
    "Interpreter",
    "Scheme",
    "compile_pyc",
    "create_venv",
    "describe_interpreter",
    "environment_digest",
    "interpreter_id",
    "is_host",
    "pyc_entry",
    "sync_filesystem",
    "wants_bytecode",
]

# Part of every environment digest: bump it when the installed layout changes,
# so that environments built by an older photonpack are never reused.
ENVIRONMENT_LAYOUT = 2  # 2: runtime files recorded in photonpack-<version>.dist-info
_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, kw_only=True)
class Interpreter:
    """The facts about a base interpreter that an environment depends on."""

    executable: Path  # the base interpreter, never a venv's python
    id: str  # "cpython-3.11.7-x86_64-linux-gnu"
    short_version: str  # "3.11"
    site_packages: str  # "lib/python3.11/site-packages", relative to the venv
    cache_tag: str  # "cpython-311"
    tags: tuple[str, ...]  # supported wheel tags, best first


@dataclass(frozen=True, kw_only=True)
class Scheme:
    """Where each wheel scheme lands inside the environment (absolute paths)."""

    root: Path  # "data"
    site_packages: Path  # "purelib" and "platlib": one directory in a venv
    scripts: Path
    headers: Path  # include/site/pythonX.Y; each distribution gets a subdirectory


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


def environment_digest(
    *, interpreter: str, wheel_sha256s: Iterable[str], runtime_files: Mapping[str, str]
) -> str:
    """The hex key of the environment these wheels and runtime files make on ``interpreter``.

    ``runtime_files`` maps each runtime file's path (relative to site-packages)
    to its sha256: a file's place matters as much as its content. Order and
    duplicates do not matter; the installer's layout version is included.
    """
    wheels = sorted(set(wheel_sha256s))
    bad = [h for h in (*wheels, *runtime_files.values()) if not _HEX.match(h)]
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


def compile_pyc(site: bytes, rel: bytes, made: set[bytes]) -> bytes | None:
    """Write the unchecked-hash pyc of ``site/rel``; return its RECORD row, or None.

    What ``py_compile.compile(..., invalidation_mode=UNCHECKED_HASH)`` writes,
    with fewer system calls: one mkdir per ``__pycache__`` (``made`` remembers
    them), no temp file + rename (an environment is not valid until complete
    anyway). The code object names its source relative to site-packages, so
    the pyc does not depend on where it was built. The row is
    ``pyc path NUL sha256 (RECORD form) NUL size``. Self-contained: its source
    also runs in the environment's own interpreter.
    """
    import base64
    import hashlib
    import importlib.util
    import marshal
    import os
    import sys

    # Bytes paths and os functions: the worker handles each file with as little as possible.
    path = os.path.join(site, rel)  # noqa: PTH118
    fd = os.open(path, os.O_RDONLY)
    try:
        source = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
    finally:
        os.close(fd)
    try:
        code = compile(source, os.fsdecode(rel), "exec", dont_inherit=True)
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return None  # not Python 3 source (templates, test data): pip skips these too
    folder, name = os.path.split(path)
    cache = os.path.join(folder, b"__pycache__")  # noqa: PTH118
    if cache not in made:
        os.makedirs(cache, exist_ok=True)  # noqa: PTH103
        made.add(cache)
    head = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little")
    data = head + importlib.util.source_hash(source) + marshal.dumps(code)
    pyc = os.path.join(cache, name[:-3] + f".{sys.implementation.cache_tag}.pyc".encode())  # noqa: PTH118
    # Read-only: a pyc is never rewritten (the import system replaces, not writes).
    fd = os.open(pyc, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return pyc + b"\0sha256=" + digest + b"\0" + str(len(data)).encode()


# Test suites that wheels ship inside their packages (numpy/_core/tests/...):
# about 40% of the compile time of a typical serving stack, never imported by a
# server. They stay importable, compiled on import like any module without a pyc.
TEST_DIRECTORIES = frozenset({"tests", "test"})


def wants_bytecode(relative: Path) -> bool:
    """Whether a ``.py`` file at ``relative`` (to site-packages) gets a pyc at install."""
    return not TEST_DIRECTORIES.intersection(relative.parts[:-1])


# Each worker reads "site NUL relative-path" lines and writes one row per pyc to
# its output file: the RECORD rows come back without hashing the pycs again.
_WORKER_LOOP = """
import sys, warnings
warnings.simplefilter("ignore")
made = set()
with open(sys.argv[1], "wb") as out:
    for line in sys.stdin.buffer:
        site, _, rel = line[:-1].partition(b"\\0")
        row = compile_pyc(site, rel, made)
        if row is not None:
            out.write(row + b"\\n")
"""


@lru_cache(maxsize=1)
def _compile_worker() -> str:
    """The worker's source: built on first use, since a warm start never compiles."""
    import inspect

    return "from __future__ import annotations\n" + inspect.getsource(compile_pyc) + _WORKER_LOOP


def pyc_entry(row: bytes) -> tuple[Path, tuple[str, int]]:
    """A row of :func:`compile_pyc` as ``(pyc path, (RECORD hash, size))``."""
    pyc, digest, size = row.split(b"\0")
    return Path(os.fsdecode(pyc)), (digest.decode(), int(size))


class BytecodeCompiler:
    """Processes of the environment's python compiling site-packages files as they are fed.

    Thread-safe; a context manager: leaving it kills the workers still running.
    ``workers=0`` compiles nothing (bytecode is not wanted).
    """

    def __init__(self, python: Path, *, workers: int) -> None:
        self._stack = contextlib.ExitStack()
        self._logs: list[IO[bytes]] = []
        self._outputs: list[Path] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stack.callback(self._kill)
        self._lock = threading.Lock()
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="pyc-")))
        for index in range(workers):
            log = self._stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - it is
            self._logs.append(log)
            self._outputs.append(folder / f"rows-{index}")
            self._procs.append(
                subprocess.Popen(
                    [str(python), "-I", "-S", "-c", _compile_worker(), str(self._outputs[-1])],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
        self._load = [0] * workers
        self._seen: set[Path] = set()
        self._sites: set[Path] = set()

    def __enter__(self) -> BytecodeCompiler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def submit(self, site: Path, files: Iterable[tuple[Path, int]]) -> None:
        """Queue the ``.py`` files among ``(path, size)`` that lie in ``site``."""
        if not self._procs:
            return
        with self._lock:
            self._sites.add(site)
            for path, size in files:
                if path.suffix != ".py" or path in self._seen or not path.is_relative_to(site):
                    continue
                relative = path.relative_to(site)
                rel = os.fsencode(relative)
                if b"\n" in rel or not wants_bytecode(relative):
                    continue
                self._seen.add(path)  # a file shared by two wheels is listed by both
                worker = self._load.index(min(self._load))
                self._load[worker] += size + 2000  # a fixed cost per file, too
                stdin = self._procs[worker].stdin
                assert stdin is not None
                stdin.write(os.fsencode(site) + b"\0" + rel + b"\n")
            for proc in self._procs:
                assert proc.stdin is not None
                proc.stdin.flush()

    def finish(self) -> dict[Path, tuple[str, int]]:
        """Wait for every queued file; the pycs written, as path -> (RECORD hash, size).

        Raises :class:`InstallError` if a worker failed (disk full, ...).
        """
        for proc in self._procs:
            assert proc.stdin is not None
            proc.stdin.close()
        rows: dict[Path, tuple[str, int]] = {}
        for proc, log, output in zip(self._procs, self._logs, self._outputs, strict=True):
            if proc.wait() != 0:
                log.seek(0)
                lines = log.read().decode(errors="replace").strip().splitlines()
                where = ", ".join(str(site) for site in sorted(self._sites))
                raise InstallError(
                    f"compiling bytecode in {where} failed: "
                    f"{lines[-1] if lines else f'exit status {proc.returncode}'}. "
                    "Check that the disk has free space, or set PHOTONPACK_HOME elsewhere."
                )
            for line in output.read_bytes().splitlines():
                pyc, entry = pyc_entry(line)
                rows[pyc] = entry
        return rows

    def _kill(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):
                    proc.stdin.close()


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem that holds ``path`` to disk (``syncfs``; ``sync`` without it)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # the C library this process runs on
    if not hasattr(libc, "syncfs"):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if libc.syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(path))
    finally:
        os.close(fd)


def is_host(interpreter: Interpreter) -> bool:
    """Whether ``interpreter`` is the one running photonpack (so it can compile in-process)."""
    return os.path.realpath(interpreter.executable) == os.path.realpath(_host_executable())
