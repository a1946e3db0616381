"""Which locations photonpack reaches: index and find-links URLs, and locked wheel URLs.

Checked where they enter (the command line, a lock file), so a location pip
or urllib cannot use is refused with its reason instead of failing later at
the network with a message about something else. Standard library only.
"""

from __future__ import annotations

import urllib.parse

__all__ = ["location_problem", "wheel_path_problem", "wheel_url_problem"]

_SCHEMES = ("http", "https", "file")


def location_problem(location: str, *, local_ok: bool = False) -> str | None:
    """Why ``location`` cannot be an index URL (or, ``local_ok``, a find-links entry), or None.

    pip and urllib reach http, https and file URLs only; anything else would
    fail later, at the network, with a message about something else.
    """
    if "\x00" in location:
        return "it contains a NUL character"
    if local_ok and "://" not in location:  # a directory (or, in a lock, relative to it)
        return None
    try:
        parts = urllib.parse.urlsplit(location)
        parts.port  # noqa: B018 - parsing the port is what raises for a bad one
    except ValueError as exc:
        return f"it is not a valid URL ({exc})"
    if parts.scheme not in _SCHEMES:
        found = f"the scheme {parts.scheme}://" if parts.scheme else "no scheme"
        return f"it has {found}; expected an http://, https:// or file:// URL"
    if parts.scheme != "file" and not parts.hostname:
        return "it names no host"
    return None


def wheel_url_problem(url: str, filename: str) -> str | None:
    """Why a locked wheel's URL cannot be fetched as ``filename``, or None.

    The file a URL names is its last path segment (as pip reads it), so that
    segment must be the wheel's file name, and no segment may be ``.`` or ``..``:
    the lock names a file on the index, not a path to be resolved against it.
    """
    if (problem := location_problem(url)) is not None:
        return problem
    segments = [urllib.parse.unquote(s) for s in urllib.parse.urlsplit(url).path.split("/")]
    if any(s in (".", "..") for s in segments):
        return "has a '.' or '..' path segment: a lock names files, not relative paths"
    if segments[-1] != filename:
        return f"names the file {segments[-1]!r}, not the wheel {filename!r}"
    return None


def wheel_path_problem(path: str, filename: str) -> str | None:
    """Why a locked wheel's ``path`` (relative to the lock's directory) is wrong, or None.

    Unlike a URL, a path may climb out of the lock's directory (``../wheelhouse/x.whl``):
    PEP 751 allows it, and the file is checked against its hash like any other.
    """
    if "://" in path:
        return "is a URL: a wheel's path is a file path, its URL goes in url"
    if "\x00" in path:
        return "contains a NUL character"
    last = path.replace("\\", "/").rpartition("/")[2]
    if last != filename:
        return f"names the file {last!r}, not the wheel {filename!r}"
    return None
