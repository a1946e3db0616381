"""RECORD files (the wheel spec's ``<name>.dist-info/RECORD``): one reader, one writer.

A RECORD is CSV, one row per installed file: its path relative to
site-packages, ``sha256=<urlsafe base64 without padding>`` and its size. The
RECORD's own row has neither. Wheels, environments and the store's audit all
read and write them through this module.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from photonpack._digest import CHUNK_SIZE

__all__ = [
    "RecordError",
    "RecordRow",
    "b64",
    "format_record",
    "hash_file",
    "parse_record",
    "read_record",
    "record_hash",
]


class RecordError(ValueError):
    """A RECORD that is not valid: ``line`` (1-based, 0 for the whole file) and the problem."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}" if line else problem)
        self.line = line
        self.problem = problem


class RecordRow(NamedTuple):
    """One RECORD row. A tuple: thousands are made per install."""

    path: str
    hash: str  # "sha256=<urlsafe base64>", or "" (the RECORD's own row)
    size: int | None

    @property
    def algorithm(self) -> str:
        return self.hash.partition("=")[0]

    @property
    def digest(self) -> str:
        return self.hash.partition("=")[2]


def b64(digest: bytes) -> str:
    """A raw digest as RECORD writes it: urlsafe base64 without padding."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def record_hash(data: bytes) -> str:
    """The RECORD hash field of ``data``: ``sha256=...``."""
    return "sha256=" + b64(hashlib.sha256(data).digest())


def hash_file(path: Path, algorithm: str = "sha256") -> tuple[str, int]:
    """The RECORD digest (base64, no prefix) and size of a file. OSError, ValueError."""
    digest = hashlib.new(algorithm)
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return b64(digest.digest()), size


def parse_record(data: bytes | str) -> list[RecordRow]:
    """The rows of a RECORD (blank lines skipped). :class:`RecordError` if malformed."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        rows = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RecordError(0, f"not a valid UTF-8 CSV file ({exc})") from exc
    parsed = []
    for number, row in enumerate(rows, start=1):
        if not row:
            continue
        if len(row) != 3:
            raise RecordError(number, f"{len(row)} fields, not 3: {row}")
        path, hash_field, size = row
        if size and not size.isdigit():
            raise RecordError(number, f"the size of {path} is {size!r}, not a number")
        if hash_field and not hash_field.partition("=")[2]:
            raise RecordError(number, f"the hash of {path} is {hash_field!r}, not ALGORITHM=DIGEST")
        parsed.append(RecordRow(path, hash_field, int(size) if size else None))
    return parsed


def read_record(path: Path) -> list[RecordRow]:
    """:func:`parse_record` of a file. OSError if unreadable, :class:`RecordError` if malformed."""
    return parse_record(path.read_bytes())


def format_record(rows: Iterable[RecordRow], *, own_path: str) -> bytes:
    """A RECORD's bytes: ``rows`` sorted, then its own row (``own_path``, no hash, no size)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(
        (row.path, row.hash, "" if row.size is None else str(row.size)) for row in sorted(rows)
    )
    writer.writerow((own_path, "", ""))
    return out.getvalue().encode()
