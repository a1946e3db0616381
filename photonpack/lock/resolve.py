"""Resolution with pip-tools, one target at a time, in this process.

Each target resolves with pip-tools' ``BacktrackingResolver`` over its own
repository (:mod:`photonpack.lock.repository`: the target's wheel tags,
Requires-Python and marker environment), against index pages and metadata all
targets share and a thread pool fetches ahead (:mod:`photonpack.lock.shared`,
routed into pip by :mod:`photonpack.lock.pipreads`). pip's errors become
photonpack's at one boundary (:mod:`photonpack.lock.piperrors`).

pip's configuration files and ``PIP_*`` variables are ignored while resolving
(``PIP_CONFIG_FILE=os.devnull``): a lock must depend on its recorded index
settings only, never on the machine that made it. Only the CA bundle is kept,
since it changes how to reach an index, not what it serves.

These are pip's private internals (``repository._finder``, ``make_resolver``,
``PackageFinder.process_project_url``, the vendored markers, the resolver
factory's record of mislabelled wheels). ``pyproject.toml`` bounds pip and
pip-tools to the versions the tests run with; if one moves anyway,
:func:`~photonpack.lock.piperrors.pip_internals` turns the ImportError or
AttributeError into one ``LockError`` naming the installed and supported versions.

This module imports pip; ``photonpack.lock.lockfile`` imports it only when it must
resolve, so an up-to-date ``photonpack lock`` never pays for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from photonpack.errors import ResolutionError
from photonpack.lock.index import DistFile, IndexSettings, redact_url
from photonpack.lock.piperrors import SourcesNeeded, pip_internals, translated
from photonpack.lock.pipimport import lazy_unused
from photonpack.lock.pipreads import (
    MetadataShortcut,
    cheaper_links,
    metadata_shortcuts,
    sharing_pages,
)
from photonpack.lock.repository import TargetRepository, target_environment, target_view
from photonpack.lock.sdistmeta import remembered_metadata, static_sdist_metadata
from photonpack.lock.session import lock_session
from photonpack.lock.shared import SharedIndex
from photonpack.lock.target import Target

__all__ = ["Pin", "Resolution", "resolve"]

_CA_VARIABLES = ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pin:
    """One package version a target needs."""

    name: str
    version: str
    url: str | None = None  # a direct reference (``name @ url``) instead of an index file
    required_by: tuple[str, ...] = ()  # the packages of this resolution that depend on it


@dataclasses.dataclass(frozen=True, kw_only=True)
class Resolution:
    """Pins per target, and per target the wheels it can install of every pinned project."""

    pins: dict[Target, dict[str, Pin]]
    files: dict[Target, dict[str, list[DistFile]]]


def resolve(
    requirements: Sequence[str],
    targets: Sequence[Target],
    index: IndexSettings,
    *,
    preferences: Mapping[str, str],
    allow_sources: bool = True,
    constraints: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    sdist_metadata: MetadataShortcut = static_sdist_metadata,
) -> Resolution:
    """Resolve ``requirements`` for each target: one version per package where one serves all.

    With ``allow_sources``, a project whose matching release has no wheel at
    all is locked from its sdist (see the module docstring); without it (build
    requirements), wheels only. ``constraints`` (``-c`` lines) limit versions
    without requiring anything. ``progress`` is told how many projects the
    resolution has met so far, as it meets them (from any thread). ``sdist_metadata``
    is how an sdist's metadata is had before pip's own preparation: its static
    PKG-INFO, or a hermetic build (:func:`~photonpack.lock.sdistmeta.built_metadata`).

    ``preferences`` (name -> version) are kept when still compatible, like
    the existing pins of ``pip-compile``. Every target is resolved with the
    same preferences, so the order of ``targets`` changes nothing; when the
    targets chose different versions of a package, every target is resolved
    again preferring the oldest of them, which each target keeps unless it
    cannot use it (no wheel for it, or a conflict) — as uv's universal
    resolution keeps one version across platforms when one satisfies them all.
    """
    lazy_unused()
    indexes = tuple(url.rstrip("/") + "/" for url in (index.index_url, *index.extra_index_urls))
    shared = SharedIndex(indexes=indexes, preferences=preferences)
    if progress is not None:
        shared.progress = progress
    sources: set[str] | None = set() if allow_sources else None
    current: list[TargetRepository] = []  # the target resolving now
    wanted = [*requirements, *(f"{n}=={v}" for n, v in preferences.items())]
    with (
        pip_internals(),
        _isolated_pip(),
        _quiet(),
        contextlib.closing(shared),
    ):
        # The first pages and metadata are fetched while the rest of pip is imported.
        shared.session = lock_session(index)
        shared.views.extend(target_view(target, index) for target in targets)
        for view in shared.views:  # every target's tags known to the first page
            shared.want(wanted, [view])
        with (
            sharing_pages(shared, lambda: current[-1].tags),
            cheaper_links(),
            metadata_shortcuts(shared, *([sdist_metadata] if allow_sources else [])),
            remembered_metadata(),  # a dynamic sdist's backend runs once, not once per round
            tempfile.TemporaryDirectory(prefix="photonpack-resolve-") as work,
        ):
            # One repository per target for both passes: the second reuses the candidates
            # pip's finder already holds.
            repositories = {
                target: TargetRepository(target, index, Path(work), shared) for target in targets
            }
            passes = _Passes(requirements, constraints, repositories, current, sources)
            return _both_passes(passes, targets, preferences)


def _both_passes(
    passes: _Passes, targets: Sequence[Target], preferences: Mapping[str, str]
) -> Resolution:
    """Every target resolved, then again those whose choices differ from the oldest ones."""
    resolution = passes(targets, preferences)
    agreed = _oldest_choices(resolution)
    differing = [
        target
        for target, pins in resolution.pins.items()
        if any(pin.version != agreed[name] for name, pin in pins.items())
    ]
    if not differing:
        return resolution
    # The agreed versions' metadata for those targets, fetched while the first resolves.
    views = [passes.repositories[target].view for target in differing]
    lines = [f"{name}=={version}" for name, version in agreed.items()]
    passes.repositories[differing[0]].shared.want(lines, views)
    # A target whose every pin already is the agreed one would resolve to the same
    # pins again (each package it needs is held to the version it chose): keep it.
    again = passes(differing, {**preferences, **agreed})
    return Resolution(
        pins={t: again.pins.get(t, resolution.pins[t]) for t in targets},
        files={t: again.files.get(t, resolution.files[t]) for t in targets},
    )


@dataclasses.dataclass
class _Passes:
    """One pass over some targets, each resolved in turn with the same preferences."""

    requirements: Sequence[str]
    constraints: Sequence[str]
    repositories: dict[Target, TargetRepository]
    current: list[TargetRepository]
    sources: set[str] | None

    def __call__(self, targets: Sequence[Target], preferences: Mapping[str, str]) -> Resolution:
        pins: dict[Target, dict[str, Pin]] = {}
        files: dict[Target, dict[str, list[DistFile]]] = {}
        sources = self.sources
        for target in targets:
            while True:  # once more for each sdist-only project found missing
                each = self.repositories[target]
                if sources and each.sources != sources:  # another target found them first
                    self.repositories[target] = each = each.with_sources(sources)
                self.current[:] = [each]
                try:
                    pins[target] = _resolve_one(
                        self.requirements, each, preferences=preferences, sources=sources,
                        constraints=self.constraints,
                    )  # fmt: skip
                    break
                except SourcesNeeded as needed:
                    assert sources is not None
                    # A fresh finder (above): pip's caches the candidates it filtered as
                    # wheels-only.
                    sources.update(needed.names)
            # What the targets after this one will most likely pick too: the same versions.
            later = [self.repositories[t].view for t in targets[targets.index(target) + 1 :]]
            lines = [f"{pin.name}=={pin.version}" for pin in pins[target].values() if not pin.url]
            each.shared.want(lines, later)
            files[target] = {
                name: _offered(each.repository, pin, each.shared.sizes)
                for name, pin in pins[target].items()
                if pin.url is None
            }
        return Resolution(pins=pins, files=files)


def _oldest_choices(resolution: Resolution) -> dict[str, str]:
    """For each package, the oldest version any target chose."""
    from packaging.version import Version

    oldest: dict[str, str] = {}
    for pins in resolution.pins.values():
        for name, pin in pins.items():
            if name not in oldest or Version(pin.version) < Version(oldest[name]):
                oldest[name] = pin.version
    return oldest


def _offered(repository: Any, pin: Pin, sizes: Mapping[tuple[str, str], int]) -> list[DistFile]:
    """The target's installable files of ``pin``'s version, from what pip's finder parsed.

    Only that version's: the lock takes its files from them, and building a ``DistFile``
    for every release of numpy for every target was a good part of a target's time.
    """
    from pip._vendor.packaging.version import Version

    version = Version(pin.version)
    found = []
    for candidate in repository.finder.find_all_candidates(pin.name):
        if candidate.version != version:
            continue
        link = candidate.link
        sha256 = link.hash if link.hash_name == "sha256" else None
        found.append(
            DistFile(
                filename=link.filename,
                url=redact_url(link.url_without_fragment),
                sha256=sha256,
                size=sizes.get((link.filename, sha256 or "")),
                yanked=link.is_yanked,
            )
        )
    return found


@contextlib.contextmanager
def _isolated_pip() -> Iterator[None]:
    saved = {key: value for key, value in os.environ.items() if key.startswith("PIP_")}
    cert = next((os.environ[k] for k in _CA_VARIABLES if os.environ.get(k)), None)
    try:
        for key in saved:
            del os.environ[key]
        os.environ["PIP_CONFIG_FILE"] = os.devnull
        if cert:
            os.environ["PIP_CERT"] = cert
        yield
    finally:
        for key in [k for k in os.environ if k.startswith("PIP_")]:
            del os.environ[key]
        os.environ.update(saved)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence pip and pip-tools, and undo the logging setup pip-tools does.

    They write warnings and errors to the terminal themselves; photonpack reports
    through its own errors, and the calling process keeps its logging as it was.
    """
    import logging

    from piptools.logging import log

    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    names = ("pip", "pip._vendor")
    saved_levels = {name: logging.getLogger(name).level for name in names}
    nested = "log" in vars(log)  # a build environment resolved inside a resolution
    log.log = lambda *args, **kwargs: None  # type: ignore[method-assign]  # shadows the method
    try:
        with warnings.catch_warnings():
            # A backend preparing an sdist's metadata warns through pip's hook caller.
            warnings.simplefilter("ignore")
            yield
    finally:
        if not nested:
            del log.log
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for name, saved in saved_levels.items():
            logging.getLogger(name).setLevel(saved)


def _resolve_one(
    requirements: Sequence[str],
    each: TargetRepository,
    *,
    preferences: Mapping[str, str],
    sources: set[str] | None,
    constraints: Sequence[str] = (),
) -> dict[str, Pin]:
    from pip._internal.exceptions import InstallationError
    from pip._internal.req.constructors import install_req_from_line
    from piptools.resolver import BacktrackingResolver

    target = each.target
    with target_environment(target):
        try:
            ireqs = [install_req_from_line(line, comes_from="photon") for line in requirements]
            ireqs += [
                install_req_from_line(line, comes_from="constraints", constraint=True)
                for line in constraints
            ]
        except InstallationError as exc:
            raise ResolutionError(f"invalid requirement: {exc}") from exc
        existing: dict[str, Any] = {
            canonicalize_name(name): install_req_from_line(f"{name}=={version}")
            for name, version in preferences.items()
        }
        resolver = BacktrackingResolver(ireqs, existing, each.repository, allow_unsafe=True)
        with translated(target, each.index, resolvers=each.resolvers, sources=sources):
            result = resolver.resolve()
    pins = [_pin(ireq) for ireq in result]
    return {pin.name: pin for pin in pins}


def _pin(ireq: Any) -> Pin:
    version = next(iter(ireq.specifier)).version
    url = ireq.link.url if ireq.link is not None and ireq.original_link is not None else None
    parents = getattr(ireq, "_required_by", ())  # pip-tools' record of who requires it
    return Pin(
        name=canonicalize_name(ireq.name),
        version=version,
        url=url,
        required_by=tuple(sorted(canonicalize_name(p) for p in parents)),
    )
