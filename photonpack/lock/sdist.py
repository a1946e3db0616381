"""A locked source distribution: the PEP 751 ``[packages.sdist]`` table and its build inputs.

A package that publishes only an sdist is locked by the sdist's URL, size and
sha256, as PEP 751 spells it, so pip and uv still read the file. What it takes
to build it is locked too, under the package's ``[packages.tool.photonpack]``:

* ``build-requires``: the sdist's ``build-system.requires`` as declared (the
  setuptools default when it declares none), for the reader;
* ``build-backend`` and ``backend-path``: the hook to call;
* ``build-packages``: ``name==version`` of each package of its build
  environment, whose hashed wheels are in ``[[tool.photonpack.build-packages]]``.

A package built from a pinned source (a git commit, a local project, an
archive URL: :mod:`photonpack.sources`) is a :class:`LockedSdist` too, whose
``source`` is that pinned form: it is written as PEP 751's ``vcs``,
``directory`` or ``archive`` table (:mod:`photonpack.lock.source_entries`),
and its sha256 and size are the source archive's, recorded under
``tool.photonpack.source-archive`` (the same bytes on any machine).

Everything here is a value: reading and writing TOML tables, nothing fetched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from photonpack._digest import is_sha256_hex
from photonpack.lock.relative import resolved_url
from photonpack.lock.schema import Where
from photonpack.lock.source_entries import source_entry, source_from_entry
from photonpack.sources.form import SourceForm

__all__ = ["DEFAULT_BACKEND", "DEFAULT_BUILD_REQUIRES", "BuildSystem", "LockedSdist"]

# What pip assumes of an sdist without a [build-system] table (PEP 517's fallback).
DEFAULT_BUILD_REQUIRES = ("setuptools>=40.8.0",)
DEFAULT_BACKEND = "setuptools.build_meta:__legacy__"


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildSystem:
    """How to build a source: its declared requirements, its backend, the pins of its build env."""

    requires: tuple[str, ...] = DEFAULT_BUILD_REQUIRES
    backend: str = DEFAULT_BACKEND
    backend_path: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()  # "name==version", into [[tool.photonpack.build-packages]]

    def to_dict(self) -> dict[str, Any]:
        table: dict[str, Any] = {"build-requires": list(self.requires)}
        table["build-backend"] = self.backend
        if self.backend_path:
            table["backend-path"] = list(self.backend_path)
        table["build-packages"] = list(self.packages)
        return table

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], at: str, where: Where) -> BuildSystem:
        return cls(
            requires=tuple(where.strings(table, "build-requires", at)),
            backend=where.string(table, "build-backend", at),
            backend_path=tuple(where.strings(table, "backend-path", at))
            if "backend-path" in table
            else (),
            packages=tuple(where.strings(table, "build-packages", at)),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class LockedSdist:
    """The sdist of a locked package (a :class:`photonpack.lock.download.LockedFile`)."""

    name: str
    version: str
    filename: str
    url: str
    size: int
    sha256: str
    build: BuildSystem = dataclasses.field(default_factory=BuildSystem)
    source: SourceForm | None = None  # pinned: built from it, not from an index's sdist
    path: str | None = (
        None  # a local sdist (--find-links): recorded relative to the lock's directory
    )

    def to_dict(self) -> dict[str, Any]:
        """The PEP 751 ``[packages.sdist]`` table."""
        assert self.source is None, "a source is written by package_tables"
        where = {"path": self.path} if self.path is not None else {"url": self.url}
        return {
            "name": self.filename,
            **where,
            "size": self.size,
            "hashes": {"sha256": self.sha256},
        }

    def package_tables(self) -> dict[str, Any]:
        """The keys of the package's table: ``sdist`` (or ``vcs``...) and ``tool``."""
        tool: dict[str, Any] = self.build.to_dict()
        if self.source is None:
            return {"sdist": self.to_dict(), "tool": {"photonpack": tool}}
        entry = source_entry(self.source)
        tool = {**entry.pop("tool", {}).get("photonpack", {}), **tool}
        tool["source-archive"] = {"size": self.size, "hashes": {"sha256": self.sha256}}
        return {**entry, "tool": {"photonpack": tool}}

    @classmethod
    def from_source(
        cls, package: Mapping[str, Any], at: str, where: Where, *, name: str, version: str
    ) -> LockedSdist | None:
        """The pinned source of ``package`` (a ``vcs``, ``directory`` or ``archive`` table)."""
        source = source_from_entry(package, at=at)
        if source is None:
            return None
        tool = where.table(where.table(package, "tool", at), "photonpack", f"{at}.tool")
        archive_at = f"{at}.tool.photonpack.source-archive"
        archive = where.table(tool, "source-archive", f"{at}.tool.photonpack")
        sha256 = where.string(where.table(archive, "hashes", archive_at), "sha256", archive_at)
        if not is_sha256_hex(sha256):
            raise where.error(f"{archive_at}.hashes.sha256", f"is {sha256!r}, not a sha256")
        return cls(
            name=name,
            version=version,
            filename=f"{name.replace('-', '_')}-{version}.tar.gz",
            url=str(dataclasses.replace(source, name=None)),  # where it is built from
            size=where.size(archive, "size", archive_at),
            sha256=sha256,
            build=BuildSystem.from_dict(tool, f"{at}.tool.photonpack", where),
            source=source,
        )

    @classmethod
    def from_dict(
        cls, package: Mapping[str, Any], at: str, where: Where, *, name: str, version: str
    ) -> LockedSdist:
        """Read ``package``'s ``sdist`` table and its ``tool.photonpack`` build table."""
        table = where.table(package, "sdist", at)
        sdist_at = f"{at}.sdist"
        hashes = where.table(table, "hashes", sdist_at)
        sha256 = where.string(hashes, "sha256", f"{sdist_at}.hashes")
        if not is_sha256_hex(sha256):
            raise where.error(
                f"{sdist_at}.hashes.sha256", f"is {sha256!r}, not 64 lowercase hex digits"
            )
        path = where.string(table, "path", sdist_at) if "path" in table else None
        # As for a wheel, a path wins over a URL (as pip reads it).
        url = (
            resolved_url(path, where.path.parent) if path else where.string(table, "url", sdist_at)
        )
        tool = where.table(where.table(package, "tool", at), "photonpack", f"{at}.tool")
        return cls(
            name=name,
            version=version,
            filename=where.string(table, "name", sdist_at)
            if "name" in table
            else url.rpartition("/")[2],
            url=url,
            path=path,
            size=where.size(table, "size", sdist_at),
            sha256=sha256,
            build=BuildSystem.from_dict(tool, f"{at}.tool.photonpack", where),
        )
