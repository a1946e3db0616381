"""What a photonpack lock must hold beyond PEP 751, each refusal naming its exact location.

``packaging.pylock`` checks the standard tables; photonpack then reads its
own ``[tool.photonpack]`` section and relies on more than the standard says:
wheel URLs that name their file and climb no directory, one entry per
package version, and one version of each package per target (an installer
given two would pick either). :class:`Where` reads values with their types
checked, so a file edited by hand gives a ``LockFileError`` such as
``packages[3].wheels[0].hashes.sha256 is missing``, never a traceback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photonpack.errors import LockFileError
from photonpack.lock.locations import location_problem

if TYPE_CHECKING:
    from photonpack.lock.pylock import LockedPackage
    from photonpack.lock.target import Target

__all__ = ["Where", "check_unique"]

_TYPE_NAMES = {str: "a string", int: "an integer", list: "an array", dict: "a table"}


@dataclasses.dataclass(frozen=True)
class Where:
    """Typed reads from one lock file's data; every error names the file and the key."""

    path: Path
    fix: str = "fix it, or delete it and run photonpack lock again"  # what the user can do

    def error(self, location: str, problem: str) -> LockFileError:
        """The one-line error for ``location`` (``packages[3].wheels[0].size``)."""
        return LockFileError(f"lock file {self.path}: {location} {problem}; {self.fix}")

    def value(self, table: Mapping[str, Any], key: str, at: str, kind: type) -> Any:
        """``table[key]``, which must exist and be of ``kind`` (bool is not an integer)."""
        location = f"{at}.{key}" if at else key
        if key not in table:
            raise self.error(location, f"is missing: it must be {_TYPE_NAMES[kind]}")
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, Mapping if kind is dict else kind):
            raise self.error(location, f"is {_describe(value)}, but it must be {_TYPE_NAMES[kind]}")
        return value

    def table(self, table: Mapping[str, Any], key: str, at: str) -> Mapping[str, Any]:
        """A sub-table."""
        found: Mapping[str, Any] = self.value(table, key, at, dict)
        return found

    def string(self, table: Mapping[str, Any], key: str, at: str) -> str:
        """A string value."""
        found: str = self.value(table, key, at, str)
        return found

    def strings(self, table: Mapping[str, Any], key: str, at: str) -> list[str]:
        """An array of strings."""
        items: list[Any] = self.value(table, key, at, list)
        location = f"{at}.{key}" if at else key
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise self.error(
                    f"{location}[{i}]", f"is {_describe(item)}, but it must be a string"
                )
        return items

    def tables(self, table: Mapping[str, Any], key: str, at: str) -> list[Mapping[str, Any]]:
        """An array of tables."""
        items: list[Any] = self.value(table, key, at, list)
        location = f"{at}.{key}" if at else key
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise self.error(
                    f"{location}[{i}]", f"is {_describe(item)}, but it must be a table"
                )
        return items

    def size(self, table: Mapping[str, Any], key: str, at: str) -> int:
        """A non-negative integer."""
        found: int = self.value(table, key, at, int)
        if found < 0:
            raise self.error(f"{at}.{key}", f"is {found}, but a size cannot be negative")
        return found

    def locations(
        self, table: Mapping[str, Any], key: str, at: str, *, local_ok: bool
    ) -> tuple[str, ...]:
        """An array of index URLs (``local_ok``: or find-links directories) pip can reach."""
        items = self.strings(table, key, at)
        for i, item in enumerate(items):
            if (problem := location_problem(item, local_ok=local_ok)) is not None:
                raise self.error(f"{at}.{key}[{i}]", f"({item!r}) cannot be used: {problem}")
        return tuple(items)


def _describe(value: Any) -> str:
    kinds = {
        bool: "a boolean",
        str: "a string",
        int: "an integer",
        float: "a float",
        list: "an array",
    }
    if isinstance(value, Mapping):
        return "a table"
    return next(
        (name for kind, name in kinds.items() if isinstance(value, kind)), type(value).__name__
    )


def check_unique(
    packages: Sequence[LockedPackage], targets: Sequence[Target], where: Where
) -> None:
    """One entry per package version, and one version of each package for every target."""
    first: dict[tuple[str, str], int] = {}
    for i, package in enumerate(packages):
        earlier = first.setdefault((package.name, package.version), i)
        if earlier != i:
            raise where.error(
                f"packages[{i}]",
                f"repeats {package.name} {package.version}, already locked by packages[{earlier}]: "
                "a lock lists each package version once",
            )
    for target in targets:
        owner: dict[str, int] = {}
        for i, package in enumerate(packages):
            if not package.applies_to(target):
                continue
            earlier = owner.setdefault(package.name, i)
            if earlier != i:
                raise where.error(
                    f"packages[{i}]",
                    f"locks {package.name} {package.version} for target {target}, which "
                    f"packages[{earlier}] locks as {package.name} {packages[earlier].version}: "
                    "a lock holds one version of each package per target",
                )
