"""Where pip reads an index while it resolves, routed through :mod:`photonpack.lock.shared`.

Two of pip's costs grow with the index and the number of targets rather than with the lock:

* **Index pages.** pip's finder fetches and parses a project's page for each
  target, and turns every file into a ``Link`` before rejecting the other
  platforms' wheels. :func:`sharing_pages` makes its ``process_project_url``
  take the page from the shared index (fetched once, decoded once) with only
  the files the target may install: wheels with its tags, and sdists only for
  a project whose sdist the finder permits (pip rejects the others anyway).
* **Metadata.** Without PEP 658's ``core-metadata`` on the page, pip downloads
  each candidate wheel whole to read its ``METADATA`` (torch: 539 MB), for each
  target. :func:`metadata_shortcuts` asks the shared index first (which reads a
  small wheel once for every target, a big wheel's ``<url>.metadata`` that
  many mirrors serve without advertising it, else its METADATA member by HTTP
  range requests, and a local wheel's METADATA member where pip would hash the
  whole file), then pip's own path, then the
  other shortcuts (a static sdist ``PKG-INFO``). Like pip's own PEP 658 path an
  unadvertised file (or a ranged member) is not hash-checked at lock time; ``build`` checks every
  locked wheel's real ``Requires-Dist`` against the lock (``lock/closure.py``),
  so a lying file is caught before an archive exists.

Both patch pip's private internals for the span of one ``resolve`` call, under
its ``pip_internals`` guard.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

from photonpack.lock.shared import SharedIndex

__all__ = ["MetadataShortcut", "metadata_shortcuts", "sharing_pages"]


@contextlib.contextmanager
def sharing_pages(shared: SharedIndex, tags: Callable[[], frozenset[str]]) -> Iterator[None]:
    """Make pip's finder read index pages from ``shared``, filtered by ``tags()`` (the wheel
    tags of the target resolving now); undone on exit, like ``resolve``'s other patches."""
    from pip._internal.index import package_finder
    from pip._internal.index.package_finder import PackageFinder
    from pip._internal.utils.logging import indent_log

    finder_module: Any = package_finder
    wheel = finder_module.Wheel

    original = PackageFinder.__dict__["process_project_url"]

    def process_project_url(self: Any, project_url: Any, link_evaluator: Any) -> list[Any]:
        url = project_url.url.split("#", 1)[0]
        if not shared.shares(url):
            return original(self, project_url, link_evaluator)  # type: ignore[no-any-return]
        page = shared.page(url)
        if page is None:
            return []
        # The project's permitted formats: without "source", pip rejects every sdist link.
        formats = getattr(link_evaluator, "_formats", None)
        wheels_only = formats is not None and "source" not in formats
        links = page.links_for(tags(), wheels_only=wheels_only)
        with indent_log():
            return self.evaluate_links(link_evaluator, links=links)  # type: ignore[no-any-return]

    PackageFinder.process_project_url = process_project_url  # type: ignore[method-assign]
    # The finder parses a wheel's name again for each target and each sort of its
    # candidates (14,600 times for four targets); a Wheel is read-only: one per name.
    finder_module.Wheel = functools.cache(wheel)
    try:
        yield
    finally:
        PackageFinder.process_project_url = original  # type: ignore[method-assign]
        finder_module.Wheel = wheel


# A way to a candidate's metadata without downloading or building it:
# (pip's RequirementPreparer, the InstallRequirement) -> a pip metadata distribution, or None.
MetadataShortcut = Callable[[Any, Any], Any]


@contextlib.contextmanager
def metadata_shortcuts(shared: SharedIndex, *shortcuts: MetadataShortcut) -> Iterator[None]:
    """Let pip take a candidate's metadata from ``shared``, else pip's own metadata-only
    path (PEP 658), else the first of ``shortcuts`` that has it.

    Asked only where pip would otherwise download the file whole (or run an
    sdist's backend); never in hash-checking mode. One patch of
    ``RequirementPreparer._fetch_metadata_only`` for the span of one ``resolve`` call.
    """
    from pip._internal.operations.prepare import RequirementPreparer

    original = RequirementPreparer.__dict__["_fetch_metadata_only"]

    def fetch(self: Any, req: Any) -> Any:
        if self.require_hashes or self.legacy_resolver or req.req is None:
            return original(self, req)
        if (dist := shared.metadata(req.link, req.req.name)) is not None:
            return dist
        if (found := original(self, req)) is not None:
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
