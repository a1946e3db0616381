"""Wheels as the binary distribution format defines them, checked before anything is trusted.

:func:`read_wheel` opens a wheel and checks its tags, its listing and its
RECORD: every member must be listed with a hash and its size, nothing may be
unlisted or missing, no path may leave its scheme directory, and no member may
be a link or a device. The contents are hashed when they are extracted
(``install.py``); a wheel that lies is refused with :class:`IntegrityError`
naming the wheel and the member.
"""

from __future__ import annotations

import configparser
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from photonpack.errors import InstallError, IntegrityError
from photonpack.install.record import RecordError, parse_record

__all__ = ["Wheel", "WheelFile", "corrupt", "read_wheel"]

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
    offset: int  # of the member's local header in the zip file
    compressed_size: int
    method: int  # zip compression method: 0 stored, 8 deflated, ...


@dataclass(frozen=True, kw_only=True)
class Wheel:
    """A wheel whose listing, RECORD and tags were checked, ready to extract."""

    path: Path
    filename: str
    name: str
    dist_info: str
    files: tuple[WheelFile, ...]
    scripts: tuple[tuple[str, str, str], ...]  # (script name, module, attribute)


def corrupt(filename: str, reason: str) -> IntegrityError:
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
        raise corrupt(filename, f"member {member!r} is not a safe relative path")
    return parts


def _parse_record(filename: str, record_name: str, data: bytes) -> dict[str, tuple[str, str, int]]:
    try:
        rows = parse_record(data)
    except RecordError as exc:
        where = f" line {exc.line}" if exc.line else ""
        raise corrupt(filename, f"{record_name}{where}: {exc.problem}") from exc
    entries: dict[str, tuple[str, str, int]] = {}
    for row in rows:
        if row.path == record_name or PurePosixPath(row.path).name in _SIGNATURES:
            continue
        if row.algorithm not in _HASHES or not row.digest or row.size is None:
            raise corrupt(
                filename, f"{record_name} lists {row.path} without a sha256 hash and size"
            )
        if row.path in entries:
            raise corrupt(filename, f"{record_name} lists {row.path} twice")
        entries[row.path] = (row.algorithm, row.digest, row.size)
    return entries


def _dist_info(filename: str, name: str, members: Iterable[str]) -> str:
    tops = {m.split("/", 1)[0] for m in members}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(found) != 1:
        raise corrupt(filename, f"expected one .dist-info directory, found {found or 'none'}")
    dist_name = found[0][: -len(".dist-info")].rpartition("-")[0]
    if canonicalize_name(dist_name) != name:
        raise corrupt(filename, f"{found[0]} does not belong to the project {name}")
    return found[0]


def _place(filename: str, member: str, dist_info: str) -> tuple[str, str]:
    parts = _safe_parts(filename, member)
    data_dir = dist_info[: -len(".dist-info")] + ".data"
    if parts[0] != data_dir:
        return "site", member
    if len(parts) < 3 or parts[1] not in _DATA_SCHEMES:
        raise corrupt(filename, f"member {member} is not in a known {data_dir} scheme")
    scheme = {"purelib": "site", "platlib": "site"}.get(parts[1], parts[1])
    return scheme, "/".join(parts[2:])


def _entry_point_scripts(filename: str, text: str) -> tuple[tuple[str, str, str], ...]:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise corrupt(filename, f"entry_points.txt is not valid ({exc})") from exc
    scripts: list[tuple[str, str, str]] = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for script, value in parser.items(section):
            match = _ENTRY_POINT.match(value.strip())
            valid = match and _DOTTED.match(match["module"]) and _DOTTED.match(match["attr"])
            if not match or not valid or not _SCRIPT_NAME.match(script) or script in (".", ".."):
                raise corrupt(filename, f"entry point {script} = {value} is not valid")
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
        raise InstallError(f"{filename} is not a wheel file name ({exc})") from exc
    if not any(str(tag) in supported_tags for tag in tags):
        raise InstallError(
            f"wheel {filename} is built for {', '.join(sorted(map(str, tags)))}, which "
            f"{interpreter} cannot run. Build the photon for this machine's target "
            "(photonpack targets name interpreter and platform, e.g. cp311-manylinux_2_28_x86_64)."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            return _check_wheel(path, filename, name, zf)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise corrupt(filename, f"it is not a valid zip archive ({exc})") from exc


def _check_wheel(path: Path, filename: str, name: str, zf: zipfile.ZipFile) -> Wheel:
    infos = zf.infolist()
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise corrupt(filename, "a member name appears twice in the zip directory")
    dist_info = _dist_info(filename, name, names)
    record_name = f"{dist_info}/RECORD"
    if record_name not in names:
        raise corrupt(filename, f"{record_name} is missing")
    record = _parse_record(filename, record_name, zf.read(record_name))
    wheel_meta = zf.read(f"{dist_info}/WHEEL").decode("utf-8", "replace")
    version = re.search(r"^Wheel-Version:\s*(\d+)\.", wheel_meta, re.MULTILINE)
    if version is None or version[1] != "1":
        raise corrupt(filename, "its WHEEL file does not declare Wheel-Version 1.x")
    files: list[WheelFile] = []
    for info in infos:
        mode = info.external_attr >> 16
        member = info.filename
        if info.is_dir() or member == record_name:
            continue
        _safe_parts(filename, member)
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # symlinks, devices, ...
            raise corrupt(filename, f"member {member} is not a regular file")
        if info.flag_bits & 0x1:
            raise corrupt(filename, f"member {member} is encrypted")
        if member.startswith(f"{dist_info}/") and PurePosixPath(member).name in _SIGNATURES:
            continue
        if member not in record:
            raise corrupt(filename, f"member {member} is not listed in {record_name}")
        algorithm, digest, size = record.pop(member)
        if size != info.file_size:
            raise corrupt(
                filename,
                f"member {member} is {info.file_size} bytes but {record_name} says {size}",
            )
        scheme, rel = _place(filename, member, dist_info)
        executable = bool(mode & 0o111) or scheme == "scripts"
        files.append(
            WheelFile(
                member=member, scheme=scheme, path=rel, algorithm=algorithm,
                digest=digest, size=size, executable=executable, offset=info.header_offset,
                compressed_size=info.compress_size, method=info.compress_type,
            )
        )  # fmt: skip
    if record:
        missing = sorted(record)[0]
        raise corrupt(filename, f"{record_name} lists {missing}, which the wheel does not hold")
    entry_points = f"{dist_info}/entry_points.txt"
    scripts: tuple[tuple[str, str, str], ...] = ()
    if entry_points in names:
        scripts = _entry_point_scripts(filename, zf.read(entry_points).decode("utf-8"))
    return Wheel(
        path=path, filename=filename, name=name, dist_info=dist_info,
        files=tuple(files), scripts=scripts,
    )  # fmt: skip
