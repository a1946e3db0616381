"""Install verified wheels into a fresh environment, per the binary distribution format.

:func:`create_environment` is the entry point: a new venv (see ``venv.py``),
its wheels, photonpack's runtime files, bytecode, and RECORD files.

Nothing a wheel says is trusted until checked (``wheel.py``); the checked
members are written by ``extract.py``, and each ``.py`` file goes to the
bytecode compiler as soon as it is on disk (compilation runs in the
environment's own interpreter processes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from photonpack._fs import sync_filesystem
from photonpack.errors import InstallError
from photonpack.install.bytecode import BytecodeCompiler, compile_pyc, pyc_entry
from photonpack.install.extract import (
    InstalledDist,
    Job,
    OnWritten,
    extract_wheels,
    target_path,
    write_new,
)
from photonpack.install.interpreter import (
    Interpreter,
    describe_interpreter,
    interpreter_id,
    is_host,
)
from photonpack.install.owners import Linked, Owner, conflict
from photonpack.install.record import RecordRow, format_record
from photonpack.install.serving_dist import place_runtime
from photonpack.install.venv import Scheme, create_venv, environment_digest
from photonpack.install.wheel import Wheel, read_wheel

if TYPE_CHECKING:
    from photonpack.install.cache import WheelCache

__all__ = [
    "InstallProgress",
    "check_wheels",
    "create_environment",
    "environment_digest",
    "install_wheels",
    "interpreter_id",
    "write_record",
]


class InstallProgress(Protocol):
    """Where an install reports (the CLI's progress line): bytes of files written, of a total."""

    def begin(self, total: int) -> None: ...
    def update(self, done: int) -> None: ...


def _claim(wheels: Sequence[Wheel], scheme: Scheme, taken: Mapping[str, Owner]) -> list[Job]:
    """Each wheel's extraction job: where its files go, and the members it skips.

    Identical files shared by wheels are written once.

    ``taken`` holds the files already in the environment (linked from the
    store's cache), as absolute path -> its owner.
    """
    owners: dict[str, tuple[str, tuple[str, str, int] | None]] = {
        path: (wheel, (algorithm, digest, size))
        for path, (algorithm, digest, size, wheel) in taken.items()
    }
    jobs = []
    for wheel in wheels:
        paths = [target_path(scheme, wheel, f) for f in wheel.files]
        claims: list[tuple[Path, str | None, tuple[str, str, int] | None]] = [
            (path, f.member, (f.algorithm, f.digest, f.size))
            for path, f in zip(paths, wheel.files, strict=True)
        ]
        claims += [(scheme.scripts / script, None, None) for script, _m, _a in wheel.scripts]
        skip: set[str] = set()
        for target, member, content in claims:
            owner = owners.setdefault(str(target), (wheel.filename, content))
            if owner[0] == wheel.filename:
                continue
            if content is None or owner[1] != content:
                raise conflict(owner[0], wheel.filename, target.relative_to(scheme.root))
            assert member is not None
            skip.add(member)
        jobs.append(Job(wheel=wheel, scheme=scheme, targets=paths, skip=skip))
    return jobs


def check_wheels(
    wheels: Sequence[tuple[str, Path]], *, interpreter: Interpreter, workers: int | None = None
) -> list[Wheel]:
    """Read and check every wheel (in parallel), sorted by filename."""
    tags = frozenset(interpreter.tags)
    with ThreadPoolExecutor(max_workers=workers or min(8, 2 * (os.cpu_count() or 1))) as pool:
        return list(
            pool.map(
                lambda w: read_wheel(
                    w[1], filename=w[0], supported_tags=tags, interpreter=interpreter.id
                ),
                sorted(wheels),
            )
        )


def install_wheels(
    wheels: Sequence[tuple[str, Path]],
    scheme: Scheme,
    *,
    interpreter: Interpreter,
    on_written: OnWritten | None = None,
    workers: int | None = None,
    taken: Mapping[str, Owner] = {},
    readonly: bool = False,
    progress: InstallProgress | None = None,
) -> list[InstalledDist]:
    """Check every wheel, then extract them all in parallel into ``scheme``.

    ``wheels`` pairs each wheel filename with the verified file that holds it;
    ``taken`` lists the files already in the environment (see ``_claim``);
    ``progress`` hears the bytes of files to write, then those written so far.
    Returns the distributions sorted by wheel filename.
    """
    checked = check_wheels(wheels, interpreter=interpreter, workers=workers)
    jobs = _claim(checked, scheme, taken)
    if progress is not None:
        progress.begin(
            sum(f.size for job in jobs for f in job.wheel.files if f.member not in job.skip)
        )
        on_written = _counted(on_written, progress)
    return extract_wheels(jobs, on_written=on_written, workers=workers, readonly=readonly)


def _counted(on_written: OnWritten | None, progress: InstallProgress) -> OnWritten:
    """``on_written``, and the running total of bytes written told to ``progress``."""
    lock = threading.Lock()
    done = 0

    def written(site: Path, files: Sequence[tuple[Path, int]]) -> None:
        nonlocal done
        if on_written is not None:
            on_written(site, files)
        with lock:
            done += sum(size for _path, size in files)
            progress.update(done)

    return written


def write_record(
    dist: InstalledDist,
    scheme: Scheme,
    *,
    extra: Mapping[Path, tuple[str, int]] = {},
    readonly: bool = False,
) -> None:
    """Write the distribution's RECORD for the installed files (and ``extra``, e.g. .pyc)."""
    base = scheme.site_packages
    record = base / dist.dist_info / "RECORD"
    rows = [(path, digest, size) for path, digest, size in dist.rows]
    rows += [(path, digest, size) for path, (digest, size) in extra.items()]
    prefix = f"{base}{os.sep}"

    def relative(path: Path) -> str:  # os.path.relpath, fast for the usual case
        text = str(path)
        return text[len(prefix) :] if text.startswith(prefix) else os.path.relpath(text, base)

    lines = [RecordRow(relative(path), digest, size) for path, digest, size in rows]
    data = format_record(lines, own_path=relative(record))
    write_new(record, data, executable=False, readonly=readonly)


def pyc_rows(
    dist: InstalledDist, site: Path, cache_tag: str, compiled: Mapping[Path, tuple[str, int]]
) -> dict[Path, tuple[str, int]]:
    """The RECORD rows of the pycs compiled from the distribution's sources."""
    rows: dict[Path, tuple[str, int]] = {}
    suffix = f".{cache_tag}.pyc"
    for path, _digest, _size in dist.rows:
        folder, name = os.path.split(path)
        if name.endswith(".py"):
            # One Path built per source (it runs for each of an environment's files).
            pyc = Path(folder, "__pycache__", name[:-3] + suffix)
            if pyc in compiled:
                rows[pyc] = compiled[pyc]
    return rows


def compile_few(
    interpreter: Interpreter, site: Path, files: Iterable[Path]
) -> dict[Path, tuple[str, int]]:
    """Compile a handful of files (in this process when it runs the same interpreter).

    Returns the pycs written, as ``BytecodeCompiler.finish`` does.
    """
    sources = [path for path in files if path.suffix == ".py"]
    if not sources:
        return {}
    if not is_host(interpreter):
        with BytecodeCompiler(interpreter.executable, workers=1) as compiler:
            compiler.submit(site, [(path, 0) for path in sources])
            return compiler.finish()
    made: set[bytes] = set()
    compiled = {}
    for path in sources:
        row = compile_pyc(os.fsencode(site), os.fsencode(path.relative_to(site)), made)
        if row is not None:
            pyc, entry = pyc_entry(row)
            compiled[pyc] = entry
    return compiled


def _build(
    destination: Path,
    interpreter: Interpreter,
    wheels: Sequence[tuple[str, Path]],
    runtime_files: Mapping[str, Path],
    *,
    compile_bytecode: bool,
    cache: WheelCache | None,
    progress: InstallProgress | None,
) -> None:
    scheme = create_venv(destination, interpreter)
    with contextlib.ExitStack() as stack:
        fresh: Sequence[tuple[str, Path]] = wheels
        place = bool(runtime_files)
        linked: Linked = {}
        if cache is not None:  # linked in the background while the rest is installed
            linking = cache.link(wheels, runtime_files, scheme, interpreter)
            fresh, place, linked = stack.enter_context(linking)
        dists, compiled, flushing = _install(
            scheme, interpreter, fresh, runtime_files if place else {},
            compile_bytecode=compile_bytecode, linked=linked, readonly=cache is not None,
            progress=progress,
        )  # fmt: skip
    if fresh:  # a source skipped because a linked wheel put it there already has its pyc
        compiled |= {
            Path(path): (f"{algorithm}={digest}", size)
            for path, (algorithm, digest, size, _wheel) in linked.items()
            if path.endswith(".pyc")
        }
    for dist in dists:
        extra = pyc_rows(dist, scheme.site_packages, interpreter.cache_tag, compiled)
        write_record(dist, scheme, extra=extra, readonly=cache is not None)
    # Durable before anyone marks it complete: a power cut cannot leave a "complete"
    # environment with empty files or missing links.
    if flushing is not None:
        flushing.result()
    sync_filesystem(destination)
    if cache is not None:
        cache.installed(dists)


def _install(
    scheme: Scheme,
    interpreter: Interpreter,
    fresh: Sequence[tuple[str, Path]],
    runtime_files: Mapping[str, Path],
    *,
    compile_bytecode: bool,
    linked: Linked,
    readonly: bool,
    progress: InstallProgress | None = None,
) -> tuple[list[InstalledDist], dict[Path, tuple[str, int]], Future[None] | None]:
    """Install the ``fresh`` wheels and place the runtime files, beside ``linked`` ones.

    Returns the distributions written, the pycs compiled, and the flush of
    the wheels' bytes to disk started once they are out.
    """
    site = scheme.site_packages
    place = bool(runtime_files)
    dists: list[InstalledDist] = []
    compiled: dict[Path, tuple[str, int]] = {}
    flushing: Future[None] | None = None
    if fresh:
        workers = max(1, os.cpu_count() or 1) if compile_bytecode else 0
        with BytecodeCompiler(interpreter.executable, workers=workers) as compiler:
            dists = install_wheels(
                fresh, scheme, interpreter=interpreter, on_written=compiler.submit,
                taken=linked, readonly=readonly, progress=progress,
            )  # fmt: skip
            # The wheels' bytes, then the pycs written so far, go to disk while the last
            # modules compile: the final flush is left with the last few.
            finished = threading.Event()
            flusher = ThreadPoolExecutor(1, thread_name_prefix="photonpack-sync")
            flushing = flusher.submit(_flush_until, scheme.root, finished)
            flusher.shutdown(wait=False)
            try:
                if place:
                    taken = [*linked, *(str(path) for dist in dists for path, _h, _s in dist.rows)]
                    dists.append(place_runtime(site, runtime_files, taken, readonly=readonly))
                    compiler.submit(site, [(path, size) for path, _h, size in dists[-1].rows])
                compiled = compiler.finish()
            finally:
                finished.set()
    elif place:  # every wheel linked: a few runtime files, compiled in this process if it can
        dists.append(place_runtime(site, runtime_files, linked, readonly=readonly))
        if compile_bytecode:
            compiled = compile_few(interpreter, site, [path for path, _h, _s in dists[-1].rows])
    return dists, compiled, flushing


# Seconds between flushes of the environment's filesystem while bytecode is compiled.
_FLUSH_INTERVAL = 0.5


def _flush_until(root: Path, finished: threading.Event) -> None:
    """Flush ``root``'s filesystem now, then every _FLUSH_INTERVAL until ``finished`` is set.

    The flush before the environment is marked complete then has little left
    to write (pycs land until the end). A flush started is finished before this
    returns: the caller waits for it before its own, final one.
    """
    while True:
        sync_filesystem(root)
        if finished.wait(_FLUSH_INTERVAL):
            return


def create_environment(
    destination: Path,
    *,
    wheels: Sequence[Path] | Mapping[str, Path],
    runtime_files: Mapping[str, Path] = {},
    python: Path | None = None,
    compile_bytecode: bool = True,
    cache: WheelCache | None = None,
    progress: InstallProgress | None = None,
) -> None:
    """Build a complete, relocatable venv at ``destination``, which must not exist.

    ``wheels`` are verified files: paths named like wheels, or a mapping from
    wheel filename to file (a store blob). ``runtime_files`` maps a path
    relative to site-packages to a verified file placed there. With ``cache``,
    the wheels an environment of the store already holds are hard-linked from
    it and the others installed (see ``cache.py``); files are then read-only
    and bytecode is always included. On any failure nothing is
    left at ``destination``.
    """
    if os.path.lexists(destination):
        raise InstallError(
            f"cannot create an environment at {destination}: something is already there. "
            "Environments are always built fresh; remove it or pick another path."
        )
    interpreter = describe_interpreter(python)
    try:
        pairs = (
            list(wheels.items())
            if isinstance(wheels, Mapping)
            else [(path.name, path) for path in wheels]
        )
        _build(
            destination, interpreter, pairs, runtime_files,
            compile_bytecode=compile_bytecode or cache is not None, cache=cache,
            progress=progress,
        )  # fmt: skip
    except BaseException as exc:
        shutil.rmtree(destination, ignore_errors=True)
        if isinstance(exc, OSError):
            where = exc.filename or destination
            raise InstallError(
                f"cannot create the environment at {destination}: {exc.strerror or exc} "
                f"({where}). Check that the disk has free space and the directory is "
                "writable, or set PHOTONPACK_HOME to another place."
            ) from exc
        raise
