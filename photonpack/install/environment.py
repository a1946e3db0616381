"""Materialise a photon in the store: its environment and its working directory.

Both are keyed by digests and built under ``tmp/``, then renamed into place
with a ``.complete`` marker, under an OS file lock: a run killed at any point
leaves nothing that a later run takes as valid, and two runs of the same
archive at once install once.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from photonpack._digest import copy_hashed
from photonpack._fs import sync_filesystem
from photonpack.archive.manifest import FileEntry, Manifest
from photonpack.errors import IntegrityError
from photonpack.install.interpreter import interpreter_id
from photonpack.install.venv import environment_digest
from photonpack.lock.target import Target, host_compatible
from photonpack.store import Store
from photonpack.store.names import store_errors

if TYPE_CHECKING:
    from photonpack.install.installer import InstallProgress

__all__ = [
    "ensure_environment",
    "ensure_workdir",
    "environment_name",
    "environment_python",
    "photon_environment",
    "wheels_for_target",
]


def wheels_for_target(manifest: Manifest, target: Target) -> list[tuple[str, str]]:
    """(sha256, filename) of the wheels the manifest lists for ``target``."""
    name = str(target)
    return [(w.sha256, w.filename) for w in manifest.wheels if name in w.targets]


def environment_python(env: Path) -> Path:
    """The interpreter of an installed environment."""
    return env / "bin" / "python"


def photon_environment(manifest: Manifest) -> tuple[str, frozenset[str]] | None:
    """The environment ``run`` uses for ``manifest`` on this interpreter, and its pointers.

    ``(environment hex, installed/ keys of the wheels and runtime files it
    holds)``; None when no target of the photon runs here. ``gc`` keeps the
    environment of a kept photon, and moves to it the pointers of an
    environment it removes.
    """
    from photonpack.install.cache import pointer_key, runtime_pointer_key

    target = host_compatible(Target.parse(text) for text in manifest.targets)
    if target is None:
        return None
    interpreter = interpreter_id()
    wheels = [sha for sha, _ in wheels_for_target(manifest, target)]
    runtime = {entry.path: entry.sha256 for entry in manifest.runtime}
    env_hex = environment_digest(
        interpreter=interpreter, wheel_sha256s=wheels, runtime_files=runtime
    )
    keys = {pointer_key(sha, interpreter) for sha in wheels}
    if runtime:
        keys.add(runtime_pointer_key(runtime, interpreter))
    return env_hex, frozenset(keys)


def environment_name(wheels: Sequence[tuple[str, str]], runtime: Sequence[FileEntry]) -> str:
    """The hex name of the environment :func:`ensure_environment` makes of these, here."""
    return environment_digest(
        interpreter=interpreter_id(),
        wheel_sha256s=[sha for sha, _ in wheels],
        runtime_files={entry.path: entry.sha256 for entry in runtime},
    )


def ensure_environment(
    store: Store,
    *,
    wheels: Sequence[tuple[str, str]],
    runtime: Sequence[FileEntry],
    installing: Callable[[int], AbstractContextManager[InstallProgress | None]] | None = None,
) -> tuple[Path, bool]:
    """The environment for these wheels and runtime files; ``(path, created)``.

    ``wheels`` are (sha256, filename) pairs whose blobs are already in the
    store (verified when they entered it). A wheel that another environment
    of the store holds is hard-linked from it (``cache.py``), so an
    environment sharing wheels with an existing one is built in a fraction of
    the time. ``installing(n)`` wraps the install of a new one (the CLI's
    progress line, told the bytes written when it is an :class:`InstallProgress`);
    nothing calls it when the environment exists.
    """
    env_hex = environment_name(wheels, runtime)
    final = store.env_path(env_hex)
    if store.is_complete(final):
        return final, False
    with store.lock(f"env-{env_hex}"):
        if store.is_complete(final):  # another run installed it while we waited
            return final, False
        # Only a new environment needs the installer: a warm start does not import it.
        from photonpack.install.cache import WheelCache
        from photonpack.install.installer import create_environment

        cache = WheelCache(store)
        step = installing(len(wheels)) if installing else contextlib.nullcontext()
        with step as progress, store.temp_dir("env-") as temp:
            env = temp / "env"
            create_environment(
                env,
                wheels={filename: store.blob_path(sha) for sha, filename in wheels},
                runtime_files={entry.path: store.blob_path(entry.sha256) for entry in runtime},
                cache=cache,
                progress=progress,
            )
            store.publish_dir(env, final)
        cache.remember(final)
    return final, True


def ensure_workdir(store: Store, manifest: Manifest) -> Path:
    """The photon's working directory, laid out from verified blobs (read-only files)."""
    final = store.work_path(manifest.digest)
    if store.is_complete(final):
        return final
    with store.lock(f"work-{manifest.digest.removeprefix('sha256:')}"):
        if store.is_complete(final):
            return final
        with store.temp_dir("work-") as temp, store_errors(store.root, "lay out the photon"):
            work = temp / "work"
            work.mkdir()
            for entry in manifest.files:
                _place(store.blob_path(entry.sha256), work / entry.path, entry)
            if manifest.files:  # on disk before it is marked complete
                sync_filesystem(work)
            store.publish_dir(work, final)
    return final


def _place(blob: Path, target: Path, entry: FileEntry) -> None:
    """Copy a blob to the working directory, re-hashing it on the way.

    A copy, not a link: a photon that writes to its files must not alter the
    store. The hash is checked again because the blob may have been altered
    (or removed) since it entered the store; a bad one is removed so that
    running the archive again restores it.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with blob.open("rb") as src, target.open("wb") as out:
            found, _size = copy_hashed(src, out)
    except FileNotFoundError as exc:
        if exc.filename != str(blob):
            raise
        raise IntegrityError(
            f"{entry.path}: the store's blob sha256:{entry.sha256} is missing; "
            "run the archive again to restore it"
        ) from exc
    if found != entry.sha256:
        blob.unlink(missing_ok=True)
        raise IntegrityError(
            f"{entry.path}: the store's blob sha256:{entry.sha256} was altered after it was "
            f"verified (found sha256:{found}); it was removed: run the archive "
            "again to restore it"
        )
    mode = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    if entry.executable:
        mode |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    target.chmod(mode)
