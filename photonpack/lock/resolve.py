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

This module imports pip; ``photonpack.lock.lockfile`` imports it only when it must
resolve, so an up-to-date ``photonpack lock`` never pays for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from photonpack.errors import (
    IntegrityError,
    NoCompatibleWheelError,
    PackageIndexError,
    ResolutionError,
)
from photonpack.lock.index import DistFile, IndexSettings, list_files, redact_url
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
) -> Resolution:
    """Resolve ``requirements`` for each target; earlier targets' pins are preferred later.

    ``preferences`` (name -> version) are kept when still compatible, like
    the existing pins of ``pip-compile``.
    """
    pins: dict[Target, dict[str, Pin]] = {}
    files: dict[Target, dict[str, list[DistFile]]] = {}
    sizes: dict[tuple[str, str], int] = {}
    preferred = dict(preferences)
    with (
        _isolated_pip(),
        _quiet(),
        _recording_sizes(sizes),
        tempfile.TemporaryDirectory(prefix="photonpack-resolve-") as work,
    ):
        for target in targets:
            repository = _repository(target, index, Path(work))
            pins[target] = _resolve_one(requirements, target, index, repository, preferred)
            files[target] = {
                name: _offered(repository, name, sizes)
                for name, pin in pins[target].items()
                if pin.url is None
            }
            for name, pin in pins[target].items():
                preferred.setdefault(name, pin.version)
    return Resolution(pins=pins, files=files)


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


@contextlib.contextmanager
def _recording_sizes(sizes: dict[tuple[str, str], int]) -> Iterator[None]:
    """Keep the PEP 700 ``size`` of every file pip parses from a JSON page.

    pip's ``Link`` drops the size; without this, every wheel's size would cost a
    second fetch of its project page. Scoped like :func:`_target_environment`.
    """
    from pip._internal.models.link import Link

    original = Link.__dict__["from_json"]

    def from_json(cls: type[Any], file_data: dict[str, Any], page_url: str) -> Any:
        size = file_data.get("size")
        if isinstance(size, int):
            # Keyed by what the page says, not by Link properties: this runs for every file
            # of every release, so it must cost next to nothing.
            sha256 = (file_data.get("hashes") or {}).get("sha256") or ""
            sizes[(str(file_data.get("filename")), sha256)] = size
        return original.__func__(cls, file_data, page_url)

    Link.from_json = classmethod(from_json)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Link.from_json = original  # type: ignore[method-assign]


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
    # One attempt and a bounded wait: an unreachable mirror is reported, not retried for minutes.
    return [*args, "--retries", "0", "--timeout", "30"]


def _repository(target: Target, index: IndexSettings, work: Path) -> Any:
    """A pip-tools repository whose finder and resolver see ``target``, not this interpreter."""
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
    repository.command.make_resolver = functools.partial(  # type: ignore[method-assign]
        repository.command.make_resolver, py_version_info=target.python_version
    )
    return repository


def _resolve_one(
    requirements: Sequence[str],
    target: Target,
    index: IndexSettings,
    repository: Any,
    preferences: Mapping[str, str],
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
            raise _explain_not_found(exc, target, index) from exc
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
        except PipError as exc:
            raise ResolutionError(f"cannot resolve for {target}: {exc}") from exc
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


def _explain_not_found(exc: Exception, target: Target, index: IndexSettings) -> Exception:
    from pip._vendor.resolvelib.resolvers import ResolutionImpossible

    cause = exc.__cause__
    causes = list(cause.causes) if isinstance(cause, ResolutionImpossible) else []
    requirements = [_parse(str(c.requirement)) for c in causes] or [_from_message(str(exc))]
    names = sorted({r.name for r in requirements if r is not None})
    files = list_files(names, index)
    for requirement in requirements:
        if requirement is None:
            continue
        problem = _missing_wheel(requirement, files[canonicalize_name(requirement.name)], target)
        if problem is not None:
            return problem
    if causes:
        lines = [_conflict_line(c) for c in causes]
        return ResolutionError(
            f"conflicting requirements for {target}:\n  " + "\n  ".join(lines) + "\n"
            "loosen one of these requirements, or pin a version that satisfies all of them"
        )
    return ResolutionError(f"cannot resolve for {target}: {exc}")


def _parse(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _from_message(message: str) -> Requirement | None:
    marker = "No matching distribution found for "
    return _parse(message.partition(marker)[2].strip()) if marker in message else None


def _conflict_line(cause: Any) -> str:
    parent = cause.parent
    who = "the photon" if parent is None else f"{parent.name} {parent.version}"
    return f"{who} requires {cause.requirement.format_for_error()}"


def _missing_wheel(
    requirement: Requirement, files: list[DistFile], target: Target
) -> Exception | None:
    name = canonicalize_name(requirement.name)
    if not files:
        return ResolutionError(
            f"unknown package {requirement.name!r}: no index or find-links location offers it; "
            "check the spelling, or pass --index-url/--find-links for a private package"
        )
    matching = [f for f in files if (v := f.version()) and requirement.specifier.contains(v, True)]
    if not matching:
        versions = sorted({v for f in files if (v := f.version())}, key=_version_key)
        return ResolutionError(
            f"no version of {name} matches {requirement}: available {', '.join(versions)}"
        )
    usable = [f for f in matching if f.is_wheel and target.supports(f.filename)]
    python = "{}.{}".format(*target.python_version)
    if any(_runs_on(f, python) for f in usable):
        return None
    if usable:
        needs = sorted({str(f.requires_python) for f in usable})
        return NoCompatibleWheelError(
            f"every wheel of {requirement} for {target} needs Python {' or '.join(needs)}, "
            f"but the target has Python {python}; require a version of {name} that "
            "supports it, or lock for another interpreter"
        )
    latest = max((v for f in matching if (v := f.version())), key=_version_key)
    wheels = sorted(f.filename for f in matching if f.is_wheel and f.version() == latest)
    if not wheels:
        return NoCompatibleWheelError(
            f"{name} {latest} has only a source distribution, no wheel for {target}; "
            "photonpack locks wheels only: build a wheel (pip wheel) and add its directory "
            "with --find-links, or require a version that publishes wheels"
        )
    tags = sorted({filename.removesuffix(".whl").split("-", 2)[2] for filename in wheels})
    return NoCompatibleWheelError(
        f"{name} {latest} has no wheel for target {target}; its wheels are tagged "
        f"{', '.join(tags)}; pick a target those wheels support, or require another version"
    )


def _runs_on(file: DistFile, python: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return file.requires_python is None or SpecifierSet(file.requires_python).contains(
            python, prereleases=True
        )
    except InvalidSpecifier:
        return True


def _version_key(text: str) -> Any:
    from packaging.version import Version

    return Version(text)
