"""Build locked sdists into wheels: hermetic, cached in the store, checked against the targets.

For each sdist a target needs (:meth:`Lock.sources_for`):

1. The sdist and its locked build wheels enter the store, each verified
   against the lock's sha256 (the caller fetched them).
2. The cache is asked first: ``built/<key>.json`` in the store, keyed by the
   sdist's sha256, the build wheels' sha256s, the backend and this machine's
   target (:func:`cache_key`). A hit whose wheel blob is still in the store
   builds nothing.
3. Otherwise a fresh venv is made from the build wheels only (photonpack's own
   installer), the sdist unpacked beside it, and the backend's
   ``build_wheel`` run with no network (:mod:`photonpack.wheelbuild.sandbox`).
4. The wheel must be the package and version the lock says; its sha256 is
   taken, it enters the store, and the cache records it.

A pure wheel (``py3-none-any``) serves every target; a platform wheel only
targets it installs on, and any other target that needs it is an error naming
both and saying how to give a wheel instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from photonpack._digest import sha256_file
from photonpack._fs import write_atomic
from photonpack.errors import BuildError
from photonpack.lock.buildreqs import build_environment
from photonpack.lock.pylock import Lock, LockedPackage, LockedWheel
from photonpack.lock.sdist import LockedSdist
from photonpack.lock.target import Target
from photonpack.store import Store
from photonpack.wheelbuild.sandbox import BuildSettings, HookFailed, run_hook, tail, tried_network

__all__ = [
    "BUILD_FORMAT",
    "BuiltWheel",
    "build_sources",
    "build_wheels_needed",
    "cache_key",
    "cached_or_built",
    "host_wheel",
]

# Part of every cache key: bump it when the same inputs must be built again.
BUILD_FORMAT = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuiltWheel:
    """A wheel built from a locked sdist, in the store."""

    filename: str
    sha256: str
    size: int
    source: LockedSdist
    cached: bool  # taken from the cache, not built by this call
    build_wheels: tuple[LockedWheel, ...] = ()  # its build environment, by filename


def build_wheels_needed(lock: Lock) -> list[LockedWheel]:
    """The build wheels every needed sdist installs, for this machine: what to fetch first."""
    host = Target.host()
    needed = {s.sha256: s for t in lock.targets for s in lock.sources_for(t)}
    wheels = {}
    for sdist in needed.values():
        for package in build_environment(lock, sdist):
            wheel = _host_wheel(package, host, lock, sdist)
            wheels[wheel.sha256] = wheel
    return [wheels[k] for k in sorted(wheels)]


def build_sources(
    lock: Lock, store: Store, *, epoch: int, logs: Path | None = None, fresh: bool = False
) -> dict[str, BuiltWheel]:
    """sdist sha256 -> its wheel, for every sdist a target of ``lock`` needs.

    The sdists and build wheels must be in the store already (verified).
    ``logs`` is where build logs are kept (the store's ``logs/build`` by default).
    ``fresh`` builds even what the cache holds (and records the new wheel).
    """
    host = Target.host()
    needed: dict[str, tuple[LockedSdist, set[Target]]] = {}
    for target in lock.targets:
        for sdist in lock.sources_for(target):
            needed.setdefault(sdist.sha256, (sdist, set()))[1].add(target)
    built = {}
    for sha, (sdist, targets) in sorted(needed.items()):
        wheels = [_host_wheel(p, host, lock, sdist) for p in build_environment(lock, sdist)]
        wheel = cached_or_built(sdist, wheels, store, host, epoch=epoch, logs=logs, fresh=fresh)
        _check_targets(wheel, targets)
        by_name = tuple(sorted(wheels, key=lambda w: w.filename))
        built[sha] = dataclasses.replace(wheel, build_wheels=by_name)
    return built


def cache_key(
    sdist: LockedSdist, wheels: Sequence[LockedWheel], host: Target, *, epoch: int
) -> str:
    """The hex key of a build: source, build environment, backend, target and epoch."""
    lines = [f"photonpack-source-build {BUILD_FORMAT}", f"source {sdist.sha256}"]
    lines += [f"build-wheel {h}" for h in sorted({w.sha256 for w in wheels})]
    lines += [
        f"backend {sdist.build.backend}",
        f"backend-path {json.dumps(sdist.build.backend_path)}",
    ]
    lines += [f"target {host}", f"source-date-epoch {epoch}"]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def host_wheel(package: LockedPackage, host: Target) -> LockedWheel | None:
    """The wheel of ``package`` this machine installs (the best ranked), or None."""
    ranked = [
        (r, w.filename, w) for w in package.wheels if (r := host.wheel_rank(w.filename)) is not None
    ]
    return min(ranked, key=lambda item: item[:2])[2] if ranked else None


def _host_wheel(
    package: LockedPackage, host: Target, lock: Lock, sdist: LockedSdist
) -> LockedWheel:
    wheel = host_wheel(package, host)
    if wheel is None:
        raise BuildError(
            f"{sdist.filename} builds with {package.name} {package.version}, locked for "
            f"{lock.build_target}, which has no wheel for this machine ({host}); run "
            "photonpack lock --upgrade on the machine that builds"
        )
    return wheel


def cached_or_built(
    sdist: LockedSdist,
    wheels: Sequence[LockedWheel],
    store: Store,
    host: Target,
    *,
    epoch: int,
    logs: Path | None,
    fresh: bool,
) -> BuiltWheel:
    """The wheel of ``sdist`` from the store's ``built/`` cache, else built and recorded."""
    key = cache_key(sdist, wheels, host, epoch=epoch)
    record = store.root / "built" / f"{key}.json"
    with store.lock(f"built-{key}"):
        cached = None if fresh else _read_record(record, store, sdist)
        if cached is not None:
            return cached
        log_dir = logs or store.root / "logs" / "build"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{sdist.filename.removesuffix('.tar.gz').removesuffix('.zip')}.log"
        log.write_bytes(b"")
        with store.temp_dir("build-") as work:
            path = _build(sdist, wheels, store, work, epoch=epoch, log=log)
            sha256, size = sha256_file(path)
            store.add_blob_file(path, sha256, size)
        entry = {"filename": path.name, "sha256": sha256, "size": size, "source": sdist.sha256}
        record.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(record, json.dumps(entry, sort_keys=True).encode())
    return BuiltWheel(filename=path.name, sha256=sha256, size=size, source=sdist, cached=False)


def _read_record(record: Path, store: Store, sdist: LockedSdist) -> BuiltWheel | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        filename, sha256, size = str(data["filename"]), str(data["sha256"]), int(data["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no record, or a damaged one: build again
    if not store.has_blob(sha256, size):
        return None  # the wheel was collected: build again
    return BuiltWheel(filename=filename, sha256=sha256, size=size, source=sdist, cached=True)


def _build(
    sdist: LockedSdist,
    wheels: Sequence[LockedWheel],
    store: Store,
    work: Path,
    *,
    epoch: int,
    log: Path,
) -> Path:
    from photonpack.install.installer import create_environment

    venv, home, out = work / "env", work / "home", work / "wheel"
    home.mkdir()
    out.mkdir()
    create_environment(
        venv,
        wheels={w.filename: store.blob_path(w.sha256) for w in wheels},
        compile_bytecode=False,
    )
    source = _unpack(store.blob_path(sdist.sha256), sdist.filename, work / "src")
    settings = BuildSettings(venv=venv, home=home, epoch=epoch)

    def call(hook: str, **kwargs: str) -> Any:
        return run_hook(
            hook,
            source=source,
            backend=sdist.build.backend,
            backend_path=sdist.build.backend_path,
            settings=settings,
            log=log,
            kwargs=kwargs,
        )

    try:
        _check_requires(sdist, call("get_requires_for_build_wheel"), wheels)
        filename = call("build_wheel", wheel_directory=str(out))
    except BuildError:
        raise
    except HookFailed as exc:
        raise _failed(sdist, log) from exc
    except Exception as exc:  # pyproject_hooks' errors: BackendUnavailable, ...
        raise BuildError(
            f"building {sdist.filename}: {type(exc).__name__}: {str(exc).strip()[:300]}; "
            f"full log in {log}"
        ) from exc
    path = out / str(filename)
    _check_wheel(sdist, path)
    return path


def _failed(sdist: LockedSdist, log: Path) -> BuildError:
    lines = tail(log)
    last = "\n    ".join(lines) or "(no output)"
    if tried_network(lines):
        return BuildError(
            f"building {sdist.filename} tried to reach the network, which a hermetic build "
            f"cannot: the backend must build from the sdist and its locked build requirements "
            f"alone; its last lines:\n    {last}\nfull log in {log}; build a wheel yourself "
            "(pip wheel --no-deps) and lock with --find-links DIR"
        )
    return BuildError(
        f"building {sdist.filename} failed; the backend's last lines:\n    {last}\n"
        f"full log in {log}"
    )


def _check_requires(
    sdist: LockedSdist, asked: Sequence[str], wheels: Sequence[LockedWheel]
) -> None:
    """What the backend asks for beyond build-system.requires must be in the environment."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    have = {canonicalize_name(w.name): w.version for w in wheels}
    for line in asked:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = have.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            raise BuildError(
                f"building {sdist.filename}: its backend asks for {line}, which its locked "
                "build environment does not hold (a dynamic build requirement photonpack "
                "cannot lock); build a wheel yourself (pip wheel --no-deps) and lock with "
                "--find-links DIR"
            )


def _check_wheel(sdist: LockedSdist, path: Path) -> None:
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    try:
        name, version, _build, _tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        raise BuildError(f"building {sdist.filename} gave {path.name!r}, not a wheel") from exc
    if not path.is_file():
        raise BuildError(f"building {sdist.filename}: the backend named {path.name} but wrote none")
    # A pinned source built at lock time has no version yet (""): its wheel names it.
    if name != canonicalize_name(sdist.name) or (
        sdist.version and version != Version(sdist.version)
    ):
        raise BuildError(
            f"building {sdist.filename} gave {path.name}, not {sdist.name} {sdist.version} as "
            "locked; the sdist's metadata contradicts its name"
        )


def _check_targets(wheel: BuiltWheel, targets: set[Target]) -> None:
    for target in sorted(targets, key=str):
        if not target.supports(wheel.filename):
            raise BuildError(
                f"{wheel.source.name} {wheel.source.version} builds from its sdist into "
                f"{wheel.filename}, a wheel for this machine only, and target {target} needs "
                f"it; build a wheel on a {target} machine (pip wheel --no-deps "
                f"{wheel.source.name}=={wheel.source.version}) and lock with --find-links DIR"
            )


def _unpack(archive: Path, filename: str, destination: Path) -> Path:
    """Extract the sdist (regular files and directories only, inside ``destination``)."""
    destination.mkdir()
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _safe(info.filename, filename)
                zf.extractall(destination)  # noqa: S202  # every name checked above
        else:
            with tarfile.open(archive, "r:*") as tar:
                members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
                for member in members:
                    _safe(member.name, filename)
                    member.mode = 0o755 if member.isdir() or member.mode & 0o100 else 0o644
                # The "data" filter refuses what _safe missed (where Python has it).
                extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(destination, members=members, **extra)  # type: ignore[arg-type]  # noqa: S202
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BuildError(f"cannot unpack {filename}: {exc}") from exc
    tops = [p for p in destination.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise BuildError(f"{filename} does not hold exactly one top directory; it is not an sdist")
    return tops[0]


def _safe(name: str, filename: str) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise BuildError(f"{filename} holds {name!r}, a path outside the archive; refusing it")
