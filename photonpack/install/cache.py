"""The store's environments as a wheel cache: each wheel installed and compiled once, then linked.

A wheel installed into an environment contributes the same files to any
environment on that interpreter: nothing in them names where they lie (see
``venv.py``). So do photonpack's runtime files, a distribution of their own
(``photonpack-<version>.dist-info``), keyed by their paths and digests. So
once an environment is complete in the store, the files of each of its
wheels are reused by hard link instead of extracting and compiling that
wheel again. ``installed/<wheel-hex>-<interpreter id>-v<layout>``
points at one complete environment holding the wheel::

    {"environment": "<env hex>", "dist_info": "numpy-2.4.6.dist-info"}

and that distribution's RECORD lists the files to link.

The first environment pays nothing for the cache: its wheels are installed
straight into it, as without a cache, and the pointers are written once it is
published. A later environment links what the pointers name and installs the
rest next to the linked files, with the same conflict rules as a plain
install. A pointer is only a hint: one that is unreadable, or names an
environment without its ``.complete`` marker, is ignored (the wheel is
installed afresh and the pointer moved), so a run killed at any point, or an
environment that ``Store.verify`` took out of use, never makes a bad source.

Files of environments built this way are read-only, because every
environment that links a file shares it: a write through one link would change
them all. Root can still write, so ``Store.verify`` re-hashes every
environment against its RECORDs and takes away the ``.complete`` marker of any
that differ, which also stops its pointers from being followed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import posixpath
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from photonpack._digest import is_sha256_hex, sha256_file
from photonpack.errors import IntegrityError, StoreError
from photonpack.install.extract import InstalledDist, write_new
from photonpack.install.interpreter import Interpreter
from photonpack.install.owners import RUNTIME, Linked, Owner, conflict
from photonpack.install.record import RecordError, RecordRow, format_record, read_record
from photonpack.install.serving_dist import runtime_dist_info
from photonpack.install.venv import ENVIRONMENT_LAYOUT, Scheme
from photonpack.store import Store

__all__ = ["WheelCache", "pointer_key", "runtime_pointer_key"]

_DIST_INFO = re.compile(r"[A-Za-z0-9_.+!-]+\.dist-info")
# Linking fails across filesystems, past the link limit, or where links are
# not allowed: the file is copied instead.
_NO_LINK = frozenset({errno.EXDEV, errno.EMLINK, errno.EPERM, errno.ENOTSUP})
_LINK_BATCH = 256
_TAKE_OUT = "; run 'photonpack verify --store' to take it out of use, then run again"


class WheelCache:
    """The wheels that complete environments of ``store`` hold, reused by hard link.

    One instance serves one environment: :meth:`link` before installing,
    :meth:`installed` with what was installed, :meth:`remember` once the
    environment is published (``create_environment`` calls the first two).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._keys: dict[str, str] = {}  # wheel filename -> pointer key
        self._fresh: list[tuple[str, str]] = []  # (pointer key, dist-info) installed here

    def key(self, wheel_sha256: str, interpreter: Interpreter) -> str:
        """The pointer's name for the wheel with this digest on ``interpreter``."""
        return pointer_key(wheel_sha256, interpreter.id)

    def digest_of(self, wheel: Path) -> str:
        """The wheel's sha256: a store blob's name, else hashed from the file."""
        return wheel.name if self._is_blob(wheel) else sha256_file(wheel)[0]

    def source(self, key: str, interpreter: Interpreter) -> tuple[Path, str] | None:
        """The complete environment and dist-info the pointer ``key`` names, or None."""
        try:
            pointer = json.loads(self.store.installed_path(key).read_bytes())
            env_hex, dist_info = pointer["environment"], pointer["dist_info"]
        except (OSError, ValueError, TypeError, KeyError):
            return None  # none yet, or torn by a crash: install afresh
        if not (
            isinstance(env_hex, str)
            and isinstance(dist_info, str)
            and is_sha256_hex(env_hex)
            and _DIST_INFO.fullmatch(dist_info)
        ):
            return None
        env = self.store.env_path(env_hex)
        if not self.store.is_complete(env):
            return None
        # A dist-info removed by hand would not show in verify --store (which reads the
        # RECORDs there are): install afresh rather than fail on every run.
        record = env / interpreter.site_packages / dist_info / "RECORD"
        return (env, dist_info) if record.is_file() else None

    def runtime_key(self, runtime_files: Mapping[str, Path], interpreter: Interpreter) -> str:
        """The pointer's name for this set of runtime files (paths and contents)."""
        digests = {rel: self.digest_of(path) for rel, path in runtime_files.items()}
        return runtime_pointer_key(digests, interpreter.id)

    @contextlib.contextmanager
    def link(
        self,
        wheels: Sequence[tuple[str, Path]],
        runtime_files: Mapping[str, Path],
        scheme: Scheme,
        interpreter: Interpreter,
    ) -> Iterator[tuple[list[tuple[str, Path]], bool, Linked]]:
        """Link the wheels (and runtime files) a complete environment holds into ``scheme``.

        Gives the wheels still to install, whether the runtime files are still
        to place, and the files linked (or being linked). The links are made in
        background threads while the body installs the rest (the kernel does
        most of that work); leaving waits for them and raises their first error,
        unless the body failed.
        """
        sources: list[tuple[str, Path, str]] = []
        fresh: list[tuple[str, Path]] = []
        for filename, path in sorted(wheels):
            key = self.key(self.digest_of(path), interpreter)
            self._keys[filename] = key
            found = self.source(key, interpreter)
            if found is None:
                fresh.append((filename, path))
            else:
                sources.append((filename, *found))
        place = bool(runtime_files)
        if runtime_files:
            self._keys[RUNTIME] = self.runtime_key(runtime_files, interpreter)
            found = self.source(self._keys[RUNTIME], interpreter)
            if found is not None and found[1] == runtime_dist_info(runtime_files):
                sources.append((RUNTIME, *found))
                place = False
        about_to_copy = [(f"wheel {filename}", path) for filename, path in fresh]
        if place:
            about_to_copy += [(f"runtime file {rel}", path) for rel, path in runtime_files.items()]
        self._check_blobs(about_to_copy)
        owners, make_links = plan_links(sources, scheme.root, interpreter)
        with ThreadPoolExecutor(1, thread_name_prefix="photonpack-link") as runner:
            linking = runner.submit(make_links)
            try:
                yield fresh, place, owners
            except BaseException:
                wait([linking])  # nothing may still write into what the caller removes
                raise
            linking.result()

    def _check_blobs(self, files: Sequence[tuple[str, Path]]) -> None:
        """Re-hash the store blobs about to be installed (``(what, path)``): trust nothing.

        ``Store.verify_blob`` removes a blob altered since it was verified, so
        that running the archive again restores it. About 0.1 s for 80 MB of
        wheels, in parallel.
        """
        blobs = [(what, path) for what, path in files if self._is_blob(path)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            intact = list(
                pool.map(lambda pair: self.store.verify_blob(pair[1].name, _size(pair[1])), blobs)
            )
        for (what, blob), ok in zip(blobs, intact, strict=True):
            if not ok:
                raise IntegrityError(
                    f"{what}: the store's blob sha256:{blob.name} was altered after it was "
                    "verified; it was removed: run the archive again to restore it"
                )

    def _is_blob(self, path: Path) -> bool:
        name = path.name
        return is_sha256_hex(name) and path == self.store.blob_path(name)

    def installed(self, dists: Sequence[InstalledDist]) -> None:
        """Note the distributions installed (not linked) into this environment."""
        self._fresh += [(self._keys[dist.label], dist.dist_info) for dist in dists]

    def remember(self, environment: Path) -> None:
        """Point the wheels installed into ``environment`` (now complete, in the store) at it."""
        if environment.parent != self.store.root / "envs" or not self.store.is_complete(
            environment
        ):
            raise ValueError(f"{environment} is not a complete environment of {self.store.root}")
        for key, dist_info in self._fresh:
            pointer = {"environment": environment.name, "dist_info": dist_info}
            data = json.dumps(pointer, sort_keys=True).encode() + b"\n"
            # Not synced, and not an error if it cannot be written (the environment is
            # complete): a pointer lost only costs installing the wheel again some day.
            with contextlib.suppress(StoreError):
                self.store.write_atomic(self.store.installed_path(key), data, sync=False)
        self._fresh = []


def pointer_key(wheel_sha256: str, interpreter_id: str) -> str:
    """``installed/<key>``: the pointer's name for a wheel on an interpreter (by its id)."""
    return f"{wheel_sha256}-{interpreter_id}-v{ENVIRONMENT_LAYOUT}"


def runtime_pointer_key(runtime_sha256s: Mapping[str, str], interpreter_id: str) -> str:
    """The pointer's name for photonpack's runtime files (path -> sha256) on an interpreter."""
    lines = sorted(f"{rel} {sha}\n" for rel, sha in runtime_sha256s.items())
    return pointer_key(hashlib.sha256("".join(lines).encode()).hexdigest(), interpreter_id)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1  # verify_blob then reports it missing


def _record_rows(env: Path, site: str, dist_info: str) -> list[RecordRow]:
    record = env / site / dist_info / "RECORD"
    try:
        return read_record(record)
    except OSError as exc:
        raise IntegrityError(
            f"the environment {env} cannot give {dist_info}: its RECORD cannot be read "
            f"({exc.strerror or exc}){_TAKE_OUT}"
        ) from exc
    except RecordError as exc:
        raise IntegrityError(
            f"the environment {env} has a malformed RECORD row in {dist_info} ({exc}){_TAKE_OUT}"
        ) from exc


def _link(env: str, rel: str, destination: str) -> None:
    # Strings, not Paths: thousands of these run in a row, each a system call or two.
    source, target = f"{env}/{rel}", f"{destination}/{rel}"
    try:
        os.link(source, target)
    except FileNotFoundError as exc:
        if os.path.exists(source):  # noqa: PTH110
            raise
        raise IntegrityError(
            f"the environment {env} lacks {rel}, which its RECORD lists; "
            "run 'photonpack verify --store' to take it out of use, then run again"
        ) from exc
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        shutil.copyfile(source, target)
        shutil.copymode(source, target)


def plan_links(
    sources: Sequence[tuple[str, Path, str]], destination: Path, interpreter: Interpreter
) -> tuple[Linked, Callable[[], None]]:
    """What hard-linking each ``(wheel filename or RUNTIME, environment, dist-info)`` gives.

    Returns the files it links, and the function that links them. A file two
    wheels share is linked once; different content at one path is a conflict,
    as in a plain install (raised here, before anything is linked). The pyc of
    a shared source may differ byte for byte between environments (marshal
    output depends on the compiling process): the first one is kept and the
    other RECORD is rewritten to list it.
    """
    owners: Linked = {}
    links: list[tuple[Path, str]] = []  # (source environment, path relative to both)
    records: list[tuple[Path, list[RecordRow], str]] = []  # RECORDs to rewrite
    site = interpreter.site_packages
    root = os.fspath(destination)
    for filename, env, dist_info in sources:
        rows = _record_rows(env, site, dist_info)
        record = posixpath.join(site, dist_info, "RECORD")
        mine = {_relative(env, site, row): at for at, row in enumerate(rows)}
        hashes = {rel: rows[at].hash for rel, at in mine.items()}
        rewritten = False
        # Sources before pycs, so that a conflict names the source.
        for rel, at in sorted(mine.items(), key=lambda item: item[0].endswith(".pyc")):
            row = rows[at]
            if rel == record or row.size is None:
                continue
            owner = owners.setdefault(
                f"{root}/{rel}", Owner(row.algorithm, row.digest, row.size, filename)
            )
            if owner.dist == filename:
                links.append((env, rel))
            elif (owner.algorithm, owner.digest) != (row.algorithm, row.digest):
                if not _shared_pyc(owners, hashes, root, rel, filename):
                    raise conflict(owner.dist, filename, Path(rel))
                rows[at] = row._replace(hash=f"{owner.algorithm}={owner.digest}", size=owner.size)
                rewritten = True
        if rewritten:
            records.append((destination / record, rows, posixpath.relpath(record, site)))
        else:
            links.append((env, record))

    def make_links() -> None:
        # Links and directories are cheap but many: a few threads keep the filesystem busy.
        batches = [links[at : at + _LINK_BATCH] for at in range(0, len(links), _LINK_BATCH)]
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="photonpack-link") as pool:
            list(pool.map(lambda batch: _link_all(batch, destination), batches))
        for path, rows, name in records:
            data = format_record((row for row in rows if row.path != name), own_path=name)
            write_new(path, data, executable=False, readonly=True)

    return owners, make_links


def _link_all(batch: Sequence[tuple[Path, str]], destination: Path) -> None:
    made: set[str] = set()
    root = os.fspath(destination)
    for env, rel in batch:
        parent = posixpath.dirname(rel)
        if parent not in made:
            os.makedirs(f"{root}/{parent}", exist_ok=True)  # noqa: PTH103 - races with other batches
            made.add(parent)
        _link(os.fspath(env), rel, root)


def _relative(env: Path, site: str, row: RecordRow) -> str:
    """A RECORD row's path relative to the environment, refused if it leaves it."""
    if row.hash and row.size is None:
        raise IntegrityError(f"the environment {env} has a malformed RECORD row {row}{_TAKE_OUT}")
    rel = posixpath.normpath(posixpath.join(site, row.path))
    if rel.startswith(("/", "../")) or rel == "..":
        raise IntegrityError(f"the environment {env} lists {row.path}, outside itself{_TAKE_OUT}")
    return rel


def _shared_pyc(owners: Linked, hashes: Mapping[str, str], root: str, rel: str, wheel: str) -> bool:
    """Whether ``rel`` is the pyc of a source that another wheel installs identically."""
    folder, name = posixpath.split(rel)
    if posixpath.basename(folder) != "__pycache__" or not name.endswith(".pyc"):
        return False
    source = posixpath.join(posixpath.dirname(folder), name.split(".", 1)[0] + ".py")
    owner = owners.get(f"{root}/{source}")
    return (
        owner is not None
        and owner.dist != wheel
        and hashes.get(source) == f"{owner.algorithm}={owner.digest}"
    )
