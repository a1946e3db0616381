"""Build a photon archive: lock → fetch → build sources → capture the handler contract → bundle.

Everything the archive will hold enters the store first (verified), so that
the archive is written from content-addressed blobs only and ``create`` has
nothing left to copy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import io
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from photonpack.__about__ import __version__
from photonpack._fs import AtomicFile, atomic_write
from photonpack.archive import (
    SPLIT_SIZE,
    ByteProgress,
    WriteProgress,
    archive_mtime,
    write_archive,
)
from photonpack.archive.early import EarlyBody
from photonpack.archive.manifest import (
    BuildWheelEntry,
    FileEntry,
    Manifest,
    SourceEntry,
    WheelEntry,
)
from photonpack.buildfiles import photon_files, runtime_entries
from photonpack.contract import begin_description, describe_first, describe_photon, photon_entry
from photonpack.errors import BuildError
from photonpack.install.wheel import inspect_wheel
from photonpack.lock.closure import check_closure
from photonpack.lock.declaration import Declaration, read_declaration
from photonpack.lock.download import LockedFile, fetch_wheels
from photonpack.lock.lockfile import (
    Lock,
    LockedWheel,
    LockOptions,
    check_lock,
    default_lock_path,
    default_name,
    lock_photon,
    read_lock,
)
from photonpack.lock.sdist import LockedSdist
from photonpack.serving.source import PhotonSpec
from photonpack.sources.form import pin_of
from photonpack.store import Store, validate_name
from photonpack.store.written import note_written, still_written, written_digest
from photonpack.wheelbuild.builder import BuiltWheel, build_sources, build_wheels_needed
from photonpack.wheelbuild.prebuilt import lock_time_builder

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "BuildOptions",
    "BuildResult",
    "FetchProgress",
    "StoredBuild",
    "build",
    "build_in_store",
    "rebuild",
    "write_atomic",
]


class FetchProgress(Protocol):
    """Told how many bytes of wheels a build downloads, then as they arrive."""

    def start(self, total_bytes: int) -> None: ...

    def advance(self, wheel: LockedFile, received: int) -> None: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """What ``photonpack build`` was asked for."""

    name: str | None = None
    output: Path | None = None
    locked: bool = False
    lock: LockOptions = dataclasses.field(default_factory=LockOptions)
    # Build every sdist again instead of taking its wheel from the store's cache (verify --rebuild).
    fresh_sources: bool = False
    # Keep the archive at ``output`` when this store wrote it for the same manifest and it is
    # untouched since (``store/written.py``); off for scratch outputs nobody builds into again.
    reuse_output: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoredBuild:
    """A photon built into the store: its identity, its archive's size, what to know."""

    manifest: Manifest
    size: int
    lock_changed: bool
    warnings: tuple[str, ...] = ()
    # The blobs this process has just hashed (the wheels and sdists it fetched, or re-hashed
    # in the store): the archive is written without hashing them again.
    hashed: frozenset[str] = frozenset()

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.manifest.name,
            "digest": self.digest,
            "size": self.size,
            "targets": list(self.manifest.targets),
            "warnings": list(self.warnings),
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildResult(StoredBuild):
    """The archive written, its identity, and what the user should know."""

    path: Path
    rewritten: bool = True  # False when the same archive, untouched, was already at ``path``

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": str(self.path), "rewritten": self.rewritten}


def build(
    spec: PhotonSpec,
    options: BuildOptions,
    *,
    store: Store | None = None,
    progress: FetchProgress | None = None,
    writing: WriteProgress | None = None,
) -> BuildResult:
    """Build ``spec`` into one deterministic ``.photon`` archive at ``options.output``.

    ``progress`` follows the downloads, ``writing`` the archive's writing.
    """
    store = store or Store()
    declaration = read_declaration(spec)
    name = _photon_name(declaration, options)
    output = (options.output or Path.cwd() / f"{name}.photon").absolute()
    # A big archive is written while its wheels download (archive/early.py), unless the file
    # at ``output`` is one this store wrote: an unchanged build keeps it.
    stream = not (options.reuse_output and written_digest(store, output) is not None)
    with _Early(output if stream else None, store) as early:
        stored = _assemble(
            spec, options, store, declaration=declaration, name=name, progress=progress, early=early
        )
        manifest = stored.manifest
        rewritten = not (options.reuse_output and still_written(store, output, manifest.digest))
        if rewritten:
            if writing is not None:
                writing.begin(manifest.total_size)
            update = writing.update if writing else None
            if not early.finish(manifest, update, hashed=stored.hashed):
                write_atomic(output, manifest, store, update, hashed=stored.hashed)
            if options.reuse_output:
                note_written(store, output, manifest.digest)
    return BuildResult(
        path=output,
        manifest=manifest,
        size=output.stat().st_size,
        lock_changed=stored.lock_changed,
        warnings=stored.warnings,
        rewritten=rewritten,
    )


def build_in_store(
    spec: PhotonSpec,
    options: BuildOptions,
    *,
    store: Store | None = None,
    progress: FetchProgress | None = None,
    writing: WriteProgress | None = None,
) -> StoredBuild:
    """Build ``spec`` into the store only (``create`` without ``-o``): no archive file.

    The archive is still compressed, its bytes counted and dropped: its size is
    what ``list`` shows and what ``push`` will send.
    """
    store = store or Store()
    declaration = read_declaration(spec)
    name = _photon_name(declaration, options)
    stored = _assemble(
        spec, options, store, declaration=declaration, name=name, progress=progress, early=None
    )
    counted = _Counter()
    if writing is not None:
        writing.begin(stored.manifest.total_size)
    with io.BufferedWriter(counted, 1 << 20) as out:
        write_archive(
            out, stored.manifest, store.blob_path, progress=writing.update if writing else None
        )
    return dataclasses.replace(stored, size=counted.size)


# The photon's attributes before the describe: a provisional manifest's (archive/early.py).
_UNDESCRIBED: dict[str, Any] = {
    "requirement_dependency": [],
    "system_dependency": [],
    "image": None,
}


def _photon_name(declaration: Declaration, options: BuildOptions) -> str:
    """The name the photon is built under: ``--name``, else its class's, checked."""
    return validate_name(options.name or default_name(declaration.class_name))


def _locked(
    spec: PhotonSpec, options: BuildOptions, store: Store, name: str
) -> tuple[Lock, bool, LockOptions]:
    """The photon's lock (written or checked), whether it changed, and the options used."""
    lock_options = dataclasses.replace(
        options.lock,
        name=name,
        source_cache=options.lock.source_cache or source_cache(store),
        # A dynamic sdist is built while locking, into this store: built once, not twice.
        builder=None if options.fresh_sources else lock_time_builder(store),
    )
    lock_path = (
        default_lock_path(spec, name) if lock_options.output is None else lock_options.output
    )
    if options.locked:
        check_lock(spec, lock_options)
        return read_lock(lock_path), False, lock_options
    result = lock_photon(spec, lock_options)
    return result.lock, result.changed, lock_options


def _assemble(
    spec: PhotonSpec,
    options: BuildOptions,
    store: Store,
    *,
    declaration: Declaration,
    name: str,
    progress: FetchProgress | None,
    early: _Early | None,
) -> StoredBuild:
    """Lock, fetch, build sources and describe ``spec``; its manifest, in the store.

    ``early`` is given the archive's blobs as they arrive, to write it meanwhile.
    """
    lock, lock_changed, lock_options = _locked(spec, options, store, name)
    lock = lock.with_source_archives(_source_blobs(lock.sdists(), lock.path.parent, store))
    sources = {s.sha256: s for t in lock.targets for s in lock.sources_for(t)}
    # The sdists to build and their build wheels are fetched and verified like the wheels.
    locked: list[LockedFile] = [*lock.wheels(), *sources.values(), *build_wheels_needed(lock)]
    missing = [w for w in locked if not store.has_blob(w.sha256, w.size)]
    if progress is not None and missing:
        progress.start(sum(w.size for w in missing))
    runtime = runtime_entries(store)
    # The wheels describe needs first come first; the describe environment is begun while
    # the big ones download.
    first = {w.sha256: w for w in describe_first(lock)}
    wheel_files = {w.sha256 for target in lock.targets for w in lock.wheels_for(target)}
    inspected: dict[str, tuple[str, ...]] = {}
    files = photon_files(spec, declaration, lock.path, store)
    if early is not None and not sources:  # every blob is known: the archive can begin
        early.begin(
            _manifest(
                name=name,
                entry=photon_entry(spec, declaration),
                photon=_with_exclusions(_with_lepton_dependencies(_UNDESCRIBED, declaration), lock),
                description={"handlers": [], "openapi": None},
                lock=lock,
                files=files,
                runtime=runtime,
                wheels=_wheel_entries(lock, {}),
            ),
            present={f.sha256 for f in (*files, *runtime)},
        )

    def inspect(locked: LockedFile, path: Path) -> None:  # in a fetch thread, as each arrives
        if early is not None:
            early.arrived(locked.sha256)
        if locked.sha256 in wheel_files:
            inspected[locked.sha256] = _requires_dist(store, path, locked.filename, locked.sha256)

    with store.temp_dir("fetch-") as partial:  # a killed download leaves only this behind
        fetch = functools.partial(
            fetch_wheels,
            cache=store.blob_dir,
            progress=progress.advance if progress is not None else None,
            index=lock_options.index,
            partial=partial,
            done=inspect,
        )
        fetched = fetch(list(first.values()))
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fetch") as pool:
            rest = pool.submit(fetch, [w for w in locked if w.sha256 not in first])
            try:
                begin_description(store, lock, fetched, runtime)
            finally:
                fetched |= rest.result()

    built = (
        build_sources(lock, store, epoch=archive_mtime(), fresh=options.fresh_sources)
        if sources
        else {}
    )

    def requires_dist(locked: LockedWheel | LockedSdist) -> tuple[str, ...]:
        # A sdist stands for the wheel built from it: its metadata may differ from the one
        # pip prepared at lock time, and what it needs must be locked all the same.
        path, filename, sha = fetched.get(locked.sha256), locked.filename, locked.sha256
        if isinstance(locked, LockedSdist):
            wheel = built[locked.sha256]
            path, filename, sha = store.blob_path(wheel.sha256), wheel.filename, wheel.sha256
        if sha not in inspected:
            assert path is not None
            inspected[sha] = _requires_dist(store, path, filename, sha)
        return inspected[sha]

    check_closure(lock, requires_dist=requires_dist)  # what the wheels need, locked too
    wheels = _wheel_entries(lock, built)
    description, warnings = describe_photon(
        spec, declaration, lock=lock, wheels=wheels, files=files, runtime=runtime, store=store
    )
    manifest = _manifest(
        name=name,
        entry=photon_entry(spec, declaration),
        photon=_with_exclusions(
            _with_lepton_dependencies(description["photon"], declaration), lock
        ),
        description=description,
        lock=lock,
        files=files,
        runtime=runtime,
        wheels=wheels,
    )
    store.put_manifest(manifest.digest, manifest.to_bytes())
    return StoredBuild(
        manifest=manifest,
        size=0,
        lock_changed=lock_changed,
        warnings=warnings,
        hashed=frozenset(fetched),
    )


def _manifest(
    *,
    name: str,
    entry: str,
    photon: dict[str, Any],
    description: dict[str, Any],
    lock: Lock,
    files: list[FileEntry],
    runtime: list[FileEntry],
    wheels: list[WheelEntry],
) -> Manifest:
    return Manifest.from_dict(
        {
            "schema_version": 1,
            "name": name,
            "entry": entry,
            "photon": photon,
            "handlers": description["handlers"],
            "openapi": description["openapi"],
            "targets": [str(target) for target in lock.targets],
            "lock": lock.path.name,
            "files": [entry.to_dict() for entry in files],
            "runtime": [entry.to_dict() for entry in runtime],
            "wheels": [entry.to_dict() for entry in wheels],
            "tools": {"photonpack": __version__},
        }
    )


class _Early:
    """A big archive written while its wheels download, into ``output``'s temp file.

    ``begin`` starts it once every blob is known (a lock with sdists to build
    never does); ``finish`` writes the head and puts the file in place, or says
    the archive must be written from the start. Without ``output``, or leaving
    the ``with`` block otherwise, nothing is kept.
    """

    def __init__(self, output: Path | None, store: Store) -> None:
        self._output = output
        self._store = store
        self._file: AtomicFile | None = None
        self._body: EarlyBody | None = None

    def begin(self, provisional: Manifest, present: set[str]) -> None:
        if self._output is None or provisional.total_size < SPLIT_SIZE:
            return
        _check_output_dir(self._output)
        with _output_errors(self._output):
            self._file = AtomicFile(self._output)
        self._body = EarlyBody(
            self._file.file,
            provisional,
            self._store.blob_path,
            mtime=archive_mtime(),
            present=present,
        )

    def arrived(self, sha256: str) -> None:  # in a fetch thread: fetch_wheels hashed it
        if self._body is not None:
            self._body.arrived(sha256, hashed=True)

    def finish(
        self, manifest: Manifest, progress: ByteProgress | None, *, hashed: Collection[str]
    ) -> bool:
        """Put ``manifest``'s archive in place; False when it was not begun (write it)."""
        if self._body is None or self._file is None:
            return False
        with _output_errors(self._file.path):
            if not self._body.finish(manifest, progress):
                out = self._file.file
                out.seek(0)
                out.truncate()
                write_archive(
                    out, manifest, self._store.blob_path, progress=progress, hashed=hashed
                )
            self._file.commit()
        self._file = None
        return True

    def __enter__(self) -> _Early:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._body is not None:
            self._body.close()
        if self._file is not None:
            self._file.abort()


class _Counter(io.RawIOBase):
    """A sink that counts the bytes written to it: the size of an archive not stored."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        written = memoryview(data).nbytes
        self.size += written
        return written


def _requires_dist(store: Store, path: Path, filename: str, sha256: str) -> tuple[str, ...]:
    """The wheel's ``Requires-Dist``, once it passed :func:`inspect_wheel`, remembered by sha256.

    The blob was just re-hashed (``fetch_wheels``, ``build_sources``), and the
    same bytes inspect the same: a warm build need not walk torch's RECORD again.
    """
    import json

    cached = store.root / "inspected" / f"{sha256}.json"
    try:
        found = json.loads(cached.read_bytes())["requires_dist"]
        if isinstance(found, list) and all(isinstance(line, str) for line in found):
            return tuple(found)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    requires = inspect_wheel(path, filename=filename).metadata.requires_dist
    store.write_atomic(cached, json.dumps({"requires_dist": list(requires)}).encode(), sync=False)
    return requires


def rebuild(
    spec: PhotonSpec, built: Manifest, output: Path, *, store: Store | None = None
) -> Manifest:
    """Build ``spec`` again from its committed lock, as ``built`` was, into ``output``.

    The lock is used as it is (``--locked``, with the targets and index it
    records), so any difference from ``built`` comes from the source, the
    wheels or the tools, never from a fresh resolution. Sdists are built again,
    not taken from the cache: a wheel that differs shows as rehashed, built
    from the same source.
    """
    lock = read_lock(default_lock_path(spec, built.name))
    options = BuildOptions(
        name=built.name,
        output=output,
        locked=True,
        lock=LockOptions(
            name=built.name,
            targets=lock.inputs.targets,
            index=lock.inputs.index,
            from_lock=lock.inputs.from_lock.path if lock.inputs.from_lock else None,
        ),
        fresh_sources=True,
        reuse_output=False,
    )
    return build(spec, options, store=store).manifest


def source_cache(store: Store) -> Path:
    """Where git repositories and source archives are cached: the store's ``cache/``."""
    return store.root / "cache"


def _source_blobs(
    sdists: Iterable[LockedSdist], base_dir: Path, store: Store
) -> dict[str, tuple[str, int]]:
    """Each pinned source's archive, made again from its pin, into the store.

    The pin is what is checked (a directory's tree digest, a git commit, an archive
    download's sha256: :func:`~photonpack.sources.archive.source_archive`), not the
    archive's bytes, which depend on the zlib that compressed them. Returns the
    locked archive sha256 -> (sha256, size) of the archive made here, for each that
    differs; a git commit already fetched is exported offline from the cache.
    """
    from photonpack.sources.archive import source_archive

    made_here = {}
    for sdist in sdists:
        if sdist.source is None or store.has_blob(sdist.sha256, sdist.size):
            continue
        made = source_archive(sdist.source, base_dir, source_cache(store))
        size = made.path.stat().st_size
        store.add_blob_file(made.path, made.sha256, size)
        if made.sha256 != sdist.sha256:
            made_here[sdist.sha256] = (made.sha256, size)
    return made_here


def write_atomic(
    output: Path,
    manifest: Manifest,
    store: Store,
    progress: ByteProgress | None = None,
    *,
    hashed: Collection[str] = frozenset(),
) -> int:
    """Write the archive next to ``output`` and rename it into place; return its size.

    A failure or Ctrl-C leaves no partial file and any previous file untouched.
    A directory that does not exist is an error, as for ``cp``. ``hashed``: as
    for :func:`write_archive` (the wheels a build has just fetched and hashed).
    """
    output = output.absolute()
    _check_output_dir(output)
    with _output_errors(output):
        with atomic_write(output) as out:
            write_archive(out, manifest, store.blob_path, progress=progress, hashed=hashed)
        return output.stat().st_size


def _check_output_dir(output: Path) -> None:
    if not output.parent.is_dir():
        raise BuildError(
            f"cannot write {output}: the directory {output.parent} does not exist; create it "
            "or choose another -o"
        )


@contextlib.contextmanager
def _output_errors(output: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise BuildError(f"cannot write {output}: {exc.strerror or exc}") from exc


def _with_lepton_dependencies(photon: dict[str, Any], declaration: Declaration) -> dict[str, Any]:
    """The photon's attributes, with Lepton's runtime set when it was locked for it."""
    if not declaration.lepton_dependencies:
        return photon
    return {**photon, "lepton_dependencies": list(declaration.lepton_dependencies)}


def _with_exclusions(photon: dict[str, Any], lock: Lock) -> dict[str, Any]:
    """The photon's attributes, with the packages its ``uninstall`` lines keep out, if any."""
    if not lock.inputs.exclusions:
        return photon
    return {**photon, "exclusions": list(lock.inputs.exclusions)}


def _wheel_entries(lock: Lock, built: dict[str, BuiltWheel]) -> list[WheelEntry]:
    """The locked wheels and the wheels built from sdists, each with the targets it serves."""
    targets: dict[str, list[str]] = {}
    by_sha: dict[str, WheelEntry] = {}
    for target in lock.targets:
        for wheel in lock.wheels_for(target):
            targets.setdefault(wheel.sha256, []).append(str(target))
            by_sha[wheel.sha256] = WheelEntry(
                filename=wheel.filename,
                name=wheel.name,
                version=wheel.version,
                sha256=wheel.sha256,
                size=wheel.size,
                targets=(),
            )
        for sdist in lock.sources_for(target):
            made = built[sdist.sha256]
            targets.setdefault(made.sha256, []).append(str(target))
            source = SourceEntry(
                filename=sdist.filename,
                url=sdist.url,
                sha256=sdist.sha256,
                size=sdist.size,
                build_wheels=tuple(
                    BuildWheelEntry(filename=w.filename, sha256=w.sha256, size=w.size)
                    for w in made.build_wheels
                ),
                pin=pin_of(sdist.source, sdist.sha256),
            )
            by_sha[made.sha256] = WheelEntry(
                filename=made.filename,
                name=sdist.name,
                version=sdist.version,
                sha256=made.sha256,
                size=made.size,
                targets=(),
                source=source,
            )
    return sorted(
        (
            dataclasses.replace(entry, targets=tuple(sorted(targets[sha])))
            for sha, entry in by_sha.items()
        ),
        key=lambda entry: entry.filename,
    )
