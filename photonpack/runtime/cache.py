"""The store's unpacked wheels: each wheel installed and compiled once, then hard-linked.

``unpacked/<wheel-hex>-<interpreter id>-v<layout>/`` holds one wheel installed
into an environment-shaped tree (``lib/pythonX.Y/site-packages``, ``bin``,
``include``, data at the top) with its bytecode, ``INSTALLER`` and a RECORD
that hashes every file: exactly what the wheel contributes to any
environment on that interpreter, since nothing in it names where it lies
(see ``venv.py``). A new environment links these files instead of
extracting and compiling again.

Entries are filled under ``tmp/`` and renamed into place with a ``.complete``
marker under a per-entry lock, like environments. Their files are made
read-only, because every environment that links a file shares it: a write
through one link would change them all. Root can still write, so
``Store.verify`` re-hashes every entry and environment against its RECORD and
takes away the ``.complete`` marker of any that differ, so that they are
built again from the verified blobs.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import os
import posixpath
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from photonpack.errors import IntegrityError
from photonpack.runtime.install import (
    InstalledDist,
    check_wheels,
    compile_few,
    conflict,
    extract_wheels,
    place_runtime,
    pyc_rows,
    write_record,
)
from photonpack.runtime.venv import (
    ENVIRONMENT_LAYOUT,
    BytecodeCompiler,
    Interpreter,
    Scheme,
    create_venv,
)
from photonpack.store import Store

__all__ = ["WheelCache", "link_entries"]

_HEX = frozenset("0123456789abcdef")
# Linking fails across filesystems, past the link limit, or where links are
# not allowed: the file is copied instead.
_NO_LINK = frozenset({errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP})
_LINK_BATCH = 256


def _scheme(root: Path, interpreter: Interpreter) -> Scheme:
    return Scheme(
        root=root,
        site_packages=root / interpreter.site_packages,
        scripts=root / "bin",
        headers=root / "include" / "site" / f"python{interpreter.short_version}",
    )


class WheelCache:
    """Unpacked, compiled wheels in ``store``, shared by environments through hard links."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def entry(self, wheel_sha256: str, interpreter: Interpreter) -> Path:
        """Where the wheel with this digest lies, unpacked for ``interpreter``."""
        return self.store.unpacked_path(f"{wheel_sha256}-{interpreter.id}-v{ENVIRONMENT_LAYOUT}")

    def digest_of(self, wheel: Path) -> str:
        """The wheel's sha256: a store blob's name, else hashed from the file."""
        blobs = self.store.root / "blobs" / "sha256"
        if wheel.parent == blobs and len(wheel.name) == 64 and _HEX.issuperset(wheel.name):
            return wheel.name
        digest = hashlib.sha256()
        with wheel.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()

    def ensure(
        self, wheels: Sequence[tuple[str, Path]], interpreter: Interpreter
    ) -> list[tuple[str, Path]]:
        """Fill the entries that are missing; ``(filename, entry)`` per wheel, by filename."""
        keyed = sorted(
            (filename, path, self.entry(self.digest_of(path), interpreter))
            for filename, path in wheels
        )
        missing = [item for item in keyed if not self.store.is_complete(item[2])]
        if missing:
            with contextlib.ExitStack() as stack:
                for entry in sorted({entry for _f, _p, entry in missing}):  # one order: no deadlock
                    stack.enter_context(self.store.lock(f"unpacked-{entry.name}"))
                missing = [item for item in missing if not self.store.is_complete(item[2])]
                if missing:  # else another process filled them while we waited
                    self._fill(missing, interpreter)
        return [(filename, entry) for filename, _path, entry in keyed]

    def _fill(self, missing: Sequence[tuple[str, Path, Path]], interpreter: Interpreter) -> None:
        unique = {entry: (filename, path) for filename, path, entry in missing}
        by_wheel = sorted((pair, entry) for entry, pair in unique.items())
        with self.store.temp_dir("unpacked-") as temp:
            checked = check_wheels([pair for pair, _entry in by_wheel], interpreter=interpreter)
            jobs = []
            for wheel, (_pair, entry) in zip(checked, by_wheel, strict=True):
                scheme = _scheme(temp / entry.name, interpreter)
                scheme.site_packages.mkdir(parents=True)
                jobs.append((wheel, scheme, set[str]()))
            workers = max(1, os.cpu_count() or 1)
            with BytecodeCompiler(interpreter.executable, workers=workers) as compiler:
                dists = extract_wheels(jobs, on_written=compiler.submit, readonly=True)
                compiled = compiler.finish()

            def publish(dist: InstalledDist, scheme: Scheme, entry: Path) -> None:
                extra = pyc_rows(dist, scheme.site_packages, interpreter.cache_tag, compiled)
                write_record(dist, scheme, extra=extra, readonly=True)
                self.store.publish_dir(scheme.root, entry, sync=False)

            entries = [entry for _pair, entry in by_wheel]
            with ThreadPoolExecutor(max_workers=min(8, 2 * workers)) as pool:
                list(pool.map(publish, dists, [scheme for _w, scheme, _s in jobs], entries))
            self.store.sync_dir(entries[0].parent)

    def build(
        self,
        destination: Path,
        interpreter: Interpreter,
        wheels: Sequence[tuple[str, Path]],
        runtime_files: Mapping[str, Path],
    ) -> None:
        """``create_environment`` through the cache: fill what is missing, then link."""
        entries = self.ensure(wheels, interpreter)
        scheme = create_venv(destination, interpreter)
        taken = link_entries(entries, destination, interpreter)
        placed = place_runtime(scheme.site_packages, runtime_files, taken)
        compile_few(interpreter, scheme.site_packages, placed)


def _record_rows(entry: Path, interpreter: Interpreter) -> tuple[str, list[list[str]]]:
    """The dist-info directory of the entry's one distribution, and its RECORD rows."""
    site = entry / interpreter.site_packages
    found = sorted(site.glob("*.dist-info/RECORD"))
    if len(found) != 1:
        raise IntegrityError(
            f"the unpacked wheel {entry} holds {len(found)} RECORD files instead of one; "
            "run 'photonpack verify --store' to take it out of use"
        )
    with found[0].open(newline="", encoding="utf-8") as handle:
        return found[0].parent.name, [row for row in csv.reader(handle) if row]


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileNotFoundError as exc:
        if source.exists():
            raise
        raise IntegrityError(
            f"the unpacked wheel {source.parent} lacks {source.name}, which its RECORD lists; "
            "run 'photonpack verify --store' to take it out of use, then run again"
        ) from exc
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        shutil.copyfile(source, target)
        shutil.copymode(source, target)


def link_entries(
    entries: Sequence[tuple[str, Path]], destination: Path, interpreter: Interpreter
) -> set[Path]:
    """Hard-link every entry's files into ``destination``; return the paths placed.

    A file two wheels share is linked once; different content at one path is a
    conflict, as in a plain install. The pyc of a shared source may differ
    byte for byte between entries (marshal output depends on the compiling
    process): the first one is kept and the other RECORD is rewritten to list it.
    """
    owners: dict[str, tuple[str, str, str]] = {}  # path in destination -> (hash, size, wheel)
    links: list[tuple[Path, str]] = []  # (entry, path relative to both)
    records: list[tuple[Path, list[list[str]], str]] = []  # RECORDs to rewrite
    site = interpreter.site_packages
    for filename, entry in entries:
        dist_info, rows = _record_rows(entry, interpreter)
        record = posixpath.join(site, dist_info, "RECORD")
        mine = {_relative(entry, site, row): row for row in rows}
        rewritten = False
        # Sources before pycs, so that a conflict names the source.
        for rel, row in sorted(mine.items(), key=lambda item: item[0].endswith(".pyc")):
            if rel == record:
                continue
            owner = owners.setdefault(rel, (row[1], row[2], filename))
            if owner[2] == filename:
                links.append((entry, rel))
            elif owner[0] != row[1]:
                if not _shared_pyc(owners, mine, rel, filename):
                    raise conflict(owner[2], filename, Path(rel))
                row[1:] = owner[:2]
                rewritten = True
        if rewritten:
            records.append((destination / record, rows, posixpath.relpath(record, site)))
        else:
            links.append((entry, record))
    # Links and directories are cheap but many: a few threads keep the filesystem busy.
    batches = [links[start : start + _LINK_BATCH] for start in range(0, len(links), _LINK_BATCH)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda batch: _link_all(batch, destination), batches))
    for path, rows, name in records:
        _write_record(path, rows, name=name)
    return {destination / rel for rel in owners}


def _link_all(batch: Sequence[tuple[Path, str]], destination: Path) -> None:
    made: set[str] = set()
    for entry, rel in batch:
        parent = posixpath.dirname(rel)
        if parent not in made:
            (destination / parent).mkdir(parents=True, exist_ok=True)  # races with other batches
            made.add(parent)
        _link(entry / rel, destination / rel)


def _relative(entry: Path, site: str, row: list[str]) -> str:
    """A RECORD row's path relative to the environment, refused if it leaves it."""
    if len(row) != 3:
        raise IntegrityError(f"the unpacked wheel {entry} has a malformed RECORD row {row}")
    rel = posixpath.normpath(posixpath.join(site, row[0]))
    if rel.startswith(("/", "../")) or rel == "..":
        raise IntegrityError(f"the unpacked wheel {entry} lists {row[0]}, outside the environment")
    return rel


def _shared_pyc(
    owners: Mapping[str, tuple[str, str, str]], mine: Mapping[str, list[str]], rel: str, wheel: str
) -> bool:
    """Whether ``rel`` is the pyc of a source that another wheel installs identically."""
    folder, name = posixpath.split(rel)
    if posixpath.basename(folder) != "__pycache__" or not name.endswith(".pyc"):
        return False
    source = posixpath.join(posixpath.dirname(folder), name.split(".", 1)[0] + ".py")
    owner = owners.get(source)
    return (
        owner is not None and owner[2] != wheel and source in mine and mine[source][1] == owner[0]
    )


def _write_record(path: Path, rows: list[list[str]], *, name: str) -> None:
    lines = sorted(tuple(row) for row in rows if row[0] != name)
    with path.open("x", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerows([*lines, (name, "", "")])
