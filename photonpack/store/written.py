"""Archives this store wrote, remembered by the file's identity, so a warm build can keep them.

``build`` with nothing changed produces the same manifest; writing the same
archive again costs its whole size in compression and I/O (a torch photon:
3 GB). After writing, the file's identity is noted under ``written/``: its
device, inode, size, and modification and change times in nanoseconds. The
next build of the same manifest to the same path keeps the file when all of
them still match, as git's index trusts an unchanged ``stat`` to skip hashing.
The change time (``ctime``) is set by the kernel on every write, rename or
``touch``, and no system call sets it back, so a file edited in place (even with
its mtime restored) no longer matches and is written again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from photonpack.store.store import Store

__all__ = ["note_written", "stale_written", "still_written"]


def _record_path(store: Store, path: Path) -> Path:
    key = hashlib.sha256(os.fsencode(path.absolute())).hexdigest()
    return store.root / "written" / f"{key}.json"


def _identity(path: Path) -> dict[str, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {
        "dev": st.st_dev,
        "ino": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
    }


def _unchanged(record: object, path: Path) -> bool:
    """Whether ``record`` names ``path`` and ``path``'s identity is still the one it noted."""
    identity = _identity(path)
    return (
        isinstance(record, dict)
        and identity is not None
        and record.get("path") == str(path.absolute())
        and all(record.get(key) == value for key, value in identity.items())
    )


def note_written(store: Store, path: Path, digest: str) -> None:
    """Remember that ``path``, as it is now, is the archive of ``digest`` written by this store."""
    identity = _identity(path)
    if identity is None:
        return
    record = {"path": str(path.absolute()), "digest": digest, **identity}
    store.write_atomic(_record_path(store, path), json.dumps(record).encode() + b"\n", sync=False)


def still_written(store: Store, path: Path, digest: str) -> bool:
    """Whether ``path`` is still, untouched, the archive of ``digest`` this store wrote."""
    try:
        record = json.loads(_record_path(store, path).read_bytes())
    except (OSError, ValueError):
        return False
    return _unchanged(record, path) and record.get("digest") == digest


def stale_written(root: Path) -> list[Path]:
    """The records under ``root/written`` whose file is gone or changed: for ``gc`` to remove."""
    stale = []
    for record_path in sorted((root / "written").glob("*.json")):
        try:
            record = json.loads(record_path.read_bytes())
            kept = _unchanged(record, Path(record["path"]))
        except (OSError, ValueError, KeyError, TypeError):
            kept = False
        if not kept:
            stale.append(record_path)
    return stale
