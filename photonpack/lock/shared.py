"""What every target of one ``resolve`` call shares: index pages, their files, metadata.

pip resolves one target at a time, and left alone each target fetches every
project page and every candidate's metadata again, one request after another.
:class:`SharedIndex` keeps, for the span of one call:

* **pages** by URL, fetched once for all targets. A JSON page is decoded once;
  each file's wheel tags are read once from its name, and a target's finder gets
  the ``Link`` objects of the files whose tags it installs (pip's finder would
  reject the others, after parsing and quoting their URLs: for numpy's or
  torch's tens of thousands of files, most of a lock's CPU time);
* **metadata** by file URL: a pure wheel's METADATA is read once for every
  target that considers it; a local (``file:``) wheel's METADATA member alone,
  where pip would read and hash the whole file (lock/metadist.py); a big wheel's
  whose page advertises no ``.metadata`` by HTTP range requests (else from an
  unadvertised ``.metadata``), where pip would download it whole (lock/remotezip.py:
  why the lock may trust it);
* **a thread pool** (:mod:`photonpack.lock.prefetch`: the target resolving now first)
  that fetches ahead of the resolver: the page of every
  project named by the requirements, by a previous lock's pins or by the
  ``Requires-Dist`` of metadata already read (with those under the extras some
  requirement asked of that project), and the metadata of the file each
  target will most likely pick on it (its newest version the requirement
  allows, or the pinned one). A wrong guess costs a request, never a different
  result: the resolver still asks for what it wants, and waits for it if a
  worker is fetching it.

Every request goes through one pip session (one connection pool), so targets
and workers reuse connections. A worker's failure surfaces only if the
resolver asks for that page or file, as the same exception pip would raise.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import email.parser
import functools
import hashlib
import json
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from photonpack.lock.metadist import wheel_metadata
from photonpack.lock.pagedecode import BIG_PAGE, PageDecoder
from photonpack.lock.prefetch import PriorityPool
from photonpack.lock.remotezip import RangeRefused, http_ranges, ranged_wheel
from photonpack.lock.target import Target
from photonpack.lock.wheeltags import installable, named_wheel, wheel_tags

__all__ = ["BIG_WHEEL", "SharedIndex", "TargetView", "installable"]

# Wheels at least this big (bytes) whose page advertises no ``.metadata`` have their METADATA
# member read by range requests, else an unadvertised ``.metadata`` file asked for (many
# mirrors serve one), and are downloaded whole only if both fail.
BIG_WHEEL = 1 << 20
# A guessed wheel bigger than this (bytes) whose METADATA no ``.metadata`` file and no range
# request gave is left for pip to download if the resolver asks for it: a wrong guess must
# not cost a torch-sized download.
GUESS_LIMIT = 64 << 20
CHUNK = 1 << 20
# Requests in flight at once: enough to hide an index's latency, few enough for any mirror.
WORKERS = 8
_JSON = "application/vnd.pypi.simple.v1+json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TargetView:
    """What the prefetcher needs of a target to guess its choices."""

    target: Target
    tags: tuple[str, ...]  # best first, as pip's finder orders them
    environment: Mapping[str, str]
    pre: bool
    tag_set: frozenset[str] = frozenset()
    rank: Mapping[str, int] = dataclasses.field(default_factory=dict)  # tag -> its place

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag_set", frozenset(self.tags))
        object.__setattr__(self, "rank", {tag: n for n, tag in enumerate(self.tags)})


class _Page:
    """A project page decoded once: its files, each wheel's tags, Links made on demand.

    ``files`` are all the page's, or (``kept_for``) those a target with one of those tags
    may install (lock/pagedecode.py); a target with other tags gets the whole page, which
    is given to ``decoded`` first.
    """

    def __init__(
        self,
        content: Any,
        files: list[dict[str, Any]] | None = None,
        kept_for: frozenset[str] | None = None,
        decoded: Callable[[_Page], None] = lambda page: None,
    ) -> None:
        self.content = content
        self.json = _is_json(content)
        self.files: list[dict[str, Any]] = []
        self.tags: list[frozenset[str] | None] = []
        self.links: dict[int, Any] = {}
        self.all_links: list[Any] | None = None  # an HTML page: pip's own parse, whole
        self.kept_for = kept_for if files is not None else None
        self._whole: _Page | None = None
        self._decoded = decoded
        self._ranked: dict[tuple[str, bool], list[tuple[Version, int]]] = {}
        self.lock = threading.Lock()
        if self.json:
            if files is None:
                files = list(json.loads(content.content).get("files", []))
            self.files = files
            self.tags = [wheel_tags(str(f.get("filename", ""))) for f in self.files]

    def for_tags(self, tags: frozenset[str]) -> _Page:
        """This page, or the whole page where this one kept too few files for ``tags``."""
        if self.kept_for is None or tags <= self.kept_for:
            return self
        with self.lock:
            if self._whole is None:
                self._decoded(whole := _Page(self.content))
                self._whole = whole
            return self._whole

    def link(self, i: int) -> Any:
        from pip._internal.models.link import Link

        with self.lock:
            if i not in self.links:
                self.links[i] = Link.from_json(self.files[i], self.content.url)
            return self.links[i]

    def links_for(self, tags: frozenset[str], *, wheels_only: bool = False) -> list[Any]:
        """The page's Links a target with ``tags`` may install, in the page's order.

        ``wheels_only``: the finder permits no sdist of this project (``--only-binary``), and
        would reject each (two thirds of the files of the realistic set's pages).
        """
        if not self.json:
            from pip._internal.index.collector import parse_links

            with self.lock:
                if self.all_links is None:
                    self.all_links = list(parse_links(self.content))
                return self.all_links
        if (whole := self.for_tags(tags)) is not self:
            return whole.links_for(tags, wheels_only=wheels_only)
        found = []
        for i, wheel in enumerate(self.tags):
            if wheel is None and wheels_only and not named_wheel(self.files[i]):
                continue
            if wheel is None or not wheel.isdisjoint(tags):
                link = self.link(i)
                if link is not None:
                    found.append(link)
        return found


class SharedIndex:
    """Pages, metadata and a fetching pool shared by the targets of one resolve call."""

    def __init__(self, *, indexes: Sequence[str], preferences: Mapping[str, str]) -> None:
        self.indexes = tuple(indexes)
        self.preferences: dict[str, str] = {canonicalize_name(k): v for k, v in preferences.items()}
        self.sizes: dict[tuple[str, str], int] = {}  # (filename, sha256) -> the page's size
        self.session: Any = None  # pip's session, set by the first repository
        self.views: list[TargetView] = []
        self.progress: Callable[[int], None] = lambda found: None
        self._pool = PriorityPool(WORKERS, "photonpack-prefetch")
        self._decoder = PageDecoder()
        self._decoder.start()  # while pip is being imported
        self._lock = threading.Lock()
        self._pages: dict[str, concurrent.futures.Future[_Page | None]] = {}
        self._metadata: dict[str, concurrent.futures.Future[Any]] = {}
        self._dists: dict[str, Any] = {}  # file URL -> its METADATA's pip distribution
        self._wanted: set[tuple[str, str, str]] = set()
        # Project -> the extras some requirement asked of it: the Requires-Dist its metadata
        # lists under them are fetched ahead too (torch's ``cuda-toolkit[cublas,…]``: 11 pages).
        self._extras: dict[str, frozenset[str]] = {}
        self._projects: set[str] = set()
        self._closed = False

    def shares(self, url: str) -> bool:
        """Whether the page at ``url`` is shared: an index's. A ``--find-links`` page is not
        filtered per target: pip caches its links for the whole process by URL."""
        return url.startswith(self.indexes)

    def close(self) -> None:
        """Stop fetching ahead; what is in flight is dropped."""
        with self._lock:
            self._closed = True
        self._pool.shutdown()
        self._decoder.close()

    # -- pages ---------------------------------------------------------------------------

    def page(self, url: str) -> _Page | None:
        """The project page at ``url`` (waiting for a worker that is fetching it)."""
        future = self._page_future(url, now=True)
        self._pool.run_now(future)  # still queued: fetched here, not waited for
        return future.result()

    def _page_future(
        self, url: str, *, now: bool = False
    ) -> concurrent.futures.Future[_Page | None]:
        with self._lock:
            future = self._pages.get(url)
            if future is None:
                if now or self._closed:
                    future = concurrent.futures.Future()
                    self._pages[url] = future
                    run_here = True
                else:
                    # Pages first: every target reads the same ones.
                    future = self._pool.submit(0, functools.partial(self._fetch_page, url))
                    self._pages[url] = future
                    run_here = False
            else:
                run_here = False
        if run_here:
            try:
                future.set_result(self._fetch_page(url))
            except BaseException as exc:  # noqa: BLE001 - raised again by result() below
                future.set_exception(exc)
        return future

    def _fetch_page(self, url: str) -> _Page | None:
        from pip._internal.index.collector import _get_index_content
        from pip._internal.models.link import Link

        content = _get_index_content(Link(url), session=self.session)
        if content is None:
            return None
        files = None
        tags = frozenset().union(*(view.tag_set for view in self.views))
        if _is_json(content) and len(content.content) >= BIG_PAGE and tags:
            files = self._decoder.files(content.content, tags)
        page = _Page(content, files, tags, self._record_sizes)
        self._record_sizes(page)
        return page

    def _record_sizes(self, page: _Page) -> None:
        for entry in page.files:
            size = entry.get("size")
            if isinstance(size, int):
                sha256 = (entry.get("hashes") or {}).get("sha256") or ""
                self.sizes[(str(entry.get("filename")), sha256)] = size

    # -- metadata ------------------------------------------------------------------------

    def metadata(self, link: Any, name: str) -> Any:
        """A pip distribution of ``link``'s metadata read without pip's download, or None."""
        url = link.url_without_fragment
        with self._lock:
            future = self._metadata.get(url)
            if future is None:
                future = self._metadata[url] = concurrent.futures.Future()
                run_here = True
            else:
                run_here = False
        if run_here:
            try:
                future.set_result(self._fetch_metadata(link, name))
            except BaseException as exc:  # noqa: BLE001 - kept for whoever asks next
                future.set_exception(exc)
        else:
            self._pool.run_now(future)  # a guess still queued: fetched here, not waited for
        try:
            found = future.result()
        except Exception:  # noqa: BLE001 - any failure means: let pip fetch it its way
            return None
        if isinstance(found, bytes):
            return self._distribution(url, found, link.filename, name)
        return found

    def _distribution(self, url: str, metadata: bytes, filename: str, name: str) -> Any:
        """One in-memory distribution of ``metadata`` for every target (lock/metadist.py)."""
        from pip._internal.metadata import get_metadata_distribution

        from photonpack.lock.metadist import metadata_distribution

        with self._lock:
            dist = self._dists.get(url)
        if dist is None:
            dist = metadata_distribution(metadata, filename)
            if dist is None:
                # pip's own: a new one each time, since it lives in a temporary directory
                # of the resolver step asking for it.
                return get_metadata_distribution(metadata, filename, name)
            with self._lock:
                dist = self._dists.setdefault(url, dist)
        return dist

    def _fetch_metadata(self, link: Any, name: str, limit: int | None = None) -> Any:
        """``link``'s METADATA (bytes) or in-memory wheel distribution, checked to name the
        wheel's project and version; None where pip should read it its own way."""
        from pip._internal.models.wheel import Wheel

        if not link.is_wheel or link.scheme not in ("http", "https", "file"):
            return None
        if link.scheme == "file":
            # A local wheel's METADATA member, not the whole file: pip's own path would read
            # and hash it all (torch's CUDA wheels: 2.6 GB). Its sha256 is the page's, and
            # build re-hashes every locked byte.
            found: Any = wheel_metadata(link.file_path)
        else:
            found = self._read_metadata(link, name, limit)
        if found is None:
            return None
        if isinstance(found, bytes):
            head = found.partition(b"\n\n")[0]  # the headers end at the first blank line
            headers = email.parser.BytesParser().parsebytes(head, headersonly=True)
            project, version = str(headers.get("Name", "")), str(headers.get("Version", ""))
            requires = headers.get_all("Requires-Dist") or []
        else:
            project, version = found.raw_name, str(found.version)
            requires = found.metadata.get_all("Requires-Dist") or []
        named = Wheel(link.filename)
        try:
            same = canonicalize_name(project) == canonicalize_name(named.name) and Version(
                version
            ) == Version(named.version)
        except InvalidVersion:
            same = False
        if not same:
            return None  # pip's own path reports (or ignores) what the file says
        self._depends([str(r) for r in requires], link, canonicalize_name(named.name))
        return found

    def _read_metadata(self, link: Any, name: str, limit: int | None) -> Any:
        """From PEP 658 ``.metadata`` where the page advertises it; else for a big wheel its
        METADATA member by range requests, else its unadvertised ``.metadata``; else from the
        wheel itself when the page gives its size and sha256 (and the size is within
        ``limit``); None where pip should do it its way."""
        url = link.url_without_fragment
        sha256 = link.hash if link.hash_name == "sha256" else ""
        size = self.sizes.get((link.filename, sha256 or ""))
        advertised = link.metadata_link()
        if advertised is not None:
            response = self.session.get(url + ".metadata")
            if response.status_code != 200:
                return None
            advertised.as_hashes().check_against_chunks([response.content])
            return bytes(response.content)
        if size is not None and size >= BIG_WHEEL:
            # Ranges first: this machine's mirror answers them in one round trip where its
            # unadvertised ``.metadata`` files (when it has one at all: for 10 of the realistic
            # set's 29 wheels) take five; both give the METADATA the wheel holds.
            if found := self._ranged(url, size):
                return found
            response = self.session.get(url + ".metadata")
            if response.status_code == 200:
                return bytes(response.content)
        if size is None or not sha256 or (limit is not None and size > limit):
            return None
        return self._wheel_metadata(link, name, sha256)

    def _ranged(self, url: str, size: int) -> bytes | None:
        """The wheel's METADATA member read by range requests, or None (lock/remotezip.py)."""
        try:
            return wheel_metadata(ranged_wheel(http_ranges(self.session, url, size), size))
        except (RangeRefused, OSError):  # requests' errors too: the whole download may work
            return None

    def _wheel_metadata(self, link: Any, name: str, sha256: str) -> Any:
        """The wheel's own METADATA (bytes: one distribution for every target, parsed once,
        as a ``.metadata`` file's), read from a temporary file (memory stays flat); pip's
        distribution of the whole wheel where that member alone cannot be read."""
        from pip._internal.metadata import MemoryWheel
        from pip._internal.metadata import get_wheel_distribution as wheel_distribution
        from pip._vendor.packaging.utils import canonicalize_name as pip_name

        with tempfile.TemporaryFile() as file:
            digest = hashlib.sha256()
            with self.session.get(link.url_without_fragment, stream=True) as response:
                if response.status_code != 200:
                    return None
                for chunk in response.iter_content(CHUNK):
                    digest.update(chunk)
                    file.write(chunk)
            if digest.hexdigest() != sha256:
                return None  # pip downloads it again, and reports what is wrong
            if (metadata := wheel_metadata(file)) is not None:
                return metadata
            file.seek(0)
            return wheel_distribution(MemoryWheel(link.filename, file), pip_name(name))

    # -- fetching ahead ------------------------------------------------------------------

    def want(
        self,
        lines: Iterable[str],
        views: Sequence[TargetView] | None = None,
        *,
        extras: Iterable[str] = (),
    ) -> None:
        """Fetch ahead what resolving ``lines`` (PEP 508) will need, for ``views`` (all);
        ``extras``: the lines are a project's Requires-Dist, and these extras of it wanted."""
        asked = ("", *extras)
        for line in lines:
            try:
                requirement = _requirement(line)
            except InvalidRequirement:
                continue  # an option line or a path: pip reads it
            if requirement.url:
                continue
            name = canonicalize_name(requirement.name)
            if requirement.extras:
                with self._lock:
                    known = self._extras.get(name, frozenset())
                    self._extras[name] = known | {canonicalize_name(e) for e in requirement.extras}
            for view in views if views is not None else self.views:
                marker = requirement.marker
                if marker and not any(
                    marker.evaluate({**view.environment, "extra": extra}) for extra in asked
                ):
                    continue
                self._want(name, str(requirement.specifier), view)

    def _want(self, name: str, specifier: str, view: TargetView) -> None:
        key = (name, specifier, str(view.target))
        with self._lock:
            if key in self._wanted or self._closed:
                return
            self._wanted.add(key)
            if name not in self._projects:
                self._projects.add(name)
                self.progress(len(self._projects))
        for index in self.indexes:
            future = self._page_future(f"{index}{name}/")
            future.add_done_callback(
                functools.partial(self._guess, name=name, spec=specifier, view=view)
            )

    def _guess(
        self,
        done: concurrent.futures.Future[_Page | None],
        *,
        name: str,
        spec: str,
        view: TargetView,
    ) -> None:
        # A callback's exception would be logged by concurrent.futures on stderr: a failed
        # guess is no guess (the resolver meets a real problem again, in its own thread).
        try:
            page = done.result()
            if page is None or not page.json:
                return
            page = page.for_tags(view.tag_set)
            i = _likely(page, name, spec, view, self.preferences.get(name))
            link = None if i is None else page.link(i)
        except Exception:  # noqa: BLE001 - see above
            return
        if link is None:
            return
        with self._lock:
            url = link.url_without_fragment
            if url in self._metadata or self._closed:
                return
            try:
                self._metadata[url] = self._pool.submit(
                    1 + self.views.index(view),  # the targets resolve in this order
                    functools.partial(self._fetch_metadata, link, name, GUESS_LIMIT),
                )
            except RuntimeError:  # the pool shut down meanwhile
                return

    def _depends(self, requires: list[str], link: Any, project: str) -> None:
        """Fetch ahead the dependencies of a wheel of ``project``, for the targets that can
        install it, with those of the extras asked of it so far."""
        tags = wheel_tags(link.filename) or frozenset()
        with self._lock:
            extras = sorted(self._extras.get(project, frozenset()))
        views = [v for v in self.views if not tags.isdisjoint(v.tag_set)]
        self.want(requires, views, extras=extras)


def _is_json(content: Any) -> bool:
    return bool(content.content_type.lower().startswith(_JSON))


# A project's releases repeat a few Requires-Python values, and every target of a lock asks
# about the same releases: each answer is computed once.
@functools.lru_cache(maxsize=4096)
def _allows(requires_python: str, python: str) -> bool:
    return Version(python) in SpecifierSet(requires_python)


_version = functools.lru_cache(maxsize=1 << 14)(Version)
_requirement = functools.lru_cache(maxsize=4096)(Requirement)  # read, never changed


def _likely(
    page: _Page, name: str, spec: str, view: TargetView, preferred: str | None
) -> int | None:
    """The file of ``page`` the target's resolver will most likely take first, or None: the
    newest version ``spec`` allows (the preferred one first, when it still fits), of its
    files the one with the target's best tag."""
    try:
        specifier = _specifier(spec)
    except InvalidSpecifier:
        return None
    ranked = _ranked(page, view)
    if preferred is not None:
        for version, i in ranked:
            if str(version) == preferred and specifier.contains(version, prereleases=True):
                return i
    for version, i in ranked:
        if specifier.contains(version, prereleases=True):
            return i
    return None


_specifier = functools.lru_cache(maxsize=4096)(SpecifierSet)  # read, never changed


def _ranked(page: _Page, view: TargetView) -> list[tuple[Version, int]]:
    """The (version, index) of the page's files the target may take, best first: newest
    version, then best tag, then last on the page. Computed once per page and target: every
    requirement on the project asks (four targets: a tenth of the fetching threads' time)."""
    key = (str(view.target), view.pre)
    with page.lock:
        if (known := page._ranked.get(key)) is not None:
            return known
    python = ".".join(str(n) for n in view.target.python_version)
    rank = view.rank
    keyed: list[tuple[Version, int, int]] = []  # version, -tag rank, -index
    for i, tags in enumerate(page.tags):
        if tags is None or tags.isdisjoint(view.tag_set):
            continue
        entry = page.files[i]
        if entry.get("yanked"):
            continue
        try:
            version = _version(str(entry["filename"]).split("-")[1])
            requires = entry.get("requires-python")
            if requires and not _allows(requires, python):
                continue
        except (InvalidVersion, InvalidSpecifier, IndexError, KeyError):
            continue
        if version.is_prerelease and not view.pre:
            continue
        keyed.append((version, -min(rank[t] for t in tags if t in rank), -i))
    keyed.sort(reverse=True)
    ranked = [(version, -negative) for version, _, negative in keyed]
    with page.lock:
        return page._ranked.setdefault(key, ranked)
