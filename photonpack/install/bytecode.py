"""Bytecode for an environment: unchecked-hash pycs, compiled by its own interpreter.

Unchecked-hash pycs are valid whatever the files' mtimes become and are never
re-validated against the source at import (the environment is immutable and
its RECORD files hash every file, pycs included), so a warm start under
``PYTHONDONTWRITEBYTECODE=1`` imports without compiling. A pyc names its
source relative to site-packages (the import system rewrites that to the real
path when it loads it), so it does not depend on where the environment was
built. :class:`BytecodeCompiler` runs worker processes of the
environment's python; :func:`compile_pyc` is also called in-process when that
python is the one running photonpack.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import IO

from photonpack.errors import InstallError

__all__ = ["TEST_DIRECTORIES", "BytecodeCompiler", "compile_pyc", "pyc_entry", "wants_bytecode"]


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
        self._lock = threading.Lock()
        folder = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="pyc-")))
        # Registered after the folder: the workers are killed before it is removed, so a
        # worker still writing its rows cannot make the removal fail ("Directory not empty").
        self._stack.callback(self._kill)
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
