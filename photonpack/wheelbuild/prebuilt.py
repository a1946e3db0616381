"""Build a dynamic sdist's wheel while locking, so that ``build`` runs no backend again.

To resolve, pip needs each sdist's metadata; for an sdist whose PKG-INFO does
not state it (PEP 643), pip used to run the backend in an isolated environment
with the network open, and ``build`` ran it again, hermetically. With
:func:`lock_time_builder` as ``LockOptions.builder``, ``lock`` locks the
sdist's build environment first and this module builds the wheel exactly as
``build`` would (:func:`~photonpack.wheelbuild.builder.cached_or_built`: the
locked build wheels only, no network, ``SOURCE_DATE_EPOCH``), records it in the
store's ``built/`` under the same key, and hands pip its ``METADATA``.

The key (:func:`~photonpack.wheelbuild.builder.cache_key`) is the source's
sha256, the build wheels' sha256s, the backend, this machine's target and the
epoch: ``build`` reuses the wheel only when every one of them is the lock's,
and builds again otherwise. A build that fails here returns None: pip prepares
the metadata as before and ``build`` reports the failure with its log.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from photonpack.errors import PhotonpackError

if TYPE_CHECKING:
    from photonpack.lock.buildreqs import SourceBuilder
    from photonpack.lock.index import IndexSettings
    from photonpack.lock.pylock import LockedPackage
    from photonpack.lock.sdist import LockedSdist
    from photonpack.store import Store

__all__ = ["lock_time_builder", "wheel_metadata"]

_MAX_METADATA = 16 << 20  # a METADATA larger than this is not one


def lock_time_builder(store: Store) -> SourceBuilder:
    """A :data:`~photonpack.lock.buildreqs.SourceBuilder` building into ``store``.

    Made for every lock, used only when a sdist needs its backend: what it builds
    with is imported then (an up-to-date lock loads none of it).
    """

    def build(
        sdist: LockedSdist,
        path: Path,
        packages: Sequence[LockedPackage],
        index: IndexSettings,
    ) -> bytes | None:
        import zipfile

        from photonpack.archive import archive_mtime
        from photonpack.lock.download import fetch_wheels
        from photonpack.lock.target import Target
        from photonpack.wheelbuild.builder import cached_or_built, host_wheel

        host = Target.host()
        wheels = [host_wheel(package, host) for package in packages]
        if any(wheel is None for wheel in wheels):
            return None  # build says which build package has no wheel here
        chosen = [wheel for wheel in wheels if wheel is not None]
        try:
            store.add_blob_file(path, sdist.sha256, sdist.size)
            missing = [w for w in chosen if not store.has_blob(w.sha256, w.size)]
            if missing:
                with store.temp_dir("fetch-") as partial:
                    fetch_wheels(missing, store.blob_dir, index=index, partial=partial)
            built = cached_or_built(
                sdist, chosen, store, host, epoch=archive_mtime(), logs=None, fresh=False
            )
            return wheel_metadata(store.blob_path(built.sha256), built.filename)
        except (PhotonpackError, OSError, ValueError, zipfile.BadZipFile):
            return None  # pip prepares the metadata; build reports what failed, with its log

    return build


def wheel_metadata(path: Path, filename: str) -> bytes:
    """The ``<name>-<version>.dist-info/METADATA`` of the wheel at ``path``."""
    import zipfile

    from packaging.utils import canonicalize_name, parse_wheel_filename

    name = canonicalize_name(parse_wheel_filename(filename)[0])
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            parts = PurePosixPath(info.filename).parts
            if (
                len(parts) == 2
                and parts[1] == "METADATA"
                and parts[0].endswith(".dist-info")
                and canonicalize_name(parts[0].removesuffix(".dist-info").rpartition("-")[0])
                == name
                and info.file_size <= _MAX_METADATA
            ):
                return archive.read(info)
    raise OSError(f"{filename} has no {name}-….dist-info/METADATA")
