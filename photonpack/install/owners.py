"""Who owns each file of an environment, and what a clash between two owners says.

Two distributions may install the same file only with the same content (a
shared file is written or linked once); different content at one path is a
conflict the user must resolve in the requirements.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from photonpack.errors import InstallError

__all__ = ["RUNTIME", "Linked", "Owner", "conflict"]

# photonpack's serving files form a distribution of the environment like a wheel's
# (see serving_dist.py); this label stands for it where a wheel filename would.
RUNTIME = "photonpack's runtime files"


class Owner(NamedTuple):
    """A file's content as RECORD states it, and the distribution that put it there."""

    algorithm: str
    digest: str
    size: int
    dist: str  # a wheel filename, or RUNTIME


# The files linked into an environment: absolute path (a string: thousands of these are
# made in a row) -> its owner.
Linked = dict[str, Owner]


def conflict(first: str, second: str, path: Path) -> InstallError:
    """Two wheels (or a wheel and the runtime files) put different content at one path."""
    if RUNTIME in (first, second):
        return InstallError(
            f"{path} is both one of photonpack's runtime files and a file of wheel "
            f"{second if first == RUNTIME else first}; remove photonpack from the photon's "
            "requirements and lock again."
        )
    return InstallError(
        f"wheels {first} and {second} both install {path} with different content; a photon "
        "cannot depend on both. Remove one of them from the requirements and lock again."
    )
