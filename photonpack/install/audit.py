"""``verify --store`` for environments: every installed file re-hashed against its RECORD.

An environment whose files differ loses its ``.complete`` marker, so that the
wheel cache never links from it and the next run builds it again from the
store's verified blobs.
"""

from __future__ import annotations

import os
from pathlib import Path

from photonpack.install.record import RecordError, RecordRow, hash_file, read_record
from photonpack.store import COMPLETE, Store

__all__ = ["audit_environments", "check_records"]


def audit_environments(store: Store) -> list[str]:
    """Re-hash every complete environment of ``store``; one line per problem found."""
    parent = store.root / "envs"
    problems = []
    for tree in sorted(parent.glob("*")) if parent.is_dir() else []:
        if not store.is_complete(tree):
            continue
        problem = check_records(tree)
        if problem is not None:
            (tree / COMPLETE).unlink(missing_ok=True)
            problems.append(
                f"environment {tree.name}: {problem}; it was taken out of use and will be "
                "built again on the next run"
            )
    return problems


def check_records(tree: Path) -> str | None:
    """The first file under ``tree`` that differs from its RECORD row, described; or None."""
    for record in sorted(tree.glob("lib/python*/site-packages/*.dist-info/RECORD")):
        name = record.relative_to(tree)
        try:
            rows = read_record(record)
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror or exc})"
        except RecordError as exc:
            return f"{name} has a malformed row ({exc})" if exc.line else f"{name} is {exc}"
        for row in rows:
            problem = _check_row(tree, record.parent.parent, name, row) if row.hash else None
            if problem is not None:  # rows without a hash: the RECORD's own
                return problem
    return None


def _check_row(tree: Path, site: Path, record: Path, row: RecordRow) -> str | None:
    path = Path(os.path.normpath(site / row.path))
    if not path.is_relative_to(tree):
        return f"{record} lists {row.path}, outside {tree}"
    if row.size is None:
        return f"{record} lists {row.path} without a size"
    try:
        found, size = hash_file(path, row.algorithm)
    except (OSError, ValueError) as exc:
        return f"{path.relative_to(tree)} cannot be read ({exc})"
    if found != row.digest or size != row.size:
        return (
            f"{path.relative_to(tree)} was altered (expected {row.algorithm} "
            f"{row.digest}, {row.size} bytes; found {found}, {size} bytes)"
        )
    return None
