"""How the image's own files are split into layers, so that photons share them.

From the bottom up, after the base's layers:

1. *setup*: the ``lepton`` user (``/etc/passwd``, ``/etc/group``, ``/home/lepton``)
   and the venv's skeleton (``pyvenv.cfg``, ``bin/python``): depends on the base only;
2. one layer per big wheel (over ``BIG_WHEEL_BYTES`` installed), by filename:
   any photon with the same wheel on the same base has the same layer;
3. the other wheels together;
4. photonpack's serving runtime;
5. the photon's own files under ``/home/lepton``, owned by ``lepton``: last,
   since they change most often.

At most ``MAX_WHEEL_LAYERS`` big-wheel layers: beyond that the smallest of them
join the group, keeping images within the layer limits of common runtimes
(overlayfs mounts take about 128 lower directories).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from photonpack.archive.manifest import FileEntry
from photonpack.image import pid1
from photonpack.image.config import INIT_PATH
from photonpack.image.environment import ENV_PATH, StagedEnvironment
from photonpack.image.layer import Entry
from photonpack.image.users import HOME, User
from photonpack.install.owners import RUNTIME

__all__ = ["BIG_WHEEL_BYTES", "MAX_WHEEL_LAYERS", "PlannedLayer", "plan_layers"]

BIG_WHEEL_BYTES = 10 * 1024 * 1024
MAX_WHEEL_LAYERS = 48


@dataclass(frozen=True, kw_only=True)
class PlannedLayer:
    """A layer to write: what it is (its history line) and its entries."""

    title: str
    entries: tuple[Entry, ...]


def _entry(root: Path, relative: str) -> Entry:
    path = root / relative
    info = path.lstat()
    image_path = f"{ENV_PATH}/{relative}"
    size = info.st_size
    if stat.S_ISLNK(info.st_mode):
        return Entry(path=image_path, kind="symlink", target=str(path.readlink()), size=size)
    if stat.S_ISDIR(info.st_mode):
        return Entry(path=image_path, kind="dir", size=size)
    return Entry(path=image_path, source=path, executable=bool(info.st_mode & 0o111), size=size)


def _skeleton(staged: StagedEnvironment) -> list[Entry]:
    """The venv's own files and empty directories: those no distribution owns."""
    owned = {path for paths in staged.owned.values() for path in paths}
    entries = [Entry(path=ENV_PATH, kind="dir")]
    for folder, dirs, files in os.walk(staged.root):
        here = Path(folder).relative_to(staged.root)
        for name in [*files, *(d for d in dirs if (Path(folder) / d).is_symlink())]:
            relative = str(here / name) if str(here) != "." else name
            if relative not in owned:
                entries.append(_entry(staged.root, relative))
        if not dirs and not files and str(here) != ".":
            entries.append(_entry(staged.root, str(here)))
    return entries


def _init() -> list[Entry]:
    """PID 1 of a ``cmd`` photon (``pid1.py``): depends on nothing but photonpack's version."""
    return [Entry(path=INIT_PATH, source=Path(pid1.__file__))]


def _photon_files(files: Sequence[tuple[FileEntry, Path]], user: User) -> list[Entry]:
    entries = [Entry(path=HOME, kind="dir", uid=user.uid, gid=user.gid)]
    folders: set[str] = set()
    for entry, source in files:
        path = PurePosixPath(HOME, entry.path)
        folders.update(str(p) for p in path.parents if p.is_relative_to(HOME) and str(p) != HOME)
        entries.append(
            Entry(
                path=str(path),
                source=source,
                executable=entry.executable,
                uid=user.uid,
                gid=user.gid,
            )
        )
    entries += [Entry(path=p, kind="dir", uid=user.uid, gid=user.gid) for p in sorted(folders)]
    return entries


def plan_layers(
    staged: StagedEnvironment,
    user: User,
    files: Sequence[tuple[FileEntry, Path]],
    *,
    init: bool = False,
) -> list[PlannedLayer]:
    """The image's layers above the base, bottom first; ``init``: with ``/opt/photon/init.py``."""
    # Each file is looked at once: its entry carries the size the split is decided by.
    planned = {
        label: tuple(_entry(staged.root, path) for path in paths)
        for label, paths in staged.owned.items()
    }
    wheels = [label for label in staged.owned if label != RUNTIME]
    sizes = {label: sum(entry.size or 0 for entry in planned[label]) for label in wheels}
    big = sorted((w for w in wheels if sizes[w] > BIG_WHEEL_BYTES), key=lambda w: -sizes[w])
    big = sorted(big[:MAX_WHEEL_LAYERS])
    small = sorted(w for w in wheels if w not in big)
    layers = [
        PlannedLayer(
            title="photonpack image: user lepton and the environment's skeleton",
            entries=(*user.entries, *_skeleton(staged), *(_init() if init else ())),
        )
    ]
    for wheel in big:
        title = f"photonpack image: wheel {wheel}"
        layers.append(PlannedLayer(title=title, entries=planned[wheel]))
    if small:
        entries = tuple(entry for wheel in small for entry in planned[wheel])
        layers.append(
            PlannedLayer(title=f"photonpack image: {len(small)} small wheels", entries=entries)
        )
    if RUNTIME in staged.owned:
        layers.append(
            PlannedLayer(title="photonpack image: the serving runtime", entries=planned[RUNTIME])
        )
    layers.append(
        PlannedLayer(
            title="photonpack image: the photon's files in /home/lepton",
            entries=tuple(_photon_files(files, user)),
        )
    )
    return layers
