"""Install verified wheels into a fresh environment, per the binary distribution format.

:func:`create_environment` is the entry point: a new venv (see ``venv.py``),
its wheels, photonpack's runtime files, bytecode, and RECORD files.

Nothing a wheel says is trusted until checked: every member must be listed in
its RECORD with a matching hash and size, nothing may be unlisted, and no path
may leave its scheme directory. Files are streamed, hashed and written in one
pass, in parallel (zlib and sha256 release the GIL); a wheel that lies is
refused with :class:`IntegrityError` naming the wheel and the member, and the
caller throws the half-built environment away.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from photonpack.errors import EnvironmentError_, IntegrityError
from photonpack.runtime.venv import (
    BytecodeCompiler,
    Interpreter,
    Scheme,
    create_venv,
    describe_interpreter,
    environment_digest,
    interpreter_id,
)

__all__ = [
    "INSTALLER",
    "InstalledDist",
    "Wheel",
    "WheelFile",
    "create_environment",
    "environment_digest",
    "hash_file",
    "install_wheels",
    "interpreter_id",
    "read_wheel",
    "write_record",
]

INSTALLER = "photonpack"
# Scripts find the environment's python next to themselves, so an environment
# built in a temp directory keeps working once renamed into place.
SCRIPT_SHEBANG = (
    '#!/bin/sh\n\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")/python" "$0" "$@"\n\' \'\'\'\n'
)
_CHUNK = 1 << 20
_HASHES = frozenset({"sha256", "sha384", "sha512"})
_SIGNATURES = frozenset({"RECORD.jws", "RECORD.p7s"})
_DATA_SCHEMES = frozenset({"purelib", "platlib", "scripts", "headers", "data"})
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_ENTRY_POINT = re.compile(r"^(?P<module>[\w.]+)\s*:\s*(?P<attr>[\w.]+)\s*(\[[^\]]*\])?$")
_SCRIPT_NAME = re.compile(r"^[\w.+-]+$")


@dataclass(frozen=True, kw_only=True)
class WheelFile:
    """One member of a wheel, checked against RECORD, and where it goes."""

    member: str
    scheme: str  # "site" | "scripts" | "headers" | "data"
    path: str  # POSIX path relative to the scheme directory
    algorithm: str
    digest: str  # urlsafe base64 without padding, as RECORD writes it
    size: int
    executable: bool


@dataclass(frozen=True, kw_only=True)
class Wheel:
    """A wheel whose listing, RECORD and tags were checked, ready to extract."""

    path: Path
    filename: str
    name: str
    dist_info: str
    files: tuple[WheelFile, ...]
    scripts: tuple[tuple[str, str, str], ...]  # (script name, module, attribute)


@dataclass(frozen=True, kw_only=True)
class InstalledDist:
    """A distribution written into the environment; its RECORD is still to write."""

    wheel: Wheel
    rows: tuple[tuple[Path, str, int], ...]  # (absolute path, "sha256=...", size)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _corrupt(filename: str, reason: str) -> IntegrityError:
    return IntegrityError(
        f"wheel {filename} cannot be trusted: {reason}. The archive that carries it was "
        "built from a broken or tampered wheel; rebuild it from a clean package index."
    )


def _safe_parts(filename: str, member: str) -> tuple[str, ...]:
    parts = tuple(member.split("/"))
    unsafe = (
        member.startswith("/")
        or any(ch in member for ch in "\\\x00\n\r")
        or any(part in ("", ".", "..") for part in parts)
    )
    if unsafe:
        raise _corrupt(filename, f"member {member!r} is not a safe relative path")
    return parts


def _parse_record(filename: str, record_name: str, data: bytes) -> dict[str, tuple[str, str, int]]:
    entries: dict[str, tuple[str, str, int]] = {}
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _corrupt(filename, f"{record_name} is not a valid CSV file ({exc})") from exc
    for number, row in enumerate(rows, start=1):
        if not row:
            continue
        if len(row) != 3:
            raise _corrupt(filename, f"{record_name} line {number} has {len(row)} fields, not 3")
        path, hash_field, size = row
        if path == record_name or PurePosixPath(path).name in _SIGNATURES:
            continue
        algorithm, _, digest = hash_field.partition("=")
        if algorithm not in _HASHES or not digest or not size.isdigit():
            raise _corrupt(filename, f"{record_name} lists {path} without a sha256 hash and size")
        if path in entries:
            raise _corrupt(filename, f"{record_name} lists {path} twice")
        entries[path] = (algorithm, digest, int(size))
    return entries


def _dist_info(filename: str, name: str, members: Iterable[str]) -> str:
    tops = {m.split("/", 1)[0] for m in members}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(found) != 1:
        raise _corrupt(filename, f"expected one .dist-info directory, found {found or 'none'}")
    dist_name = found[0][: -len(".dist-info")].rpartition("-")[0]
    if canonicalize_name(dist_name) != name:
        raise _corrupt(filename, f"{found[0]} does not belong to the project {name}")
    return found[0]


def _place(filename: str, member: str, dist_info: str) -> tuple[str, str]:
    parts = _safe_parts(filename, member)
    data_dir = dist_info[: -len(".dist-info")] + ".data"
    if parts[0] != data_dir:
        return "site", member
    if len(parts) < 3 or parts[1] not in _DATA_SCHEMES:
        raise _corrupt(filename, f"member {member} is not in a known {data_dir} scheme")
    scheme = {"purelib": "site", "platlib": "site"}.get(parts[1], parts[1])
    return scheme, "/".join(parts[2:])


def _entry_point_scripts(filename: str, text: str) -> tuple[tuple[str, str, str], ...]:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise _corrupt(filename, f"entry_points.txt is not valid ({exc})") from exc
    scripts: list[tuple[str, str, str]] = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for script, value in parser.items(section):
            match = _ENTRY_POINT.match(value.strip())
            valid = match and _DOTTED.match(match["module"]) and _DOTTED.match(match["attr"])
            if not match or not valid or not _SCRIPT_NAME.match(script) or script in (".", ".."):
                raise _corrupt(filename, f"entry point {script} = {value} is not valid")
            scripts.append((script, match["module"], match["attr"]))
    return tuple(sorted(scripts))


def read_wheel(
    path: Path, *, supported_tags: frozenset[str], interpreter: str, filename: str | None = None
) -> Wheel:
    """Open a wheel, check its tags, listing and RECORD, and return what to install.

    ``filename`` is the wheel's name when ``path`` is not named like one (a store blob).
    """
    filename = filename or path.name
    try:
        name, _version, _build, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise EnvironmentError_(f"{filename} is not a wheel file name ({exc})") from exc
    if not any(str(tag) in supported_tags for tag in tags):
        raise EnvironmentError_(
            f"wheel {filename} is built for {', '.join(sorted(map(str, tags)))}, which "
            f"{interpreter} cannot run. Build the photon for this machine's target "
            "(photonpack targets name interpreter and platform, e.g. cp311-manylinux_2_28_x86_64)."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            return _check_wheel(path, filename, name, zf)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise _corrupt(filename, f"it is not a valid zip archive ({exc})") from exc


def _check_wheel(path: Path, filename: str, name: str, zf: zipfile.ZipFile) -> Wheel:
    infos = zf.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise _corrupt(filename, "a member name appears twice in the zip directory")
    dist_info = _dist_info(filename, name, names)
    record_name = f"{dist_info}/RECORD"
    if record_name not in names:
        raise _corrupt(filename, f"{record_name} is missing")
    record = _parse_record(filename, record_name, zf.read(record_name))
    wheel_meta = zf.read(f"{dist_info}/WHEEL").decode("utf-8", "replace")
    version = re.search(r"^Wheel-Version:\s*(\d+)\.", wheel_meta, re.MULTILINE)
    if version is None or version[1] != "1":
        raise _corrupt(filename, "its WHEEL file does not declare Wheel-Version 1.x")
    files: list[WheelFile] = []
    for info in infos:
        mode = info.external_attr >> 16
        member = info.filename
        if info.is_dir() or member == record_name:
            continue
        _safe_parts(filename, member)
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # symlinks, devices, ...
            raise _corrupt(filename, f"member {member} is not a regular file")
        if info.flag_bits & 0x1:
            raise _corrupt(filename, f"member {member} is encrypted")
        if member.startswith(f"{dist_info}/") and PurePosixPath(member).name in _SIGNATURES:
            continue
        if member not in record:
            raise _corrupt(filename, f"member {member} is not listed in {record_name}")
        algorithm, digest, size = record.pop(member)
        if size != info.file_size:
            raise _corrupt(
                filename,
                f"member {member} is {info.file_size} bytes but {record_name} says {size}",
            )
        scheme, rel = _place(filename, member, dist_info)
        executable = bool(mode & 0o111) or scheme == "scripts"
        files.append(
            WheelFile(
                member=member, scheme=scheme, path=rel, algorithm=algorithm,
                digest=digest, size=size, executable=executable,
            )
        )  # fmt: skip
    if record:
        missing = sorted(record)[0]
        raise _corrupt(filename, f"{record_name} lists {missing}, which the wheel does not hold")
    entry_points = f"{dist_info}/entry_points.txt"
    scripts: tuple[tuple[str, str, str], ...] = ()
    if entry_points in names:
        scripts = _entry_point_scripts(filename, zf.read(entry_points).decode("utf-8"))
    return Wheel(
        path=path, filename=filename, name=name, dist_info=dist_info,
        files=tuple(files), scripts=scripts,
    )  # fmt: skip


def _target(scheme: Scheme, wheel: Wheel, file: WheelFile) -> Path:
    base = {
        "site": scheme.site_packages,
        "scripts": scheme.scripts,
        "headers": scheme.headers / wheel.name,
        "data": scheme.root,
    }[file.scheme]
    return base / file.path


def _claim(wheels: Sequence[Wheel], scheme: Scheme) -> list[set[str]]:
    """Which members each wheel skips: identical files shared by wheels are written once."""
    owners: dict[Path, tuple[Wheel, tuple[str, str, int] | None]] = {}
    skip: list[set[str]] = [set() for _ in wheels]
    for index, wheel in enumerate(wheels):
        targets: list[tuple[Path, str | None, tuple[str, str, int] | None]] = [
            (_target(scheme, wheel, f), f.member, (f.algorithm, f.digest, f.size))
            for f in wheel.files
        ]
        targets += [(scheme.scripts / script, None, None) for script, _m, _a in wheel.scripts]
        for target, member, content in targets:
            owner = owners.setdefault(target, (wheel, content))
            if owner[0] is wheel:
                continue
            if content is None or owner[1] != content:
                raise EnvironmentError_(
                    f"wheels {owner[0].filename} and {wheel.filename} both install "
                    f"{target.relative_to(scheme.root)} with different content; a photon "
                    "cannot depend on both. Remove one of them from the requirements and lock "
                    "again."
                )
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


def _write_new(path: Path, data: bytes | Iterable[bytes], executable: bool) -> None:
    # O_EXCL: never write through anything that is already there.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o755 if executable else 0o644)
    try:
        for chunk in [data] if isinstance(data, bytes) else data:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
    except OSError as exc:
        if exc.filename is None:  # os.write does not say which file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    finally:
        os.close(fd)


def _extract_file(
    zf: zipfile.ZipFile, wheel: Wheel, file: WheelFile, target: Path
) -> tuple[Path, str, int]:
    hasher = hashlib.new(file.algorithm)
    if file.scheme == "scripts":
        data = zf.read(file.member)
        hasher.update(data)
        if data.startswith(b"#!python"):
            data = SCRIPT_SHEBANG.encode() + data.partition(b"\n")[2]
        _check_digest(wheel, file, hasher.digest())
        _write_new(target, data, executable=True)
        return target, _record_hash(data), len(data)

    def chunks() -> Iterable[bytes]:
        with zf.open(file.member) as stream:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
                yield chunk

    _write_new(target, chunks(), file.executable)
    _check_digest(wheel, file, hasher.digest())
    return target, f"{file.algorithm}={file.digest}", file.size


def _check_digest(wheel: Wheel, file: WheelFile, digest: bytes) -> None:
    if _b64(digest) != file.digest:
        raise _corrupt(
            wheel.filename,
            f"member {file.member} has {file.algorithm} {_b64(digest)}, "
            f"but RECORD says {file.digest}",
        )


def _extract(wheel: Wheel, scheme: Scheme, skip: set[str]) -> InstalledDist:
    rows: list[tuple[Path, str, int]] = []
    made: set[Path] = set()
    try:
        with zipfile.ZipFile(wheel.path) as zf:
            for file in wheel.files:
                target = _target(scheme, wheel, file)
                if file.member in skip:
                    rows.append((target, f"{file.algorithm}={file.digest}", file.size))
                    continue
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                rows.append(_extract_file(zf, wheel, file, target))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise _corrupt(wheel.filename, f"it is not a valid zip archive ({exc})") from exc
    for script, module, attr in wheel.scripts:
        data = _script_text(module, attr).encode()
        scheme.scripts.mkdir(parents=True, exist_ok=True)
        _write_new(scheme.scripts / script, data, executable=True)
        rows.append((scheme.scripts / script, _record_hash(data), len(data)))
    installer = scheme.site_packages / wheel.dist_info / "INSTALLER"
    _write_new(installer, f"{INSTALLER}\n".encode(), executable=False)
    rows.append((installer, _record_hash(f"{INSTALLER}\n".encode()), len(INSTALLER) + 1))
    return InstalledDist(wheel=wheel, rows=tuple(rows))


def install_wheels(
    wheels: Sequence[tuple[str, Path]],
    scheme: Scheme,
    *,
    supported_tags: frozenset[str],
    interpreter: str,
    on_installed: Callable[[InstalledDist], None] | None = None,
    workers: int | None = None,
) -> list[InstalledDist]:
    """Check every wheel, then extract them all in parallel into ``scheme``.

    ``on_installed`` is called (from the calling thread) as each distribution
    is complete, so byte-compilation can start before the last wheel is out.
    ``wheels`` pairs each wheel filename with the verified file that holds it.
    Returns the distributions sorted by wheel filename.
    """
    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    ordered = sorted(wheels)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photonpack-wheel") as pool:
        checked = list(
            pool.map(
                lambda w: read_wheel(
                    w[1], filename=w[0], supported_tags=supported_tags, interpreter=interpreter
                ),
                ordered,
            )
        )
        skips = _claim(checked, scheme)
        # Biggest first, so the long poles start early.
        order = sorted(range(len(checked)), key=lambda i: -sum(f.size for f in checked[i].files))
        futures = {i: pool.submit(_extract, checked[i], scheme, skips[i]) for i in order}
        done: list[InstalledDist] = []
        try:
            for i in order:
                dist = futures[i].result()
                if on_installed is not None:
                    on_installed(dist)
                done.append(dist)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # the environment is thrown away
            raise
    return sorted(done, key=lambda d: d.wheel.filename)


def write_record(
    dist: InstalledDist, scheme: Scheme, *, extra: Mapping[Path, tuple[str, int]] = {}
) -> None:
    """Write the distribution's RECORD for the installed files (and ``extra``, e.g. .pyc)."""
    base = scheme.site_packages
    record = base / dist.wheel.dist_info / "RECORD"
    rows = [(path, digest, size) for path, digest, size in dist.rows]
    rows += [(path, digest, size) for path, (digest, size) in extra.items()]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    lines = sorted((os.path.relpath(path, base), digest, str(size)) for path, digest, size in rows)
    writer.writerows([*lines, (os.path.relpath(record, base), "", "")])
    _write_new(record, out.getvalue().encode(), executable=False)


def hash_file(path: Path) -> tuple[str, int]:
    """The RECORD hash and size of a file on disk."""
    data = path.read_bytes()
    return _record_hash(data), len(data)


def _runtime_target(site: Path, relpath: str) -> Path:
    parts = PurePosixPath(relpath).parts
    if relpath.startswith("/") or not parts or any(p in ("..", ".") for p in parts):
        raise EnvironmentError_(
            f"runtime file path {relpath!r} is not a relative path inside site-packages"
        )
    return site.joinpath(*parts)


def _place_runtime(site: Path, runtime_files: Mapping[str, Path], taken: set[Path]) -> list[Path]:
    placed = []
    for relpath, source in sorted(runtime_files.items()):
        target = _runtime_target(site, relpath)
        if target in taken:
            raise EnvironmentError_(
                f"runtime file {relpath} is also installed by a wheel of the photon; "
                "remove photonpack from the photon's requirements and lock again."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        placed.append(target)
    return placed


def _pyc_rows(dist: InstalledDist, site: Path, cache_tag: str) -> dict[Path, tuple[str, int]]:
    rows: dict[Path, tuple[str, int]] = {}
    for path, _digest, _size in dist.rows:
        if path.suffix == ".py" and path.is_relative_to(site):
            pyc = path.parent / "__pycache__" / f"{path.stem}.{cache_tag}.pyc"
            if pyc.exists():
                rows[pyc] = hash_file(pyc)
    return rows


def _build(
    destination: Path,
    interpreter: Interpreter,
    wheels: Sequence[tuple[str, Path]],
    runtime_files: Mapping[str, Path],
    compile_bytecode: bool,
) -> None:
    scheme = create_venv(destination, interpreter)
    site = scheme.site_packages
    workers = max(1, os.cpu_count() or 1) if compile_bytecode else 0
    with BytecodeCompiler(destination / "bin" / "python", site, workers=workers) as compiler:
        dists = install_wheels(
            wheels, scheme, supported_tags=frozenset(interpreter.tags), interpreter=interpreter.id,
            on_installed=lambda d: compiler.submit((p, size) for p, _h, size in d.rows),
        )  # fmt: skip
        taken = {path for dist in dists for path, _h, _s in dist.rows}
        placed = _place_runtime(site, runtime_files, taken)
        compiler.submit((path, path.stat().st_size) for path in placed)
        compiler.finish()
    with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:
        pycs = pool.map(lambda d: _pyc_rows(d, site, interpreter.cache_tag), dists)
        list(pool.map(lambda d, extra: write_record(d, scheme, extra=extra), dists, pycs))


def create_environment(
    destination: Path,
    *,
    wheels: Sequence[Path] | Mapping[str, Path],
    runtime_files: Mapping[str, Path] = {},
    python: Path | None = None,
    compile_bytecode: bool = True,
) -> None:
    """Build a complete, relocatable venv at ``destination``, which must not exist.

    ``wheels`` are verified files: paths named like wheels, or a mapping from
    wheel filename to file (a store blob). ``runtime_files`` maps a path
    relative to site-packages to a verified file placed there. On any failure
    nothing is left at ``destination``.
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
        _build(destination, interpreter, pairs, runtime_files, compile_bytecode)
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
