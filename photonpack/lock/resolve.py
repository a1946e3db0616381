"""Resolution with pip-tools, one target at a time, in this process.

pip-tools' ``BacktrackingResolver`` drives pip's resolver over a
``PyPIRepository``. For a target other than the running interpreter two
things must describe the target instead of this machine:

* **Wheel tags and Requires-Python.** The repository's ``PackageFinder`` gets
  a pip ``TargetPython`` built from :meth:`Target.platforms` (with
  ``--only-binary :all:``, so no sdist is ever built), and pip's resolver gets
  the target's ``py_version_info`` so ``Requires-Python`` in metadata is
  checked against the target.
* **Environment markers.** pip evaluates every marker with
  ``pip._vendor.packaging.markers.default_environment()``, i.e. the running
  interpreter, even with ``--platform``. While one target resolves, that one
  function is replaced by the target's PEP 508 environment
  (:meth:`Target.environment`). The replacement is scoped to
  :func:`_target_environment` and undone on exit; resolution is sequential,
  so no other code observes it. The alternative, a resolver loop of our own
  over pip-tools' repository, would duplicate pip's backtracking.

pip's configuration files and ``PIP_*`` variables are ignored while resolving
(``PIP_CONFIG_FILE=os.devnull``): a lock must depend on its recorded index
settings only, never on the machine that made it. Only the CA bundle is kept,
since it changes how to reach an index, not what it serves.

These are pip's private internals (``repository._finder``, ``make_resolver``,
``Link.from_json``, the vendored markers, the resolver factory's record of
mislabelled wheels). ``pyproject.toml`` bounds pip and pip-tools to the
versions the tests run with; if one moves anyway, :func:`_pip_internals`
turns the ImportError or AttributeError into one ``LockError`` naming the
installed and supported versions.

This module imports pip; ``photonpack.lock.lockfile`` imports it only when it must
resolve, so an up-to-date ``photonpack lock`` never pays for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence, Set
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from photonpack.errors import (
    IntegrityError,
    LockError,
    PackageIndexError,
    ResolutionError,
)
from photonpack.lock.diagnosis import (
    explain_not_found,
    mislabelled,
    parse_requirement,
    source_only,
)
from photonpack.lock.index import DistFile, IndexSettings, redact_url
from photonpack.lock.pipreads import (
    PageFilter,
    filtering_pages,
    metadata_shortcuts,
    unadvertised_metadata,
)
from photonpack.lock.sdistmeta import remembered_metadata, static_sdist_metadata
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
) -> Resolution:
    """Resolve ``requirements`` for each target: one version per package where one serves all.

    With ``allow_sources``, a project whose matching release has no wheel at
    all is locked from its sdist (see the module docstring); without it (build
    requirements), wheels only. ``constraints`` (``-c`` lines) limit versions
    without requiring anything.

    ``preferences`` (name -> version) are kept when still compatible, like
    the existing pins of ``pip-compile``. Every target is resolved with the
    same preferences, so the order of ``targets`` changes nothing; when the
    targets chose different versions of a package, every target is resolved
    again preferring the oldest of them, which each target keeps unless it
    cannot use it (no wheel for it, or a conflict) — as uv's universal
    resolution keeps one version across platforms when one satisfies them all.
    """
    indexes = tuple(url.rstrip("/") + "/" for url in (index.index_url, *index.extra_index_urls))
    pages = PageFilter(indexes=indexes)
    sources: set[str] | None = set() if allow_sources else None
    with (
        _pip_internals(),
        _isolated_pip(),
        _quiet(),
        filtering_pages(pages),
        metadata_shortcuts(
            unadvertised_metadata(pages), *([static_sdist_metadata] if allow_sources else [])
        ),
        remembered_metadata(),  # a dynamic sdist's backend runs once, not once per round
        tempfile.TemporaryDirectory(prefix="photonpack-resolve-") as work,
    ):
        # One repository per target for both passes: the second reuses the index pages and
        # metadata pip's finder and preparer already hold.
        work_dir = Path(work)
        repositories = {t: _TargetRepository(t, index, work_dir) for t in targets}
        resolution = _resolve_each(
            requirements,
            targets,
            repositories,
            preferences,
            pages=pages,
            sources=sources,
            constraints=constraints,
        )
        agreed = _oldest_choices(resolution)
        differing = [
            target
            for target, pins in resolution.pins.items()
            if any(pin.version != agreed[name] for name, pin in pins.items())
        ]
        if differing:
            # A target whose every pin already is the agreed one would resolve to the same
            # pins again (each package it needs is held to the version it chose): keep it.
            unified = {**preferences, **agreed}
            again = _resolve_each(
                requirements,
                differing,
                repositories,
                unified,
                pages=pages,
                sources=sources,
                constraints=constraints,
            )
            resolution = Resolution(
                pins={t: again.pins.get(t, resolution.pins[t]) for t in targets},
                files={t: again.files.get(t, resolution.files[t]) for t in targets},
            )
    return resolution


class _TargetRepository:
    """A pip-tools repository for one target, and every pip resolver made from it."""

    def __init__(
        self, target: Target, index: IndexSettings, work: Path, sources: Set[str] = frozenset()
    ) -> None:
        self.target = target
        self.index = index
        self.work = work
        self.sources = frozenset(sources)
        self.resolvers: list[Any] = []
        self.repository = _repository(target, index, work, self.resolvers, set(sources))
        self.tags = frozenset(
            str(tag) for tag in self.repository.finder.target_python.get_unsorted_tags()
        )

    def with_sources(self, sources: Set[str]) -> _TargetRepository:
        """The same target's repository, allowing the sdists of ``sources``."""
        return _TargetRepository(self.target, self.index, self.work, sources)


def _resolve_each(
    requirements: Sequence[str],
    targets: Sequence[Target],
    repositories: dict[Target, _TargetRepository],
    preferences: Mapping[str, str],
    *,
    pages: PageFilter,
    sources: set[str] | None,
    constraints: Sequence[str] = (),
) -> Resolution:
    pins: dict[Target, dict[str, Pin]] = {}
    files: dict[Target, dict[str, list[DistFile]]] = {}
    for target in targets:
        while True:  # once more for each sdist-only project found missing
            each = repositories[target]
            if sources and each.sources != sources:  # another target found them first
                repositories[target] = each = each.with_sources(sources)
            pages.tags = each.tags
            try:
                pins[target] = _resolve_one(
                    requirements, target, each.index, each.repository,
                    preferences=preferences, resolvers=each.resolvers, sources=sources,
                    constraints=constraints,
                )  # fmt: skip
                break
            except _SourcesNeeded as needed:
                assert sources is not None
                # A fresh finder (above): pip's caches the candidates it filtered as wheels-only.
                sources.update(needed.names)
        files[target] = {
            name: _offered(each.repository, name, pages.sizes)
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


def _offered(repository: Any, name: str, sizes: Mapping[tuple[str, str], int]) -> list[DistFile]:
    """The target's installable files of ``name``, from what pip's finder already parsed."""
    found = []
    for candidate in repository.finder.find_all_candidates(name):
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


class _SourcesNeeded(Exception):  # a signal from _resolve_one to _resolve_each, never further
    """The resolution failed only for want of sdist-only projects: retry with them allowed."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(", ".join(sorted(names)))
        self.names = names


def _sources_for(names: set[str]) -> Any:
    """A pip ``FormatControl``: wheels only, except sdists for ``names``.

    ``only_binary`` stays ``{":all:"}``, so the isolated build environment
    pip prepares an sdist's metadata in installs its build requirements from
    wheels only (pip passes the finder's format control on).
    """
    from pip._internal.models.format_control import FormatControl

    class SourcesFor(FormatControl):
        __slots__ = ()

        def get_allowed_formats(self, canonical_name: str) -> frozenset[str]:
            if canonical_name in names:
                return frozenset({"binary", "source"})
            return frozenset({"binary"})

    return SourcesFor(set(), {":all:"})


# What a pip or pip-tools release that moved an internal raises when it is used.
_MOVED = (ImportError, AttributeError, KeyError, TypeError)


@contextlib.contextmanager
def _pip_internals() -> Iterator[None]:
    """A moved pip internal is one LockError naming the versions, not a traceback."""
    try:
        yield
    except _MOVED as exc:
        raise LockError(_moved(exc)) from exc


def _moved(exc: BaseException) -> str:
    from importlib import metadata

    installed, supported = [], []
    wanted = _supported_versions()
    for name in ("pip", "pip-tools"):
        try:
            installed.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            installed.append(f"no {name}")
        supported.append(f"{name}{wanted.get(name, '')}")
    fix = " ".join(f"'{s}'" for s in supported)
    return (
        f"photonpack cannot drive the installed pip: {type(exc).__name__}: {exc}; "
        f"installed are {' and '.join(installed)}, photonpack supports "
        f"{' and '.join(supported)}: install those (pip install {fix})"
    )


def _supported_versions() -> dict[str, str]:
    """The pip and pip-tools bounds of photonpack's own requirements (pyproject.toml)."""
    from importlib import metadata

    try:
        lines = metadata.requires("photonpack") or []
    except metadata.PackageNotFoundError:
        return {}
    bounds = {}
    for line in lines:
        requirement = parse_requirement(line)
        if requirement is not None and requirement.name in ("pip", "pip-tools"):
            lower_first = sorted(requirement.specifier, key=lambda s: s.operator[0] == "<")
            bounds[requirement.name] = ",".join(str(s) for s in lower_first)
    return bounds


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
    log.log = lambda *args, **kwargs: None  # type: ignore[method-assign]  # shadows the method
    try:
        with warnings.catch_warnings():
            # A backend preparing an sdist's metadata warns through pip's hook caller.
            warnings.simplefilter("ignore")
            yield
    finally:
        del log.log
        root.handlers[:], level = saved_root
        root.setLevel(level)
        for name, saved in saved_levels.items():
            logging.getLogger(name).setLevel(saved)


def _mute_pip_logging() -> None:
    import logging

    # After PyPIRepository ran pip's logging setup, which sets these levels itself.
    for name in ("pip", "pip._vendor"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


@contextlib.contextmanager
def _target_environment(target: Target) -> Iterator[None]:
    from pip._vendor.packaging import markers

    environment = target.environment()
    original = markers.default_environment
    markers.default_environment = lambda: dict(environment)  # type: ignore[assignment,return-value]
    try:
        yield
    finally:
        markers.default_environment = original


def _pip_args(index: IndexSettings) -> list[str]:
    # --no-input: a 401 must become an error, never a password prompt (CI has no terminal).
    args = ["--index-url", index.index_url, "--only-binary", ":all:", "--no-input"]
    for url in index.extra_index_urls:
        args += ["--extra-index-url", url]
    for location in index.find_links:
        args += ["--find-links", location]
    if index.pre:
        args.append("--pre")
    # One attempt and a bounded wait: an unreachable mirror is reported, not retried for minutes.
    return [*args, "--retries", "0", "--timeout", "30"]


def _repository(
    target: Target, index: IndexSettings, work: Path, resolvers: list[Any], sources: set[str]
) -> Any:
    """A pip-tools repository whose finder and resolver see ``target``, not this interpreter.

    Every pip resolver it makes is appended to ``resolvers``: after a failure,
    its factory knows the wheels it discarded as mislabelled.
    """
    from pip._internal.models.target_python import TargetPython
    from piptools.repositories import PyPIRepository

    repository = PyPIRepository(_pip_args(index), cache_dir=str(work))
    _mute_pip_logging()
    python = TargetPython(
        platforms=target.platforms(),
        py_version_info=target.python_version,
        abis=[target.interpreter, "abi3", "none"],
        implementation="cp",
    )
    # pip-tools builds its finder for the running interpreter; rebuild it for the target,
    # and make pip's resolver check Requires-Python against the target's version.
    repository._finder = repository.command._build_package_finder(
        options=repository.options, session=repository.session, target_python=python
    )
    if sources:
        repository._finder.format_control = _sources_for(set(sources))
    make_resolver = functools.partial(
        repository.command.make_resolver, py_version_info=target.python_version
    )

    def recorded(*args: Any, **kwargs: Any) -> Any:
        resolvers.append(resolver := make_resolver(*args, **kwargs))
        return resolver

    repository.command.make_resolver = recorded  # type: ignore[method-assign]
    return repository


def _resolve_one(
    requirements: Sequence[str],
    target: Target,
    index: IndexSettings,
    repository: Any,
    *,
    preferences: Mapping[str, str],
    resolvers: Sequence[Any],
    sources: set[str] | None,
    constraints: Sequence[str] = (),
) -> dict[str, Pin]:
    from pip._internal.exceptions import (
        DistributionNotFound,
        HashError,
        HashErrors,
        InstallationError,
        NetworkConnectionError,
        PipError,
    )
    from pip._internal.req.constructors import install_req_from_line
    from piptools.resolver import BacktrackingResolver

    with _target_environment(target):
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
        resolver = BacktrackingResolver(ireqs, existing, repository, allow_unsafe=True)
        try:
            result = resolver.resolve()
        except DistributionNotFound as exc:
            if sources is not None and (new := source_only(exc, index) - sources):
                raise _SourcesNeeded(new) from exc
            raise explain_not_found(exc, target, index, mislabelled(resolvers)) from exc
        except (HashError, HashErrors) as exc:
            # pip's first line speaks of a requirements file; the indented details name the file.
            details = "\n".join(line for line in str(exc).splitlines() if line[:1].isspace())
            raise IntegrityError(
                f"while locking for {target}, the index served bytes that do not match the "
                f"sha256 it publishes:\n{details}\nthe index or a proxy in between is corrupt "
                "or tampered with; nothing was written"
            ) from exc
        except NetworkConnectionError as exc:
            raise PackageIndexError(
                f"a package index failed while locking for {target}: {exc}; check the network, "
                "or pass --index-url/--find-links for an internal mirror"
            ) from exc
        except InstallationError as exc:
            if sources:  # preparing an sdist's metadata ran its backend, and it failed
                raise ResolutionError(
                    f"cannot prepare the metadata of the sdist of "
                    f"{', '.join(sorted(sources))} while locking for {target}: {exc}; lock "
                    "runs its build backend (in pip's isolated build environment, build "
                    "requirements from the index) to learn its dependencies: check that its "
                    "build requirements are on the index, or give a wheel with --find-links"
                ) from exc
            raise ResolutionError(f"cannot resolve for {target}: {exc}") from exc
        except PipError as exc:
            raise ResolutionError(f"cannot resolve for {target}: {exc}") from exc
        except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
            # Only an sdist pip prepares metadata from is unpacked while resolving.
            raise ResolutionError(
                f"cannot read the source distribution of {', '.join(sorted(sources or ()))} "
                f"while locking for {target} ({exc}); the index serves a broken sdist: "
                "require another version, or give a wheel with --find-links"
            ) from exc
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
