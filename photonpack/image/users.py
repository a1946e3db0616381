"""The ``lepton`` user: appended to the base's ``/etc/passwd`` and ``/etc/group``.

Lepton runs a photon "as the user lepton in the docker image", in
``/home/lepton``. Its uid and gid are the first free ones from 1000 in the
base (a base that already has a ``lepton`` user keeps it), so they depend only
on the base.
"""

from __future__ import annotations

from dataclasses import dataclass

from photonpack.image.layer import Entry
from photonpack.image.rootfs import RootFS

__all__ = ["HOME", "USER", "User", "lepton_user"]

USER = "lepton"
HOME = "home/lepton"  # in the image, without the leading "/"
_FIRST_ID = 1000


@dataclass(frozen=True, kw_only=True)
class User:
    """The photon's user, and the layer entries that create it."""

    uid: int
    gid: int
    entries: tuple[Entry, ...]  # /etc/passwd, /etc/group (when changed), the home directory


def _ids(text: str, column: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > column and fields[column].isdigit():
            found[fields[0]] = int(fields[column])
    return found


def _free(used: set[int]) -> int:
    candidate = _FIRST_ID
    while candidate in used:
        candidate += 1
    return candidate


def _appended(text: str, line: str) -> bytes:
    if text and not text.endswith("\n"):
        text += "\n"
    return (text + line + "\n").encode()


def lepton_user(fs: RootFS) -> User:
    """The ``lepton`` user of an image on this base."""
    passwd = (fs.read("etc/passwd") or b"").decode("utf-8", "replace")
    group = (fs.read("etc/group") or b"").decode("utf-8", "replace")
    users, groups = _ids(passwd, 2), _ids(group, 2)
    entries: list[Entry] = []
    if USER in users:
        uid = users[USER]
        gid = _ids(passwd, 3).get(USER, uid)
    else:
        uid = _free(set(users.values()))
        taken = set(groups.values())
        gid = groups.get(USER, uid if uid not in taken else _free(taken))
        line = f"{USER}:x:{uid}:{gid}:{USER}:/{HOME}:/bin/sh"
        entries.append(Entry(path="etc/passwd", source=_appended(passwd, line)))
    if USER not in groups:
        entries.append(Entry(path="etc/group", source=_appended(group, f"{USER}:x:{gid}:")))
    entries.append(Entry(path=HOME, kind="dir", uid=uid, gid=gid))
    return User(uid=uid, gid=gid, entries=tuple(entries))
