"""Wheels as the binary distribution format defines them, checked before anything is trusted.

:func:`inspect_wheel` opens a wheel and checks its zip layout
(``ziplayout.py``), its listing and its RECORD: every member must be listed
with a hash and its size, nothing may be unlisted or missing, no path may leave
its scheme directory, and no member may be a link or a device. :func:`read_wheel`
adds what an install needs: tags this interpreter runs, and a file name that
says what the dist-info directory and METADATA say (``metadata.py``). The
contents are hashed when they are extracted (``extract.py``); a wheel that lies
is refused with :class:`CorruptWheelError` naming the wheel and the rule.
"""

from __future__ import annotations

import configparser
import mmap
import re
import stat
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from photonpack.errors import InstallError, IntegrityError
from photonpack.install.metadata import WheelMetadata, identity_problem, parse_metadata
from photonpack.install.record import RecordError, parse_record
from photonpack.install.ziplayout import LayoutError, check_layout

__all__ = ["CorruptWheelError", "Wheel", "WheelFile", "corrupt", "inspect_wheel", "read_wheel"]

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
    data_offset: int  # where the member's (compressed) data starts in the zip file
    compressed_size: int
    method: int  # zip compression method: 0 stored, 8 deflated, ...


@dataclass(frozen=True, kw_only=True)
class Wheel:
    """A wheel whose listing, RECORD and tags were checked, ready to extract."""

    path: Path
    filename: str
    name: str  # the project its file name names, normalised
    dist_info: str
    metadata: WheelMetadata
    files: tuple[WheelFile, ...]
    scripts: tuple[tuple[str, str, str], ...]  # (script name, module, attribute)


class CorruptWheelError(IntegrityError):
    """A wheel breaks a rule of the format; ``reason`` says which (one line, no wheel name)."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(
            f"wheel {filename} cannot be trusted: {reason}. The archive that carries it was "
            "built from a broken or tampered wheel; rebuild it from a clean package index."
        )
        self.filename, self.reason = filename, reason


def corrupt(filename: str, reason: str) -> CorruptWheelError:
    return CorruptWheelError(filename, reason)


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


def _dist_info(filename: str, members: Iterable[str]) -> str:
    tops = {m.split("/", 1)[0] for m in members}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if len(found) != 1:
        raise corrupt(filename, f"expected one .dist-info directory, found {found or 'none'}")
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
    """Open a wheel, check its tags, identity, layout, listing and RECORD; what to install.

    ``filename`` is the wheel's name when ``path`` is not named like one (a store blob).
    """
    filename = filename or path.name
    try:
        tags = parse_wheel_filename(filename)[3]
    except InvalidWheelFilename as exc:
        raise InstallError(f"{filename} is not a wheel file name ({exc})") from exc
    if not any(str(tag) in supported_tags for tag in tags):
        raise InstallError(
            f"wheel {filename} is built for {', '.join(sorted(map(str, tags)))}, which "
            f"{interpreter} cannot run. Build the photon for this machine's target "
            "(photonpack targets name interpreter and platform, e.g. cp311-manylinux_2_28_x86_64)."
        )
    wheel = inspect_wheel(path, filename=filename)
    problem = identity_problem(filename, wheel.dist_info, wheel.metadata)
    if problem is not None:
        raise corrupt(filename, problem)
    return wheel


def inspect_wheel(path: Path, *, filename: str) -> Wheel:
    """Check the wheel ``filename`` held in ``path``: layout, listing, RECORD, METADATA.

    Neither its tags nor its identity are checked (see :func:`read_wheel` and
    :func:`~photonpack.install.metadata.identity_problem`): ``verify`` runs
    this for every target. Reads the zip directory and small members only.
    """
    try:
        name = canonicalize_name(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename as exc:
        raise corrupt(filename, f"its file name is not a wheel's ({exc})") from exc
    try:
        with path.open("rb") as handle:
            try:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError as exc:  # an empty file
                raise corrupt(filename, f"it is not a valid zip archive ({exc})") from exc
            with mapped, zipfile.ZipFile(handle) as zf:
                names = [info.orig_filename for info in zf.infolist()]
                if len(set(names)) != len(names):
                    raise corrupt(filename, "a member name appears twice in the zip directory")
                try:
                    starts = check_layout(mapped, zf.infolist())
                except LayoutError as exc:
                    raise corrupt(filename, str(exc)) from exc
                return _check_wheel(path, filename, name, zf, starts)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise corrupt(filename, f"it is not a valid zip archive ({exc})") from exc
    except OSError as exc:
        raise InstallError(f"cannot read wheel {filename} ({path}): {exc.strerror or exc}") from exc


def _read_dist_info(
    filename: str, zf: zipfile.ZipFile, names: set[str], dist_info: str
) -> tuple[dict[str, tuple[str, str, int]], WheelMetadata]:
    """RECORD's entries and METADATA, once WHEEL says the format is 1.x."""
    for required in ("RECORD", "WHEEL", "METADATA"):
        if f"{dist_info}/{required}" not in names:
            raise corrupt(filename, f"{dist_info}/{required} is missing")
    record_name = f"{dist_info}/RECORD"
    record = _parse_record(filename, record_name, zf.read(record_name))
    wheel_meta = zf.read(f"{dist_info}/WHEEL").decode("utf-8", "replace")
    version = re.search(r"^Wheel-Version:\s*(\d+)\.", wheel_meta, re.MULTILINE)
    if version is None or version[1] != "1":
        raise corrupt(filename, "its WHEEL file does not declare Wheel-Version 1.x")
    try:
        metadata = parse_metadata(zf.read(f"{dist_info}/METADATA"))
    except ValueError as exc:
        raise corrupt(filename, str(exc)) from exc
    return record, metadata


def _check_wheel(
    path: Path, filename: str, name: str, zf: zipfile.ZipFile, starts: dict[str, int]
) -> Wheel:
    infos = zf.infolist()
    names = [info.filename for info in infos]
    dist_info = _dist_info(filename, names)
    record_name = f"{dist_info}/RECORD"
    record, metadata = _read_dist_info(filename, zf, set(names), dist_info)
    files: list[WheelFile] = []
    for info in infos:
        mode = info.external_attr >> 16
        member = info.filename
        if member != info.orig_filename:  # zipfile cut the name at a NUL byte
            raise corrupt(filename, f"member {info.orig_filename!r} is not a safe relative path")
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
                digest=digest, size=size, executable=executable, data_offset=starts[member],
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
        path=path, filename=filename, name=name, dist_info=dist_info, metadata=metadata,
        files=tuple(files), scripts=scripts,
    )  # fmt: skip
