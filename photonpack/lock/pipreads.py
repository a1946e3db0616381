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
  small wheel once for every target, a big wheel's METADATA member by HTTP
  range requests, else the ``<url>.metadata`` that many mirrors serve without
  advertising it, and a local wheel's METADATA member where pip would hash the
  whole file), then pip's own path, then the
  other shortcuts (a static sdist ``PKG-INFO``). Like pip's own PEP 658 path an
  unadvertised file (or a ranged member) is not hash-checked at lock time; ``build`` checks every
  locked wheel's real ``Requires-Dist`` against the lock (``lock/closure.py``),
  so a lying file is caught before an archive exists.

A third, :func:`cheaper_links`, spares pip's finder work per link whose answer is known.

All patch pip's private internals for the span of one ``resolve`` call, under
its ``pip_internals`` guard.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from photonpack.lock.shared import SharedIndex

__all__ = ["MetadataShortcut", "cheaper_links", "metadata_shortcuts", "sharing_pages"]

# A URL that pip's quoting gives back unchanged: http(s), a plain host, a path of characters
# ``urllib.parse.quote`` keeps as they are, no query, fragment, ``%`` escape or ``@``.
_QUOTED_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~-]*)*")


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


@contextlib.contextmanager
def cheaper_links() -> Iterator[None]:
    """Spare pip's finder the per-link work whose answer is known in advance.

    * **Quoting an index's file URL** (``_ensure_quoted_url``, for each ``Link``): a URL
      of only unreserved characters is its own quoted form (a third of building a Link).
    * **Parsing a wheel's tags** (``parse_tag``, for each wheel name): a project's
      files repeat a few tag strings thousands of times; the frozenset of immutable
      tags is kept per string (an invalid one raises again each time).
    * **Parsing a candidate's version** (``InstallationCandidate``, for each link and
      each target): a version is immutable, one is kept per string.
    * **Looking a wheel up in pip's wheel cache** (a hash and a directory scan per
      candidate): that cache holds wheels pip built from an sdist's link, under that
      link, so a wheel's link has no entry there; pip finds none for it either. The
      running interpreter's tags that lookup needs (for an sdist's link) are computed
      once, not at each of pip's resolvers (one per target and pass and pip-tools round:
      a tenth of a four-target lock's samples).

    Undone on exit, like the other patches.
    """
    from pip._internal.models import candidate as pip_candidate
    from pip._internal.models import link as pip_link
    from pip._internal.resolution.resolvelib import factory as pip_factory
    from pip._internal.resolution.resolvelib.factory import Factory
    from pip._vendor.packaging import utils as pip_utils

    # Typed as Any: the names patched are not in these modules' public interfaces.
    packaging_utils: Any = pip_utils
    candidate_module: Any = pip_candidate
    link_module: Any = pip_link
    factory_module: Any = pip_factory
    quoted = link_module.__dict__["_ensure_quoted_url"]
    parse_tag = packaging_utils.__dict__["parse_tag"]
    cache_entry = Factory.__dict__["get_wheel_cache_entry"]
    parse_version = candidate_module.__dict__["parse_version"]
    supported = factory_module.__dict__["get_supported"]
    host_tags: list[Any] = []

    def get_supported(*args: Any, **kwargs: Any) -> list[Any]:
        if args or kwargs:
            return supported(*args, **kwargs)  # type: ignore[no-any-return]
        if not host_tags:
            host_tags[:] = supported()
        return host_tags  # read only: pip's wheel cache ranks the cached wheels by it

    def ensure_quoted_url(url: str) -> str:
        return url if _QUOTED_URL.fullmatch(url) else quoted(url)

    def get_wheel_cache_entry(self: Any, link: Any, name: str | None) -> Any:
        return None if link.is_wheel else cache_entry(self, link, name)

    link_module._ensure_quoted_url = ensure_quoted_url
    packaging_utils.parse_tag = functools.lru_cache(maxsize=4096)(parse_tag)
    Factory.get_wheel_cache_entry = get_wheel_cache_entry  # type: ignore[method-assign]
    candidate_module.parse_version = functools.lru_cache(maxsize=1 << 14)(parse_version)
    factory_module.get_supported = get_supported
    try:
        yield
    finally:
        factory_module.get_supported = supported
        link_module._ensure_quoted_url = quoted
        packaging_utils.parse_tag = parse_tag
        candidate_module.parse_version = parse_version
        Factory.get_wheel_cache_entry = cache_entry  # type: ignore[method-assign]
