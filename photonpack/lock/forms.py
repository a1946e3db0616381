"""The forms of a ``requirement_dependency`` line, and the ones photonpack cannot lock yet.

pip reads more than ``name[extras] specifier; marker`` in a requirements
line: VCS URLs, archive URLs, local projects, option lines, Lepton's
``uninstall X``. photonpack locks wheels from an index (or ``--find-links``),
so these are refused before any resolver runs: nothing is cloned, downloaded
or built, and the message says what to do instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from photonpack.errors import ResolutionError

__all__ = ["check_forms", "unsupported_form"]

_VCS = re.compile(r"(?:^|@\s*)(git|hg|svn|bzr)\+", re.IGNORECASE)
_URL = re.compile(r"(?:^|@\s*)(https?|file|ftp)://", re.IGNORECASE)
_WHEEL = re.compile(r"\.whl(?:[#?;\s]|$)")
_PATH = re.compile(r"^(\.{1,2}/|/|~|\.{1,2}$)")
_OPTIONS = {
    "-f": "--find-links",
    "--find-links": "--find-links",
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
}
_WHEEL_ADVICE = (
    "build a wheel of it (pip wheel --no-deps '{line}' -w wheels/) and lock with "
    "--find-links wheels/"
)


def unsupported_form(line: str) -> str | None:
    """Why ``line`` cannot be locked yet and what to do, or None for a plain requirement."""
    text = line.strip()
    first = text.split(maxsplit=1)[0] if text else ""
    option, _, inline = first.partition("=")
    if option in _OPTIONS:
        value = inline or text[len(first) :].strip()
        return f"is an option line; give it to photonpack lock instead: {_OPTIONS[option]} {value}"
    if _WHEEL.search(text) and not first.startswith("-"):
        return None  # a wheel by URL or path: locked as it is
    editable = first in ("-e", "--editable")
    advice = _WHEEL_ADVICE.format(line=text[len(first) :].strip() if editable else text)
    rules = (
        (editable, f"is an editable local project, which photonpack does not build yet; {advice}"),
        (
            first.startswith("-"),
            "is a pip option line, which photonpack does not read; list the requirements "
            "themselves in requirement_dependency",
        ),
        (
            first == "uninstall",
            "is Lepton's uninstall line; photonpack installs only what the lock lists, so "
            "remove the line and the package is not installed unless something requires it",
        ),
        (
            "--hash" in text,
            "carries --hash, which photonpack does not check yet; remove the option: the lock "
            "records the index's sha256 of every file and verify re-hashes them",
        ),
        (
            bool(_VCS.search(text)),
            f"is a VCS requirement, which photonpack does not lock yet; {advice}",
        ),
        (
            bool(_URL.search(text)),
            f"is a URL requirement, which photonpack does not lock yet; {advice}",
        ),
        (
            bool(_PATH.match(text)),
            f"is a local project, which photonpack does not build yet; {advice}",
        ),
    )
    return next((why for applies, why in rules if applies), None)


def check_forms(lines: Sequence[str], *, photon: str) -> None:
    """Raise :class:`ResolutionError` for the first line :func:`unsupported_form` refuses."""
    for line in lines:
        why = unsupported_form(line)
        if why is not None:
            raise ResolutionError(f"requirement_dependency line {line.strip()!r} of {photon} {why}")
