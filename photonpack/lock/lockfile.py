"""Lock a photon: its requirements plus the serving stack, for each target, into pylock.

``lock_photon`` reads the photon's declaration, and when the inputs digest
recorded in an existing lock still matches, returns that lock without
importing pip or touching the network. Otherwise it resolves
(:mod:`photonpack.lock.resolve`), picks for every package and target the best
wheel the index offers, takes its digest and size from the index, and writes
the file atomically. The file model lives in :mod:`photonpack.lock.pylock`, the
inputs (requirement lines, options, ``--from``) in :mod:`photonpack.lock.inputs`.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from photonpack._fs import write_atomic
from photonpack.errors import (
    LockError,
    NoCompatibleWheelError,
    ResolutionError,
    StaleLockError,
)
from photonpack.lock.buildreqs import BuildEnvironments, lock_build_requirements
from photonpack.lock.closure import check_closure
from photonpack.lock.index import DistFile
from photonpack.lock.inputs import (
    LockOptions,
    default_lock_path,
    default_name,
    kept_lock,
    lock_inputs,
    read_inputs,
    what_changed,
)
from photonpack.lock.kept import added_packages, check_kept, check_requirements, kept_for, pin_lines
from photonpack.lock.pinned import (
    changed_trees,
    pin_sources,
    relative_to_lock,
    resolver_line,
    source_cache,
    source_file,
    unfragmented,
)
from photonpack.lock.pylock import (
    Lock,
    LockedPackage,
    LockedWheel,
    LockInputs,
    fresh_lock,
    parse_lock,
    read_lock,
)
from photonpack.lock.relative import is_file_url, local_path, recorded
from photonpack.lock.requirements import (
    check_hashes,
    resolver_lines,
    without_exclusions,
)
from photonpack.lock.sdist import LockedSdist
from photonpack.lock.sdistmeta import sdist_metadata
from photonpack.lock.target import Target
from photonpack.serving.source import PhotonSpec

if TYPE_CHECKING:
    from packaging.version import Version

    from photonpack.lock.pipreads import MetadataShortcut
    from photonpack.lock.resolve import Pin, Resolution
    from photonpack.lock.standard import StandardLock
    from photonpack.sources.archive import SourceArchive

__all__ = [
    "Lock",
    "LockOptions",
    "LockResult",
    "LockedWheel",
    "check_lock",
    "default_lock_path",
    "default_name",
    "lock_inputs",
    "lock_photon",
    "parse_lock",
    "read_lock",
]

_MARKER_KEYS = ("platform_machine", "python_version", "sys_platform")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockResult:
    """The lock file, its content, and whether this call rewrote it.

    With ``--from``, ``added`` names the packages (``"name version"``) locked on
    top of the kept pins.
    """

    path: Path
    lock: Lock
    changed: bool
    added: tuple[str, ...] = ()


def check_lock(spec: PhotonSpec, options: LockOptions) -> None:
    """Raise :class:`StaleLockError` with a one-line reason unless the lock is fresh."""
    path, inputs = lock_inputs(spec, options)
    if not path.is_file():
        raise StaleLockError(f"{path.name} does not exist; run photonpack lock")
    lock = read_lock(path)
    if lock.inputs_digest != inputs.digest():
        raise StaleLockError(f"{path.name} is stale: {what_changed(lock.inputs, inputs)}")
    if changed := changed_trees(lock):
        raise StaleLockError(f"{path.name} is stale: {'; '.join(changed)}; run photonpack lock")
    check_closure(lock)
    if (kept := kept_lock(inputs)) is not None:
        check_kept(lock, kept)


def lock_photon(spec: PhotonSpec, options: LockOptions) -> LockResult:
    """Write (or keep) the photon's lock; see the module docstring."""
    path, inputs, sources = read_inputs(spec, options)
    old = _read_text(path)
    if old is not None and not (options.upgrade or options.upgrade_packages):
        fresh = fresh_lock(old, path=path, digest=inputs.digest())
        if fresh is not None and not changed_trees(fresh):
            check_closure(fresh)
            return _result(path, fresh, inputs, changed=False)
    # A malformed previous lock is an error, not something to overwrite silently.
    previous = parse_lock(old, path=path) if old is not None else None
    with source_cache(options.source_cache if sources else None) as cache:
        archives = pin_sources(
            sources,
            spec.directory,
            cache,
            previous=previous,
            upgrade=options.upgrade,
            upgrade_packages=options.upgrade_packages,
        )
        archives = relative_to_lock(archives, spec.directory, path.parent)
        lines = tuple(resolver_line(url, archive) for url, archive in archives.items())
        environments = BuildEnvironments(  # each locked once, as the sdists are met
            inputs.index,
            inputs.directory,
            assemble=lambda i, r: assemble(i, r, path=path),
            preferences=_preferences(previous, options, build=True),
        )
        resolution, pinned = _resolve(
            inputs,
            _preferences(previous, options),
            kept_lock(inputs),
            sources=lines,
            progress=options.progress,
            sdist_metadata=sdist_metadata(environments, options.builder),
        )
        resolution = without_exclusions(resolution, inputs.exclusions)
        lock = assemble(inputs, resolution, path=path, pinned=pinned, sources=archives)
        if lock.sdists():
            lock = lock_build_requirements(lock, environments)
    text = lock.to_text()
    lock = parse_lock(text, path=path)  # what we write must be what we read
    check_closure(lock)
    check_hashes(lock)
    result = _result(path, lock, inputs, changed=text != old)
    if text != old:
        _write_atomic(path, text)
    return result


def _result(path: Path, lock: Lock, inputs: LockInputs, *, changed: bool) -> LockResult:
    """The result, the kept pins checked (``--from``) and what was added to them."""
    kept = kept_lock(inputs)
    if kept is None:
        return LockResult(path=path, lock=lock, changed=changed)
    check_kept(lock, kept)
    return LockResult(path=path, lock=lock, changed=changed, added=added_packages(lock, kept))


def _resolve(
    inputs: LockInputs,
    preferences: dict[str, str],
    kept: StandardLock | None,
    *,
    sources: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    sdist_metadata: MetadataShortcut,
) -> tuple[Resolution, dict[Target, dict[str, DistFile]]]:
    """Resolve the inputs; with ``kept``, on top of its pins (and their wheels, per target).

    ``sources`` are the resolver's lines for the photon's pinned sources (``name @ file:…``).
    """
    from photonpack.lock.resolve import Resolution, resolve

    requirements = (
        *resolver_lines(inputs.requirements),
        *sources,
        *inputs.serving_requirements,
    )
    constraints = inputs.constraints
    if kept is None:
        resolution = resolve(
            requirements, inputs.targets, inputs.index, preferences=preferences,
            constraints=constraints, progress=progress, sdist_metadata=sdist_metadata,
        )  # fmt: skip
        return resolution, {}
    owners = {
        "the photon": resolver_lines(inputs.requirements),  # a source line names no version
        "photonpack's serving stack": inputs.serving_requirements,
    }
    chosen = {target: kept_for(kept, target) for target in inputs.targets}
    groups: dict[tuple[str, ...], list[Target]] = {}  # targets that get the same pins
    for target in inputs.targets:
        check_requirements(kept, chosen[target], owners, target)
        groups.setdefault(pin_lines(chosen[target]), []).append(target)
    names = {p.name for p in kept.packages}
    free = {name: v for name, v in preferences.items() if name not in names}
    merged = Resolution(pins={}, files={})
    for lines, group in groups.items():
        try:
            part = resolve(
                (*requirements, *lines), group, inputs.index, preferences=free,
                constraints=constraints, progress=progress, sdist_metadata=sdist_metadata,
            )  # fmt: skip
        except ResolutionError as exc:
            message = str(exc)
            for line in lines:  # the resolver saw the pins as the photon's own lines
                message = message.replace(
                    f"the photon requires {line}", f"{kept.path.name} pins {line}"
                )
            raise ResolutionError(message) from exc
        merged.pins.update(part.pins)
        merged.files.update(part.files)
    pinned = {t: {name: file for name, (_, file) in chosen[t].items()} for t in inputs.targets}
    return merged, pinned


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"cannot read lock file {path}: {exc}") from exc


def _preferences(
    previous: Lock | None, options: LockOptions, *, build: bool = False
) -> dict[str, str]:
    """The previous lock's pins (of its build packages with ``build``), minus those upgraded."""
    from packaging.utils import canonicalize_name

    if previous is None or options.upgrade:
        return {}
    skip = {canonicalize_name(p) for p in options.upgrade_packages}
    pins: dict[str, str] = {}
    packages = previous.build_packages if build else previous.packages
    for package in packages:  # sorted by name, then version: the oldest comes first
        if package.name not in skip:
            pins.setdefault(package.name, package.version)
    return pins


def assemble(
    inputs: LockInputs,
    resolution: Resolution,
    *,
    path: Path,
    pinned: Mapping[Target, Mapping[str, DistFile]] | None = None,
    sources: Mapping[str, SourceArchive] | None = None,
) -> Lock:
    """The lock of ``resolution``: one entry per (package, version) with the wheels targets need.

    ``pinned`` gives, per target, the wheel of a kept package (``--from``) instead of the index's.
    ``sources`` maps the file URL the resolver was given for a source to its archive.
    """
    sources = sources or {}
    from packaging.version import Version

    chosen: dict[tuple[str, str], dict[Target, DistFile]] = {}
    children: dict[tuple[str, str], set[str]] = {}
    for target, pins in resolution.pins.items():
        for pin in pins.values():
            key = (pin.name, pin.version)
            kept = (pinned or {}).get(target, {}).get(pin.name)
            files = resolution.files[target].get(pin.name, [])
            if kept is not None:
                best = _mirrored(kept, files)
            elif pin.url is not None and (made := sources.get(unfragmented(pin.url))):
                best = source_file(pin.name, pin.version, made)
            else:
                best = _best_wheel(pin, files, target)
            chosen.setdefault(key, {})[target] = best
            kids = {other.name for other in pins.values() if pin.name in other.required_by}
            children.setdefault(key, set()).update(kids)
    complete = _measured({f.url: f for per in chosen.values() for f in per.values()})
    packages = []
    for (name, version), per_target in sorted(
        chosen.items(), key=lambda i: (i[0][0], Version(i[0][1]))
    ):
        files = sorted({complete[f.url] for f in per_target.values()}, key=lambda f: f.filename)
        packages.append(
            LockedPackage(
                name=name,
                version=version,
                marker=_marker(set(per_target), inputs.targets),
                dependencies=tuple(sorted(children[(name, version)])),
                wheels=tuple(_locked(name, version, f, path.parent) for f in files if f.is_wheel),
                sdist=next(
                    (
                        _sdist(name, version, f, sources, path.parent)
                        for f in files
                        if not f.is_wheel
                    ),
                    None,
                ),
            )
        )
    return Lock(
        path=path,
        targets=inputs.targets,
        packages=tuple(packages),
        inputs=inputs,
        inputs_digest=inputs.digest(),
    )


def _mirrored(kept: DistFile, offered: Sequence[DistFile]) -> DistFile:
    """A kept wheel, fetched from the index when it serves the same file (an air-gapped mirror).

    Same name and same sha256: the same bytes, so the pin is kept exactly; only where
    they come from changes, and every byte is still checked against the kept hash.
    """
    for file in offered:
        if (file.filename, file.sha256) == (kept.filename, kept.sha256):
            return dataclasses.replace(kept, url=file.url, size=kept.size or file.size)
    return kept


def _measured(files: dict[str, DistFile]) -> dict[str, DistFile]:
    """Every file with its digest and size; the few the index did not describe are fetched."""
    import concurrent.futures

    from photonpack.lock.index import measure

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return dict(zip(files, pool.map(measure, files.values()), strict=True))


def _best_wheel(pin: Pin, files: Sequence[DistFile], target: Target) -> DistFile:
    from packaging.version import Version

    if pin.url is not None:
        return _direct_file(pin, target)
    version = Version(pin.version)
    ranked = [
        (rank, f.filename, f)
        for f in files
        if f.is_wheel and (v := f.version()) is not None and Version(v) == version
        if (rank := target.wheel_rank(f.filename)) is not None
    ]
    if not ranked and (sdist := _sdist_of(files, version)) is not None:
        return sdist  # an sdist-only release (see photonpack.lock.resolve): built by build
    if not ranked:
        tags = sorted(f.filename for f in files if f.is_wheel and f.version() == pin.version)
        raise NoCompatibleWheelError(
            f"{pin.name} {pin.version} has no wheel for target {target}; "
            f"the index offers {', '.join(tags) or 'no wheels for this version'}"
        )
    return min(ranked, key=lambda item: item[:2])[2]


def _sdist_of(files: Sequence[DistFile], version: Version) -> DistFile | None:
    from packaging.version import Version

    found = sorted(
        (f for f in files if not f.is_wheel and (v := f.version()) and Version(v) == version),
        key=lambda f: (not f.filename.endswith(".tar.gz"), f.filename),
    )
    return found[0] if found else None


def _sdist(
    name: str, version: str, file: DistFile, sources: Mapping[str, SourceArchive], directory: Path
) -> LockedSdist:
    """The lock's sdist entry for ``file``; a local one by its path relative to ``directory``."""
    assert file.sha256 is not None and file.size is not None
    made = sources.get(file.url)
    local = local_path(file.url) if made is None and is_file_url(file.url) else None
    return LockedSdist(
        name=name,
        version=version,
        filename=file.filename,
        url=file.url,
        size=file.size,
        sha256=file.sha256,
        source=made.pinned if made is not None else None,
        path=recorded(local, directory) if local is not None else None,
    )


def _direct_file(pin: Pin, target: Target) -> DistFile:
    assert pin.url is not None
    url, _, fragment = pin.url.partition("#")
    filename = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rpartition("/")[2])
    if not filename.endswith(".whl") or not target.supports(filename):
        raise NoCompatibleWheelError(
            f"{pin.name} {pin.version} is required from {url}, which is not a wheel for "
            f"target {target}; point the requirement at a wheel built for it"
        )
    algorithm, _, digest = fragment.partition("=")
    return DistFile(
        filename=filename,
        url=url,
        sha256=digest if algorithm == "sha256" else None,
        size=None,
    )


def _locked(name: str, version: str, file: DistFile, directory: Path) -> LockedWheel:
    """The lock's entry for ``file``; a local file by its path relative to the lock's directory."""
    assert file.sha256 is not None and file.size is not None
    local = local_path(file.url) if is_file_url(file.url) else None
    return LockedWheel(
        name=name,
        version=version,
        filename=file.filename,
        url=file.url,
        size=file.size,
        sha256=file.sha256,
        path=recorded(local, directory) if local is not None else None,
    )


def _marker(needed_by: set[Target], targets: Sequence[Target]) -> str | None:
    """The shortest marker that selects exactly ``needed_by`` among ``targets``."""
    if needed_by >= set(targets):
        return None
    for key in _MARKER_KEYS:
        values = sorted({t.environment()[key] for t in needed_by})
        selected = {t for t in targets if t.environment()[key] in values}
        if selected == needed_by:
            return " or ".join(f'{key} == "{value}"' for value in values)
    return " or ".join(f"({t.marker()})" for t in sorted(needed_by))


def _write_atomic(path: Path, text: str) -> None:
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise LockError(f"cannot write lock file {path}: {exc.strerror or exc}") from exc
