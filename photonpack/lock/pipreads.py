"""What pip reads from an index while it resolves, made cheaper without changing the result.

Two of pip's costs grow with the index rather than with the lock:

* **Index pages.** numpy's, scipy's and torch's pages list tens of thousands
  of files; pip turns each into a ``Link`` (parsing and quoting its URL) before
  its finder rejects the ones for other platforms. :class:`PageFilter` drops
  those first, by the same tag test.
* **Metadata.** Without PEP 658's ``core-metadata`` on the page, pip downloads
  each candidate wheel whole to read its ``METADATA`` (torch: 539 MB). Many
  mirrors serve ``<wheel>.metadata`` without advertising it;
  :func:`unadvertised_metadata` tries that small file first and falls back to
  pip's download on any failure. Like pip's own PEP 658 path it is not
  hash-checked at lock time; ``build`` checks every locked wheel's real
  ``Requires-Dist`` against the lock (``lock/closure.py``), so a lying file is
  caught before an archive exists.

Both patch pip's private internals for the span of one ``resolve`` call, under
its ``_pip_internals`` guard.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

__all__ = [
    "METADATA_FIRST",
    "MetadataShortcut",
    "PageFilter",
    "filtering_pages",
    "metadata_shortcuts",
    "unadvertised_metadata",
]

# Wheels at least this big (bytes) have their ``.metadata`` file asked for first.
METADATA_FIRST = 1 << 20


@dataclasses.dataclass
class PageFilter:
    """What is kept of the index pages pip parses while one target resolves.

    ``sizes``: the PEP 700 ``size`` of every file, keyed by what the page says
    (pip's ``Link`` drops it; without this every wheel's size would cost a
    second fetch of its project page). ``tags``: the wheel tags the target
    installs; a wheel matching none of them is dropped before pip turns it
    into a ``Link`` — pip's finder would reject it anyway (``platform_mismatch``),
    but only after parsing and quoting its URL, which for the tens of thousands
    of files on numpy's or torch's pages is most of a cold lock's CPU time.

    Only index pages (under ``indexes``) are filtered: pip caches the links of a
    ``--find-links`` page for the whole process by URL, so a list filtered for
    one target would be served to the next.
    """

    sizes: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    indexes: tuple[str, ...] = ()

    def keeps(self, filename: str, page_url: str) -> bool:
        """Whether ``filename`` may be installable: an sdist, or a wheel with one of the tags."""
        if not filename.endswith(".whl") or not self.tags:
            return True
        if not page_url.startswith(self.indexes):
            return True
        parts = filename[:-4].lower().split("-")
        if len(parts) < 5:
            return True  # not a valid wheel name: pip reports it
        pythons, abis, platforms = (part.split(".") for part in parts[-3:])
        tags = self.tags
        return any(
            f"{python}-{abi}-{platform}" in tags
            for python in pythons
            for abi in abis
            for platform in platforms
        )


@contextlib.contextmanager
def filtering_pages(pages: PageFilter) -> Iterator[None]:
    """Make pip's JSON page parser go through ``pages``; undone on exit, like
    ``resolve``'s other patches."""
    from pip._internal.models.link import Link

    original = Link.__dict__["from_json"]
    sizes = pages.sizes

    def from_json(cls: type[Any], file_data: dict[str, Any], page_url: str) -> Any:
        # This runs for every file of every release: it must cost next to nothing.
        filename = str(file_data.get("filename"))
        if not pages.keeps(filename, page_url):
            return None  # pip's parse_links skips a None
        size = file_data.get("size")
        if isinstance(size, int):
            sha256 = (file_data.get("hashes") or {}).get("sha256") or ""
            sizes[(filename, sha256)] = size
        return original.__func__(cls, file_data, page_url)

    Link.from_json = classmethod(from_json)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Link.from_json = original  # type: ignore[method-assign]


# A way to a candidate's metadata without downloading or building it:
# (pip's RequirementPreparer, the InstallRequirement) -> a pip metadata distribution, or None.
MetadataShortcut = Callable[[Any, Any], Any]


@contextlib.contextmanager
def metadata_shortcuts(*shortcuts: MetadataShortcut) -> Iterator[None]:
    """Let pip take a candidate's metadata from the first of ``shortcuts`` that has it.

    Asked only where pip's own metadata-only path (PEP 658) found none and pip
    would otherwise download the file whole (or run an sdist's backend); never
    in hash-checking mode. One patch of ``RequirementPreparer._fetch_metadata_only``
    for the span of one ``resolve`` call.
    """
    from pip._internal.operations.prepare import RequirementPreparer

    original = RequirementPreparer.__dict__["_fetch_metadata_only"]

    def fetch(self: Any, req: Any) -> Any:
        found = original(self, req)
        if found is not None or self.require_hashes or self.legacy_resolver or req.req is None:
            return found
        for shortcut in shortcuts:
            if (dist := shortcut(self, req)) is not None:
                return dist
        return None

    RequirementPreparer._fetch_metadata_only = fetch  # type: ignore[method-assign]
    try:
        yield
    finally:
        RequirementPreparer._fetch_metadata_only = original  # type: ignore[method-assign]


def unadvertised_metadata(pages: PageFilter) -> MetadataShortcut:
    """Read a wheel's METADATA from ``<url>.metadata`` before pip downloads the wheel.

    Only for wheels the page says are bigger than :data:`METADATA_FIRST`: below
    that, a request that may well be answered 404 costs about what the download does.
    """

    def shortcut(preparer: Any, req: Any) -> Any:
        from pip._internal.metadata import get_metadata_distribution
        from pip._internal.models.wheel import Wheel

        link = req.link
        if not link.is_wheel or link.scheme not in ("http", "https"):
            return None
        sha256 = link.hash if link.hash_name == "sha256" else ""
        size = pages.sizes.get((link.filename, sha256 or ""))
        if size is None or size < METADATA_FIRST:
            return None
        try:
            response = preparer._session.get(link.url_without_fragment + ".metadata")
            if response.status_code != 200:
                return None
            dist = get_metadata_distribution(response.content, link.filename, req.req.name)
            named = Wheel(link.filename)
            same = canonicalize_name(dist.raw_name) == canonicalize_name(named.name) and Version(
                str(dist.version)
            ) == Version(named.version)
        except Exception:  # noqa: BLE001 - any failure means: let pip download the wheel
            return None
        return dist if same else None

    return shortcut
