"""Names in the store: what a blob, an archive, a photon and an installed wheel are called.

Also the one translation of the store's ``OSError`` into a :class:`StoreError`
that names the store and says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from photonpack._digest import SHA256_HEX, Digest, is_sha256_hex
from photonpack.errors import PhotonpackError, StoreError

__all__ = [
    "COMPLETE",
    "INSTALLED_KEY",
    "archive_digest",
    "blob_name",
    "collect_orphans",
    "default_home",
    "is_orphan",
    "store_errors",
    "temp_prefix",
    "validate_name",
]

INSTALLED_KEY = re.compile(SHA256_HEX.pattern + r"-[A-Za-z0-9._+-]+")
# Lepton's rule for photon names, kept so that names move between the tools:
# ^[a-z]([-a-z0-9]*[a-z0-9])?$, at most 32 characters (no trailing hyphen).
_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,30}[a-z0-9])?")
COMPLETE = ".complete"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid photon name, else raise with the rule."""
    if not _NAME.fullmatch(name):
        raise PhotonpackError(
            f"invalid photon name {name!r}: use lowercase letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen, at most 32 characters "
            "(e.g. 'counter-v2')"
        )
    return name


def default_home() -> Path:
    """``$PHOTONPACK_HOME``, else ``$XDG_DATA_HOME/photonpack``, else ~/.local/share/photonpack."""
    if home := os.environ.get("PHOTONPACK_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "photonpack"


def blob_name(sha256: str) -> str:
    """A blob's or an environment's name: 64 hex digits, no prefix."""
    if not is_sha256_hex(sha256):
        raise StoreError(f"invalid blob name {sha256!r}: expected 64 lowercase hex digits")
    return sha256


def archive_digest(digest: str) -> Digest:
    """An archive's identity: ``sha256:<64 hex digits>``."""
    try:
        return Digest(digest)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


@contextlib.contextmanager
def store_errors(root: Path, what: str) -> Iterator[None]:
    """Translate OSError from the store's filesystem into one clear StoreError."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            hint = "the store is not writable; set PHOTONPACK_HOME to a writable directory"
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "the disk is full; free space or point PHOTONPACK_HOME elsewhere"
        else:
            hint = "check the directory or point PHOTONPACK_HOME elsewhere"
        reason = exc.strerror or str(exc)
        raise StoreError(f"cannot {what} in the store {root}: {reason}; {hint}") from exc


# Temporary files and directories are named "<pid>-<what>-<random>": the owner's pid
# tells a collector whether anyone can still rename them into place.
_OWNED = re.compile(r"(\d+)-")
# A temporary entry without an owner's pid (an older photonpack's) is collected once
# it is this old: no install or download takes a day.
_UNOWNED_AGE_S = 24 * 3600


def temp_prefix(what: str) -> str:
    """The name prefix of this process's temporary entries under ``tmp/``."""
    return f"{os.getpid()}-{what}"


def collect_orphans(tmp: Path) -> list[str]:
    """Remove the entries of ``tmp`` whose owning process is gone; their names.

    Best effort and safe while other photonpack processes run: an entry is
    removed only when the process that made it no longer exists.
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(tmp):
            if _orphan(entry):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)  # noqa: PTH108 - a scandir entry
                removed.append(entry.name)
    return removed


def _orphan(entry: os.DirEntry[str]) -> bool:
    return is_orphan(Path(entry.path))


def is_orphan(path: Path) -> bool:
    """Whether the temporary entry ``path`` belongs to no live process (see ``temp_prefix``)."""
    owned = _OWNED.match(path.name)
    if owned is None:
        try:
            return time.time() - path.lstat().st_mtime > _UNOWNED_AGE_S
        except OSError:
            return False
    pid = int(owned.group(1))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, under another user
        return False
    return False
