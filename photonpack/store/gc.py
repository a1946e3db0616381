"""``photonpack gc``: remove from the store what no kept photon needs.

The policy (also in ``docs/internals.md`` and ``photonpack gc --help``):

- **Roots** are every named photon (``refs/``), every photon a deployment
  record names (``deployments/``), and every archive run within the keep
  window (``--keep-recent``, default 7 days: ``run`` notes each use on the
  working directory's ``.complete`` marker).
- **Kept** for each root: its manifest, every blob it lists, its working
  directory and its environment on this interpreter; the records of archive
  files that are a kept photon; the pointers (``installed/``) to kept
  environments. Also kept: any environment or working directory a live
  ``run`` server holds (its lock in ``locks/use-*``), any environment used
  within the keep window (one made by another interpreter, say), and the
  handler-contract cache entries (``describe/``) younger than the window,
  the ``Requires-Dist`` of kept blobs (``inspected/``) and the records of
  archives ``build`` wrote that are still on disk unchanged (``written/``).
- **Build and source caches** (``built/``, ``cache/``): what a kept photon
  carries, and sources used within the window (``photonpack.store.gc_cache``).
- **Removed**: everything else in those areas, including blobs no kept photon
  lists (downloads of unnamed builds, base-image layers: fetched again when
  needed), lock files nobody holds, and temporary files whose process is gone
  or that are older than an hour. Areas gc does not know are left alone.

Safety: the whole collection runs under the store's exclusive lock
(``locks.py``), so no photonpack command reads or writes meanwhile. A
directory is renamed under ``tmp/`` before it is deleted, so a process
outside the protocol finds an item whole or not at all, and a gc killed
half-way leaves only an orphan in ``tmp/``. A dry run takes the same lock
and computes the same plan, so it reports the same figures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from photonpack._digest import is_sha256_hex
from photonpack.errors import IntegrityError, StoreError
from photonpack.store import locks
from photonpack.store.gc_cache import built_garbage, cache_garbage
from photonpack.store.names import COMPLETE, is_orphan, store_errors, temp_prefix
from photonpack.store.refs import Ref
from photonpack.store.written import stale_written

if TYPE_CHECKING:
    from photonpack.archive.manifest import Manifest
    from photonpack.store.store import Store

__all__ = ["DEFAULT_KEEP_S", "AreaFreed", "EnvironmentOf", "GcReport", "collect"]

#: A photon's environment on this interpreter and the ``installed/`` keys it can serve.
EnvironmentOf = Callable[["Manifest"], "tuple[str, frozenset[str]] | None"]

#: The default keep window: an archive run in the last week is kept.
DEFAULT_KEEP_S = 7 * 24 * 3600
#: A temporary entry this old is stale whoever made it: nothing photonpack does takes an hour
#: between writing a temporary file and renaming it into place (and gc runs alone).
_STALE_TMP_S = 3600
#: The areas gc collects, in the order it removes them (records before what they point at).
_AREAS = (
    "archives", "manifests", "work", "envs", "installed", "built", "blobs", "inspected", "cache",
    "describe", "written", "locks", "tmp",
)  # fmt: skip


@dataclasses.dataclass(frozen=True, kw_only=True)
class AreaFreed:
    """What gc removed (or would remove) from one area: ``items``, their ``files`` and bytes.

    ``size`` counts only files whose every hard link goes: bytes still linked
    from a kept environment are not freed.
    """

    area: str
    items: int
    files: int
    size: int

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class GcReport:
    """One collection: what was kept and why, and what went."""

    root: Path
    dry_run: bool
    keep_recent: float
    named: tuple[str, ...]  # photon names (roots)
    deployed: tuple[str, ...]  # deployment names (roots)
    recent: tuple[str, ...]  # digests of archives run within the window (roots)
    photons: int  # distinct photons kept
    in_use: tuple[str, ...]  # items kept because a live process holds them (area/name)
    moved: int  # installed/ pointers moved to a kept environment holding the same wheel
    areas: tuple[AreaFreed, ...]

    @property
    def size(self) -> int:
        return sum(area.size for area in self.areas)

    @property
    def items(self) -> int:
        return sum(area.items for area in self.areas)

    def to_dict(self) -> dict[str, object]:
        return {
            "root": str(self.root),
            "dry_run": self.dry_run,
            "keep_recent": self.keep_recent,
            "roots": {
                "named": list(self.named),
                "deployed": list(self.deployed),
                "recent": list(self.recent),
            },
            "photons": self.photons,
            "in_use": list(self.in_use),
            "moved_pointers": self.moved,
            "areas": [area.to_dict() for area in self.areas],
            "freed": {"items": self.items, "size": self.size},
        }


@dataclasses.dataclass
class _Keep:
    digests: set[str] = dataclasses.field(default_factory=set)  # archive hex
    blobs: set[str] = dataclasses.field(default_factory=set)
    envs: set[str] = dataclasses.field(default_factory=set)
    # installed/ key -> a kept environment that holds that wheel (or those runtime files)
    holders: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class _Roots:
    named: dict[str, str]  # photon name -> archive digest
    deployed: dict[str, str]  # deployment name -> archive digest
    recent: tuple[str, ...]  # archive digests run within the window

    def hexes(self) -> set[str]:
        digests = [*self.named.values(), *self.deployed.values(), *self.recent]
        return {digest.removeprefix("sha256:") for digest in digests}


def collect(
    store: Store,
    *,
    environment_of: EnvironmentOf,
    keep_recent: float = DEFAULT_KEEP_S,
    dry_run: bool = False,
    wait: bool = True,
    now: float | None = None,
) -> GcReport:
    """Collect ``store`` under its exclusive lock (see the module's policy).

    ``environment_of(manifest)`` names the environment a kept photon runs in,
    and the ``installed/`` pointers it can serve
    (``install.environment.photon_environment``: the store cannot compute them).
    ``wait=False`` raises :class:`~photonpack.store.locks.StoreBusyError`
    instead of waiting for the processes using the store.
    """
    store.check_root()
    roots, keep, freed, moves = _Roots({}, {}, ()), _Keep(), _measure([]), {}
    in_use: tuple[str, ...] = ()
    if store.root.is_dir():
        with locks.exclusive(store.root, wait=wait):
            cutoff = (time.time() if now is None else now) - keep_recent
            roots = _roots(store, cutoff)
            keep = _reach(store, roots.hexes(), environment_of)
            keep.envs |= _recently_used(store.root / "envs", cutoff)
            in_use = _in_use(store)
            plan = _plan(store, keep, in_use, cutoff)
            moves = _moves(store, keep, plan)
            plan = [item for item in plan if item.path not in moves]
            freed = _measure(plan)
            if not dry_run:
                _sweep(store, plan, moves)
    return GcReport(
        root=store.root,
        dry_run=dry_run,
        keep_recent=keep_recent,
        named=tuple(roots.named),
        deployed=tuple(roots.deployed),
        recent=roots.recent,
        photons=len(keep.digests),
        in_use=in_use,
        moved=len(moves),
        areas=tuple(freed),
    )


def _roots(store: Store, cutoff: float) -> _Roots:
    """Every photon gc must keep: named, deployed, recently run."""
    named = {ref.name: ref.digest for ref in _refs(store)}
    deployed = {}
    for path in sorted(_entries(store.root / "deployments")):
        if path.suffix == ".json":
            digest = _json(path, "the deployment record").get("photon_digest")
            if isinstance(digest, str) and digest.startswith("sha256:"):
                deployed[path.stem] = digest
    recent = []
    for work in sorted(_entries(store.root / "work")):
        with contextlib.suppress(OSError):
            if is_sha256_hex(work.name) and (work / COMPLETE).stat().st_mtime >= cutoff:
                recent.append(f"sha256:{work.name}")
    return _Roots(dict(sorted(named.items())), deployed, tuple(recent))


def _refs(store: Store) -> list[Ref]:
    """Every ref; one that cannot be read stops gc (its photon's blobs are unknown)."""
    refs = []
    for path in sorted(_entries(store.root / "refs")):
        if path.suffix == ".json":
            raw = _json(path, "the ref")
            try:
                refs.append(Ref(**{k: raw[k] for k in ("name", "digest", "size", "created")}))  # type: ignore[arg-type]
            except (KeyError, TypeError):
                raise _unreadable(path, "the ref", "it lacks a field") from None
    return refs


def _json(path: Path, what: str) -> dict[str, object]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise _unreadable(path, what, str(exc)) from exc
    if not isinstance(data, dict):
        raise _unreadable(path, what, "not a JSON object")
    return data


def _unreadable(path: Path, what: str, why: str) -> StoreError:
    return StoreError(
        f"{what} {path} cannot be read ({why}), so gc cannot tell what it keeps; "
        "nothing was removed: repair or remove that file, then run gc again"
    )


def _reach(store: Store, digests: set[str], environment_of: EnvironmentOf) -> _Keep:
    """Everything the photons ``digests`` (archive hex) need."""
    keep = _Keep()
    for hex_ in sorted(digests):
        try:
            manifest = store.manifest(f"sha256:{hex_}")
        except IntegrityError as exc:
            raise StoreError(
                f"{exc.message}; gc cannot tell which blobs that photon needs, so nothing was "
                "removed: run 'photonpack verify --store', or remove its name, then run gc again"
            ) from exc
        except StoreError:
            continue  # a root whose manifest is gone: nothing of it to keep
        keep.digests.add(hex_)
        keep.blobs.update(manifest.blobs())
        found = environment_of(manifest)
        if found is not None:
            env, pointers = found
            keep.envs.add(env)
            if store.is_complete(store.env_path(env)):
                keep.holders.update(dict.fromkeys(pointers, env))
    return keep


def _recently_used(envs: Path, cutoff: float) -> set[str]:
    used = set()
    for env in _entries(envs):
        with contextlib.suppress(OSError):
            if (env / COMPLETE).stat().st_mtime >= cutoff:
                used.add(env.name)
    return used


def _in_use(store: Store) -> tuple[str, ...]:
    """``area/name`` of each environment and working directory a live process holds."""
    held = []
    for area in ("envs", "work"):
        for item in sorted(_entries(store.root / area)):
            if locks.in_use(store.use_lock_path(item)):
                held.append(f"{area}/{item.name}")
    return tuple(held)


# -- what goes ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Item:
    area: str
    path: Path


def _plan(store: Store, keep: _Keep, in_use: tuple[str, ...], cutoff: float) -> list[_Item]:
    root, plan = store.root, list[_Item]()
    held = set(in_use)

    def add(area: str, paths: Iterator[Path] | list[Path]) -> None:
        plan.extend(_Item(area, path) for path in sorted(paths))

    add(
        "archives",
        [p for p in _entries(root / "archives") if _record_digest(p) not in keep.digests],
    )
    add("manifests", [p for p in _entries(root / "manifests") if p.stem not in keep.digests])
    for area, kept in (("work", keep.digests), ("envs", keep.envs)):
        add(area, [p for p in _entries(root / area) if p.name not in kept | _names(held, area)])
    kept_envs = keep.envs | _names(held, "envs")
    add(
        "installed",
        [
            p
            for p in _entries(root / "installed")
            if _pointer_field(p, "environment") not in kept_envs
        ],
    )
    add("built", built_garbage(root, keep.blobs))
    add("blobs", [p for p in _entries(root / "blobs" / "sha256") if p.name not in keep.blobs])
    add("cache", cache_garbage(root, keep.blobs, cutoff))
    add("inspected", [p for p in _entries(root / "inspected") if p.stem not in keep.blobs])
    add("describe", [p for p in _entries(root / "describe") if _mtime(p) < cutoff])
    add("written", stale_written(root))
    add("locks", [p for p in _entries(root / "locks") if not locks.in_use(p)])
    add("tmp", [p for p in _entries(root / "tmp") if _stale_tmp(p)])
    return plan


def _moves(store: Store, keep: _Keep, plan: list[_Item]) -> dict[Path, bytes]:
    """The pointers of removed environments that a kept one can serve: path -> new content.

    A kept environment that linked a wheel from one gc removes still holds the
    files (hard links), so the next environment links from it instead of
    installing the wheel again.
    """
    moves = {}
    for item in plan:
        holder = keep.holders.get(item.path.name) if item.area == "installed" else None
        dist_info = _pointer_field(item.path, "dist_info")
        if holder is not None and dist_info is not None:
            pointer = {"environment": holder, "dist_info": dist_info}
            moves[item.path] = json.dumps(pointer, sort_keys=True).encode() + b"\n"
    return moves


def _names(held: set[str], area: str) -> set[str]:
    return {item.partition("/")[2] for item in held if item.startswith(f"{area}/")}


def _record_digest(path: Path) -> str | None:
    """The archive hex an ``archives/`` record names (None when unreadable: it goes)."""
    try:
        digest = json.loads(path.read_bytes())["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return digest.removeprefix("sha256:") if isinstance(digest, str) else None


def _pointer_field(path: Path, field: str) -> str | None:
    """A field of an ``installed/`` pointer (None when unreadable: the pointer goes)."""
    try:
        value = json.loads(path.read_bytes())[field]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _stale_tmp(path: Path) -> bool:
    if path.name.startswith(temp_prefix("gc-")):
        return False  # this collection's own
    return is_orphan(path) or _mtime(path) < time.time() - _STALE_TMP_S


def _entries(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as found:
            return [Path(entry.path) for entry in found]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _measure(plan: list[_Item]) -> list[AreaFreed]:
    """Per area: items, files, and the bytes whose every link is in the plan."""
    files: dict[str, int] = dict.fromkeys(_AREAS, 0)
    links: dict[tuple[int, int], int] = {}
    first: dict[tuple[int, int], tuple[str, int, int]] = {}  # inode -> (area, size, nlink)
    for item in plan:
        for st in _files(item.path):
            key = (st.st_dev, st.st_ino)
            files[item.area] += 1
            links[key] = links.get(key, 0) + 1
            first.setdefault(key, (item.area, st.st_size, st.st_nlink))
    size: dict[str, int] = dict.fromkeys(_AREAS, 0)
    for key, (area, bytes_, nlink) in first.items():
        if links[key] >= nlink:
            size[area] += bytes_
    items = {area: sum(1 for item in plan if item.area == area) for area in _AREAS}
    return [
        AreaFreed(area=area, items=items[area], files=files[area], size=size[area])
        for area in _AREAS
    ]


def _files(top: Path) -> Iterator[os.stat_result]:
    try:
        st = top.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        yield st
        return
    for folder, _dirs, names in os.walk(top):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                yield os.lstat(os.path.join(folder, name))  # noqa: PTH118 - many, in a row


def _sweep(store: Store, plan: list[_Item], moves: dict[Path, bytes]) -> None:
    """Move the pointers, then remove the plan: directories renamed under ``tmp/`` first."""
    for path, data in moves.items():
        store.write_atomic(path, data, sync=False)  # as WheelCache.remember writes them
    trash_parent = store.tmp_dir()
    for item in plan:
        with store_errors(store.root, f"remove {item.area}/{item.path.name}"):
            if item.path.is_dir() and not item.path.is_symlink():
                if item.area == "tmp":
                    _remove_tree(item.path)
                    continue
                trash = Path(tempfile.mkdtemp(prefix=temp_prefix("gc-"), dir=trash_parent))
                item.path.rename(trash / item.path.name)
                _remove_tree(trash)
            else:
                item.path.unlink(missing_ok=True)


def _remove_tree(path: Path) -> None:
    """``rmtree``, making read-only directories writable when it must."""

    def writable(_function: object, failed: str, _exc: object) -> None:
        parent = os.path.dirname(failed)  # noqa: PTH120
        os.chmod(parent, stat.S_IRWXU)  # noqa: PTH101
        if os.path.isdir(failed) and not os.path.islink(failed):  # noqa: PTH112, PTH114
            os.chmod(failed, stat.S_IRWXU)  # noqa: PTH101
            shutil.rmtree(failed)
        else:
            os.unlink(failed)  # noqa: PTH108

    shutil.rmtree(path, onerror=writable)
