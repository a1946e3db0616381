"""Install verified wheels into a fresh environment, per the binary distribution format.

:func:`create_environment` is the entry point: a new venv (see ``venv.py``),
its wheels, photonpack's runtime files, bytecode, and RECORD files.

Nothing a wheel says is trusted until checked (``wheel.py``). Members are read
from a memory map of the wheel, inflated in one call, hashed, and written with
one ``write`` only once their hash matches RECORD; big wheels are split into
chunks so that every core has work, and each ``.py`` file goes to the bytecode
compiler as soon as it is on disk (zlib, sha256 and writes release the GIL;
compilation runs in the environment's own interpreter processes).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import mmap
import os
import re
import shutil
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from photonpack.errors import EnvironmentError_
from photonpack.runtime.venv import (
    BytecodeCompiler,
    Interpreter,
    Scheme,
    compile_pyc,
    create_venv,
    describe_interpreter,
    environment_digest,
    interpreter_id,
    is_host,
    sync_filesystem,
)
from photonpack.runtime.wheel import Wheel, WheelFile, b64, corrupt, read_wheel, record_hash

if TYPE_CHECKING:
    from photonpack.runtime.cache import Linked, WheelCache

__all__ = [
    "INSTALLER",
    "InstalledDist",
    "Wheel",
    "WheelFile",
    "create_environment",
    "environment_digest",
    "extract_wheels",
    "hash_file",
    "install_wheels",
    "interpreter_id",
    "read_wheel",
    "write_new",
    "write_record",
]

INSTALLER = "photonpack"
# photonpack's runtime files form a distribution of the environment like a wheel's:
# a dist-info with a RECORD (so that verify --store re-hashes them), linked like one.
RUNTIME = "photonpack's runtime files"
_VERSION = re.compile(rb'^__version__ = "([A-Za-z0-9.+!_-]+)"$', re.MULTILINE)
# Scripts find the environment's python next to themselves, so an environment
# built in a temp directory keeps working once renamed into place.
SCRIPT_SHEBANG = (
    '#!/bin/sh\n\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")/python" "$0" "$@"\n\' \'\'\'\n'
)
# A unit of extraction work: big wheels are cut into chunks of about this many
# bytes (or files), so that one wheel with thousands of files is not the long pole.
_CHUNK_BYTES = 4 << 20
_CHUNK_FILES = 96
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length

OnWritten = Callable[[Path, Sequence[tuple[Path, int]]], None]


@dataclass(frozen=True, kw_only=True)
class InstalledDist:
    """A distribution written into the environment; its RECORD is still to write."""

    label: str  # the wheel's filename, or RUNTIME
    dist_info: str  # its .dist-info directory in site-packages
    rows: tuple[tuple[Path, str, int], ...]  # (absolute path, "sha256=...", size)


def _target(scheme: Scheme, wheel: Wheel, file: WheelFile) -> Path:
    if file.scheme == "site":  # nearly every file: no dict, no extra path object
        return scheme.site_packages / file.path
    base = {
        "scripts": scheme.scripts,
        "headers": scheme.headers / wheel.name,
        "data": scheme.root,
    }[file.scheme]
    return base / file.path


def conflict(first: str, second: str, path: Path) -> EnvironmentError_:
    """Two wheels (or a wheel and the runtime files) put different content at one path."""
    if RUNTIME in (first, second):
        return EnvironmentError_(
            f"{path} is both one of photonpack's runtime files and a file of wheel "
            f"{second if first == RUNTIME else first}; remove photonpack from the photon's "
            "requirements and lock again."
        )
    return EnvironmentError_(
        f"wheels {first} and {second} both install {path} with different content; a photon "
        "cannot depend on both. Remove one of them from the requirements and lock again."
    )


def _claim(
    wheels: Sequence[Wheel], scheme: Scheme, taken: Mapping[Path, tuple[str, str, int, str]]
) -> list[set[str]]:
    """Which members each wheel skips: identical files shared by wheels are written once.

    ``taken`` holds the files already in the environment (linked from the
    store's cache), as path -> (algorithm, digest, size, wheel filename).
    """
    owners: dict[Path, tuple[str, tuple[str, str, int] | None]] = {
        path: (wheel, (algorithm, digest, size))
        for path, (algorithm, digest, size, wheel) in taken.items()
    }
    skip: list[set[str]] = [set() for _ in wheels]
    for index, wheel in enumerate(wheels):
        targets: list[tuple[Path, str | None, tuple[str, str, int] | None]] = [
            (_target(scheme, wheel, f), f.member, (f.algorithm, f.digest, f.size))
            for f in wheel.files
        ]
        targets += [(scheme.scripts / script, None, None) for script, _m, _a in wheel.scripts]
        for target, member, content in targets:
            owner = owners.setdefault(target, (wheel.filename, content))
            if owner[0] == wheel.filename:
                continue
            if content is None or owner[1] != content:
                raise conflict(owner[0], wheel.filename, target.relative_to(scheme.root))
            assert member is not None
            skip[index].add(member)
    return skip


def _script_text(module: str, attr: str) -> str:
    head, _, rest = attr.partition(".")
    call = f"{head}.{rest}()" if rest else f"{head}()"
    return (
        f"{SCRIPT_SHEBANG}# -*- coding: utf-8 -*-\n"
        f"import re\nimport sys\nfrom {module} import {head}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({call})\n"
    )


def write_new(path: Path, data: bytes, executable: bool, *, readonly: bool = False) -> None:
    # O_EXCL: never write through anything that is already there.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    mode = (0o755 if executable else 0o644) & (0o555 if readonly else 0o777)
    fd = os.open(path, flags, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        if exc.filename is None:  # os.write does not say which file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        os.close(fd)


def _member_data(wheel: Wheel, file: WheelFile, view: memoryview) -> bytes:
    """The member's bytes, inflated from the mapped wheel and checked against RECORD."""
    header = view[file.offset : file.offset + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size or _LOCAL_HEADER.unpack(header)[0] != b"PK\x03\x04":
        raise corrupt(wheel.filename, f"member {file.member} has no valid local header")
    _sig, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    start = file.offset + _LOCAL_HEADER.size + name_length + extra_length
    raw = view[start : start + file.compressed_size]
    if len(raw) != file.compressed_size:
        raise corrupt(wheel.filename, f"member {file.member} is truncated")
    if file.method == zipfile.ZIP_STORED:
        data = bytes(raw)  # a copy: what is hashed is what is written
    elif file.method == zipfile.ZIP_DEFLATED:
        try:  # max_length bounds memory: a member may not inflate past its declared size
            data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, file.size + 1)
        except zlib.error as exc:
            reason = f"member {file.member} is not valid deflate data"
            raise corrupt(wheel.filename, reason) from exc
    else:  # bzip2, lzma: rare in wheels, left to zipfile
        with zipfile.ZipFile(wheel.path) as zf:
            data = zf.read(file.member)
    if len(data) != file.size:
        raise corrupt(
            wheel.filename,
            f"member {file.member} holds {len(data)} bytes but RECORD says {file.size}",
        )
    digest = hashlib.new(file.algorithm, data).digest()
    if b64(digest) != file.digest:
        raise corrupt(
            wheel.filename,
            f"member {file.member} has {file.algorithm} {b64(digest)}, "
            f"but RECORD says {file.digest}",
        )
    return data


def _extract_chunk(
    wheel: Wheel,
    files: Sequence[WheelFile],
    scheme: Scheme,
    mapped: mmap.mmap,
    skip: set[str],
    *,
    readonly: bool,
) -> list[tuple[Path, str, int]]:
    rows: list[tuple[Path, str, int]] = []
    made: set[Path] = set()
    with memoryview(mapped) as view:
        for file in files:
            target = _target(scheme, wheel, file)
            if file.member in skip:
                rows.append((target, f"{file.algorithm}={file.digest}", file.size))
                continue
            data = _member_data(wheel, file, view)
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            if file.scheme == "scripts" and data.startswith(b"#!python"):
                data = SCRIPT_SHEBANG.encode() + data.partition(b"\n")[2]
                write_new(target, data, executable=True, readonly=readonly)
                rows.append((target, record_hash(data), len(data)))
                continue
            write_new(target, data, file.executable, readonly=readonly)
            rows.append((target, f"{file.algorithm}={file.digest}", file.size))
    return rows


def _chunks(files: Sequence[WheelFile]) -> list[Sequence[WheelFile]]:
    chunks: list[Sequence[WheelFile]] = []
    start = size = 0
    for index, file in enumerate(files):
        size += file.size
        if size >= _CHUNK_BYTES or index + 1 - start >= _CHUNK_FILES:
            chunks.append(files[start : index + 1])
            start, size = index + 1, 0
    if start < len(files):
        chunks.append(files[start:])
    return chunks


def _finish(
    wheel: Wheel, scheme: Scheme, rows: list[tuple[Path, str, int]], readonly: bool
) -> InstalledDist:
    for script, module, attr in wheel.scripts:
        data = _script_text(module, attr).encode()
        scheme.scripts.mkdir(parents=True, exist_ok=True)
        write_new(scheme.scripts / script, data, executable=True, readonly=readonly)
        rows.append((scheme.scripts / script, record_hash(data), len(data)))
    installer = scheme.site_packages / wheel.dist_info / "INSTALLER"
    installer.parent.mkdir(parents=True, exist_ok=True)
    write_new(installer, f"{INSTALLER}\n".encode(), executable=False, readonly=readonly)
    rows.append((installer, record_hash(f"{INSTALLER}\n".encode()), len(INSTALLER) + 1))
    return InstalledDist(label=wheel.filename, dist_info=wheel.dist_info, rows=tuple(rows))


def _map(wheel: Wheel) -> mmap.mmap:
    with wheel.path.open("rb") as handle:
        try:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file
            raise corrupt(wheel.filename, f"it is not a valid zip archive ({exc})") from exc


def extract_wheels(
    jobs: Sequence[tuple[Wheel, Scheme, set[str]]],
    *,
    on_written: OnWritten | None = None,
    workers: int | None = None,
    readonly: bool = False,
) -> list[InstalledDist]:
    """Extract checked wheels, each into its scheme, skipping the members named.

    ``on_written(site_packages, [(path, size), ...])`` is called from worker
    threads as files land, so byte-compilation starts before the last wheel
    is out. ``readonly`` creates the files without write permission. Returns
    the distributions in the order of ``jobs``.
    """
    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    # Biggest first, so that the long poles start early.
    order = sorted(range(len(jobs)), key=lambda i: -sum(f.size for f in jobs[i][0].files))
    maps: dict[int, mmap.mmap] = {}
    futures: dict[int, list[Future[list[tuple[Path, str, int]]]]] = {}

    def run(index: int, files: Sequence[WheelFile]) -> list[tuple[Path, str, int]]:
        wheel, scheme, skip = jobs[index]
        rows = _extract_chunk(wheel, files, scheme, maps[index], skip, readonly=readonly)
        if on_written is not None:  # what this wheel wrote: a skipped file is another's
            written = [
                (path, size)
                for file, (path, _digest, size) in zip(files, rows, strict=True)
                if file.member not in skip
            ]
            on_written(scheme.site_packages, written)
        return rows

    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photonpack-wheel")
        )
        stack.callback(lambda: pool.shutdown(wait=True, cancel_futures=True))
        for index in order:
            wheel = jobs[index][0]
            maps[index] = _map(wheel)
            stack.callback(_close, maps[index])
            futures[index] = [pool.submit(run, index, part) for part in _chunks(wheel.files)]
        dists = []
        for index, (wheel, scheme, _skip) in enumerate(jobs):
            rows = [row for future in futures[index] for row in future.result()]
            dists.append(_finish(wheel, scheme, rows, readonly))
    return dists


def _close(mapped: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):  # a view still alive after an error
        mapped.close()


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
    taken: Mapping[Path, tuple[str, str, int, str]] = {},
    readonly: bool = False,
) -> list[InstalledDist]:
    """Check every wheel, then extract them all in parallel into ``scheme``.

    ``wheels`` pairs each wheel filename with the verified file that holds it;
    ``taken`` lists the files already in the environment (see ``_claim``).
    Returns the distributions sorted by wheel filename.
    """
    checked = check_wheels(wheels, interpreter=interpreter, workers=workers)
    skips = _claim(checked, scheme, taken)
    jobs = [(wheel, scheme, skip) for wheel, skip in zip(checked, skips, strict=True)]
    return extract_wheels(jobs, on_written=on_written, workers=workers, readonly=readonly)


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

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    lines = sorted((relative(path), digest, str(size)) for path, digest, size in rows)
    writer.writerows([*lines, (relative(record), "", "")])
    write_new(record, out.getvalue().encode(), executable=False, readonly=readonly)


def hash_file(path: Path) -> tuple[str, int]:
    """The RECORD hash and size of a file on disk."""
    data = path.read_bytes()
    return record_hash(data), len(data)


def pyc_rows(
    dist: InstalledDist, site: Path, cache_tag: str, compiled: Mapping[Path, tuple[str, int]]
) -> dict[Path, tuple[str, int]]:
    """The RECORD rows of the pycs compiled from the distribution's sources."""
    rows: dict[Path, tuple[str, int]] = {}
    for path, _digest, _size in dist.rows:
        if path.suffix == ".py":
            pyc = path.parent / "__pycache__" / f"{path.stem}.{cache_tag}.pyc"
            if pyc in compiled:
                rows[pyc] = compiled[pyc]
    return rows


def _runtime_target(site: Path, relpath: str) -> Path:
    parts = PurePosixPath(relpath).parts
    if relpath.startswith("/") or not parts or any(p in ("..", ".") for p in parts):
        raise EnvironmentError_(
            f"runtime file path {relpath!r} is not a relative path inside site-packages"
        )
    return site.joinpath(*parts)


def runtime_dist_info(runtime_files: Mapping[str, Path]) -> str:
    """The dist-info of the runtime files: ``photonpack-<their version>.dist-info``."""
    about = runtime_files.get("photonpack/__about__.py")
    found = _VERSION.search(about.read_bytes()) if about is not None else None
    return f"photonpack-{found.group(1).decode() if found else '0'}.dist-info"


def place_runtime(
    site: Path,
    runtime_files: Mapping[str, Path],
    taken: Iterable[Path],
    *,
    readonly: bool = False,
) -> InstalledDist:
    """Copy photonpack's runtime files into site-packages; none may be a wheel's file.

    Returns them as a distribution (with ``METADATA`` and ``INSTALLER``) whose
    RECORD is still to write.
    """
    taken = set(taken)
    dist_info = runtime_dist_info(runtime_files)
    name, _, version = dist_info.removesuffix(".dist-info").partition("-")
    files = {relpath: source.read_bytes() for relpath, source in runtime_files.items()}
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        "Summary: photonpack's serving runtime, as shipped in the photon's archive\n"
    ).encode()
    files[f"{dist_info}/INSTALLER"] = f"{INSTALLER}\n".encode()
    rows = []
    for relpath, data in sorted(files.items()):
        target = _runtime_target(site, relpath)
        if target in taken or target.exists():
            raise EnvironmentError_(
                f"runtime file {relpath} is also installed by a wheel of the photon; "
                "remove photonpack from the photon's requirements and lock again."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        write_new(target, data, executable=False, readonly=readonly)
        rows.append((target, record_hash(data), len(data)))
    return InstalledDist(label=RUNTIME, dist_info=dist_info, rows=tuple(rows))


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
            pyc, digest, size = row.split(b"\0")
            compiled[Path(os.fsdecode(pyc))] = (digest.decode(), int(size))
    return compiled


def _build(
    destination: Path,
    interpreter: Interpreter,
    wheels: Sequence[tuple[str, Path]],
    runtime_files: Mapping[str, Path],
    *,
    compile_bytecode: bool,
    cache: WheelCache | None,
) -> None:
    scheme = create_venv(destination, interpreter)
    site = scheme.site_packages
    fresh: Sequence[tuple[str, Path]] = wheels
    place = bool(runtime_files)
    linked: Linked = {}
    if cache is not None:
        fresh, place, linked = cache.link(wheels, runtime_files, scheme, interpreter)
    readonly = cache is not None  # linked files are shared: none may be written through
    dists: list[InstalledDist] = []
    compiled: dict[Path, tuple[str, int]] = {}
    flushing: Future[None] | None = None
    if fresh:
        workers = max(1, os.cpu_count() or 1) if compile_bytecode else 0
        with BytecodeCompiler(interpreter.executable, workers=workers) as compiler:
            dists = install_wheels(
                fresh, scheme, interpreter=interpreter, on_written=compiler.submit,
                taken=linked, readonly=readonly,
            )  # fmt: skip
            # The wheels' bytes go to disk while the last modules compile.
            flusher = ThreadPoolExecutor(1, thread_name_prefix="photonpack-sync")
            flushing = flusher.submit(sync_filesystem, destination)
            flusher.shutdown(wait=False)
            if place:
                taken = [*linked, *(path for dist in dists for path, _h, _s in dist.rows)]
                dists.append(place_runtime(site, runtime_files, taken, readonly=readonly))
                compiler.submit(site, [(path, size) for path, _h, size in dists[-1].rows])
            compiled = compiler.finish()
    elif place:  # every wheel linked: a few runtime files, compiled in this process if it can
        dists.append(place_runtime(site, runtime_files, linked, readonly=readonly))
        if compile_bytecode:
            compiled = compile_few(interpreter, site, [path for path, _h, _s in dists[-1].rows])
    # A source skipped because a linked wheel put it there already has its pyc.
    compiled |= {
        path: (f"{algorithm}={digest}", size)
        for path, (algorithm, digest, size, _wheel) in linked.items()
        if path.suffix == ".pyc"
    }
    for dist in dists:
        extra = pyc_rows(dist, site, interpreter.cache_tag, compiled)
        write_record(dist, scheme, extra=extra, readonly=readonly)
    if flushing is not None:  # durable before anyone marks it complete: a power cut
        flushing.result()  # cannot leave a "complete" environment with empty files
        sync_filesystem(destination)
    if cache is not None:
        cache.installed(dists)


def create_environment(
    destination: Path,
    *,
    wheels: Sequence[Path] | Mapping[str, Path],
    runtime_files: Mapping[str, Path] = {},
    python: Path | None = None,
    compile_bytecode: bool = True,
    cache: WheelCache | None = None,
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
        raise EnvironmentError_(
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
        )  # fmt: skip
    except BaseException as exc:
        shutil.rmtree(destination, ignore_errors=True)
        if isinstance(exc, OSError):
            where = exc.filename or destination
            raise EnvironmentError_(
                f"cannot create the environment at {destination}: {exc.strerror or exc} "
                f"({where}). Check that the disk has free space and the directory is "
                "writable, or set PHOTONPACK_HOME to another place."
            ) from exc
        raise
