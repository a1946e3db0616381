"""Archive files this store wrote or hashed, remembered by the file's identity.

Two warm paths need to know that a file is, byte for byte, what it was:
``build`` keeps an archive it wrote when the manifest is unchanged, and ``run
X.photon`` skips re-hashing an archive file it hashed before (a torch photon:
3 GB, several seconds of sha256 on one core before anything starts).

``build`` with nothing changed produces the same manifest; writing the same
archive again costs its whole size in compression and I/O (a torch photon:
3 GB). After writing, the file's identity is noted under ``written/``: its
device, inode, size, and modification and change times in nanoseconds. The
next build of the same manifest to the same path keeps the file when all of
them still match, as git's index trusts an unchanged ``stat`` to skip hashing.
The change time (``ctime``) is set by the kernel on every write, rename or
``touch``, and no system call sets it back, so a file edited in place (even with
its mtime restored) no longer matches and is written (or hashed) again.

A remembered hash never lets unverified bytes run: it only names an archive
whose blobs the store verified when it imported them, and what runs comes from
the store. A file changed behind an unchanged identity would run the photon
the store verified, not the changed bytes.

The same holds for a file ``build`` wrote: ``run`` and ``push`` of it read none
of its bytes (:func:`written_digest`). Its record names the manifest build
kept in the store, whose blobs the store verified when they came in (downloads
against the lock, build outputs hashed as written), and the archive was
written from those blobs, each re-hashed on the way; so the file is those
blobs, and what runs or is pushed is read from the store. The admission policy
is applied to the stored blobs the first time (:func:`note_checked`), as it is
to an imported archive's.

``push`` of a file it read whole and verified (every blob hashed, the policy
passed) notes it as that photon (:func:`note_verified`). Pushed again,
unchanged, to a registry that already holds every blob, only the tag is
written: the registry checked each blob's digest as it received it, so the
tag names the photon that was verified, whatever happened to the file since.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from photonpack._digest import is_sha256_hex

if TYPE_CHECKING:
    from photonpack.store.store import Store

__all__ = [
    "file_identity",
    "hashed_before",
    "note_checked",
    "note_hashed",
    "note_verified",
    "note_written",
    "stale_written",
    "still_written",
    "verified_digest",
    "written_digest",
]

Identity = dict[str, int]


def _record_path(store: Store, path: Path) -> Path:
    key = hashlib.sha256(os.fsencode(path.absolute())).hexdigest()
    return store.root / "written" / f"{key}.json"


def file_identity(path: Path) -> Identity | None:
    """``path``'s device, inode, size, mtime and ctime (ns), or None when it cannot be read."""
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
    identity = file_identity(path)
    return (
        isinstance(record, dict)
        and identity is not None
        and record.get("path") == str(path.absolute())
        and all(record.get(key) == value for key, value in identity.items())
    )


def note_written(store: Store, path: Path, digest: str) -> None:
    """Remember that ``path``, as it is now, is the archive of ``digest`` written by this store."""
    identity = file_identity(path)
    if identity is None:
        return
    record = {"path": str(path.absolute()), "digest": digest, **identity}
    store.write_atomic(_record_path(store, path), json.dumps(record).encode() + b"\n", sync=False)


def still_written(store: Store, path: Path, digest: str) -> bool:
    """Whether ``path`` is still, untouched, the archive of ``digest`` this store wrote."""
    return written_digest(store, path) == digest


def written_digest(store: Store, path: Path, *, checked: bool = False) -> str | None:
    """The photon digest of ``path`` if this store wrote it and it is untouched since.

    ``checked=True``: only if the admission policy has passed on it too (:func:`note_checked`).
    """
    if checked and _recorded(store, path, "checked") is not True:
        return None
    digest = _recorded(store, path, "digest")
    return digest if isinstance(digest, str) else None


def note_checked(store: Store, path: Path) -> None:
    """Remember that the admission policy passed on the photon ``path`` was written as."""
    _note(store, path, file_identity(path), checked=True)


def note_verified(store: Store, path: Path, digest: str, before: Identity | None) -> None:
    """Remember that ``path``, unchanged since ``before``, was read whole and verified as the
    photon ``digest`` (every blob hashed, the policy passed), as a push of it does."""
    _note(store, path, before, verified=digest)


def verified_digest(store: Store, path: Path) -> str | None:
    """The photon ``path`` was verified as (:func:`note_verified`), if it is unchanged since."""
    digest = _recorded(store, path, "verified")
    return digest if isinstance(digest, str) else None


def note_hashed(store: Store, path: Path, sha256: str, before: Identity | None) -> None:
    """Remember that ``path`` hashes to ``sha256``, if its identity is still ``before``.

    ``before`` is taken before hashing: a file changed while it was read is not
    remembered. What an unchanged record already says (a build's digest) is kept.
    """
    _note(store, path, before, sha256=sha256)


def _note(store: Store, path: Path, before: Identity | None, **fields: object) -> None:
    """Add ``fields`` to ``path``'s record if its identity is still ``before`` (read before
    the bytes were), keeping what an unchanged record says already."""
    if before is None or file_identity(path) != before:
        return
    try:
        record = json.loads(_record_path(store, path).read_bytes())
    except (OSError, ValueError):
        record = None
    if not _unchanged(record, path):
        record = {"path": str(path.absolute()), **before}
    assert isinstance(record, dict)
    if all(record.get(key) == value for key, value in fields.items()):
        return
    record.update(fields)
    store.write_atomic(_record_path(store, path), json.dumps(record).encode() + b"\n", sync=False)


def _recorded(store: Store, path: Path, key: str) -> object:
    """What ``path``'s record says under ``key``, if the file is unchanged since it was noted."""
    try:
        record = json.loads(_record_path(store, path).read_bytes())
    except (OSError, ValueError):
        return None
    return record.get(key) if _unchanged(record, path) else None


def hashed_before(store: Store, path: Path) -> str | None:
    """The sha256 hex ``path`` had when it was last hashed, if it is unchanged since."""
    sha256 = _recorded(store, path, "sha256")
    return sha256 if isinstance(sha256, str) and is_sha256_hex(sha256) else None


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
