"""Which wheels an environment can leave out while a photon is only described.

``build`` imports the photon to read its handler contract, never running
``init()``, where photons import their heavy libraries. So it first describes
the photon in an environment without its biggest wheels (see
``photonpack.serving.describe_boot``, which stops the describe at the first
look for one of their modules). A wheel is left out when it is big, or when
the caller does not keep it (``build`` keeps what the photon's requirements and
the serving stack need without going through a big wheel: a torch photon's
describe needs neither torch nor sympy, which only torch imports), has no
``.pth`` file (those run at every start) and shares no top-level module with a
wheel kept in: a namespace package such as ``nvidia`` is in or out as a whole.
"""

from __future__ import annotations

import dataclasses
import functools
import zipfile
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from photonpack.errors import IntegrityError

__all__ = ["LEAVE_OUT_BYTES", "LeftOut", "leave_out", "wheel_modules"]

LEAVE_OUT_BYTES = 8 << 20  # smaller wheels cost less to install than a second describe


@dataclasses.dataclass(frozen=True, kw_only=True)
class LeftOut:
    """A wheel left out of the describe environment, and what stands for it there."""

    sha256: str
    filename: str
    path: Path  # the verified wheel file: its dist-info is read from it
    name: str  # the distribution's name, from its dist-info directory
    dist_info: str
    modules: frozenset[str]  # the top-level modules (and directories) it installs


@dataclasses.dataclass(frozen=True)
class _Listing:
    dist_info: str
    modules: frozenset[str]
    has_pth: bool


def wheel_modules(path: Path, filename: str) -> tuple[str, frozenset[str], bool]:
    """(dist-info directory, top-level names it installs, whether it has a ``.pth``).

    Read from the zip directory only; the wheel was verified when it entered the
    store, and its members are checked when it is installed.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise IntegrityError(
            f"cannot read the zip directory of {filename} ({path}): {exc}"
        ) from exc
    dist_info, modules, has_pth = "", set(), False
    for member in names:
        first, _, rest = member.partition("/")
        if first.endswith(".dist-info"):
            dist_info = dist_info or first
            continue
        if first.endswith(".data"):
            scheme, _, inner = rest.partition("/")
            if scheme not in ("purelib", "platlib"):
                continue
            first, _, rest = inner.partition("/")
        if not first:
            continue
        if not rest and first.endswith(".pth"):
            has_pth = True
        modules.add(first if rest else first.split(".", 1)[0])
    return dist_info, frozenset(modules), has_pth


def leave_out(
    wheels: Sequence[tuple[str, str, int, Path]],
    *,
    min_bytes: int = LEAVE_OUT_BYTES,
    keep: Collection[str] | None = None,
) -> dict[str, LeftOut]:
    """The wheels to leave out of a describe environment, by sha256.

    ``wheels`` are (sha256, filename, size, verified file). With ``keep`` (sha256s,
    none of ``min_bytes`` or more), every other wheel is a candidate; without it,
    the big ones. Empty when no wheel is big enough to be worth leaving out.
    """
    if not any(size >= min_bytes for _sha, _name, size, _path in wheels):
        return {}
    listings = {sha: _listing(path, name) for sha, name, _size, path in wheels}
    pinned = {sha for sha, listing in listings.items() if listing.has_pth or not listing.dist_info}
    out = {
        sha
        for sha, _name, size, _path in wheels
        if (size >= min_bytes if keep is None else sha not in keep)
    } - pinned
    while True:  # a shared top-level name takes a wheel out with the others, or keeps both in
        taken = _names(listings[sha].modules for sha in out)
        pulled = {s for s in listings if s not in out | pinned and listings[s].modules & taken}
        out |= pulled
        kept = _names(listings[sha].modules for sha in listings if sha not in out)
        pushed = {sha for sha in out if listings[sha].modules & kept}
        out -= pushed
        pinned |= pushed
        if not pulled and not pushed:
            break
    return {
        sha: LeftOut(
            sha256=sha,
            filename=name,
            path=path,
            name=listings[sha].dist_info.removesuffix(".dist-info").rsplit("-", 1)[0],
            dist_info=listings[sha].dist_info,
            modules=listings[sha].modules,
        )
        for sha, name, _size, path in wheels
        if sha in out
    }


def _listing(path: Path, filename: str) -> _Listing:
    """``wheel_modules`` of ``path``, read once while the file is the same (a describe
    computes what to leave out again at each round, and torch's zip directory is 1.1 MB)."""
    try:
        st = path.stat()
    except OSError:
        return _Listing(*wheel_modules(path, filename))  # which says what is wrong
    return _cached_listing(path, filename, st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=512)
def _cached_listing(path: Path, filename: str, _size: int, _mtime_ns: int, _ino: int) -> _Listing:
    return _Listing(*wheel_modules(path, filename))


def _names(groups: Iterable[frozenset[str]]) -> frozenset[str]:
    return frozenset().union(*groups)
