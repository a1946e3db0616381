"""Why a resolution failed, said in one message: pip's DistributionNotFound explained.

The index is asked what it offers for the failing requirements, so the
message says which it is: an unknown package, no matching version, wheels
for other targets or Python versions only, a wheel whose METADATA contradicts
its file name, or genuinely conflicting requirements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from photonpack.errors import NoCompatibleWheelError, PackageIndexError, ResolutionError
from photonpack.lock.index import DistFile, IndexSettings, list_files, redact_url
from photonpack.lock.target import Target

__all__ = ["explain_not_found", "mislabelled", "parse_requirement", "source_only"]


def mislabelled(resolvers: Sequence[Any]) -> list[tuple[Any, Any]]:
    """(link, MetadataInconsistent) of every wheel pip discarded: METADATA and name differ."""
    from pip._internal.exceptions import MetadataInconsistent

    return [
        (link, error)
        for resolver in resolvers
        for link, error in resolver.factory._build_failures.items()
        if isinstance(error, MetadataInconsistent)
    ]


def _failing(exc: Exception) -> tuple[list[Any], list[Requirement | None]]:
    """The resolver's causes and the requirements that could not be met."""
    from pip._vendor.resolvelib.resolvers import ResolutionImpossible

    cause = exc.__cause__
    causes = list(cause.causes) if isinstance(cause, ResolutionImpossible) else []
    requirements = [parse_requirement(str(c.requirement)) for c in causes] or [
        _from_message(str(exc))
    ]
    return causes, requirements


def source_only(exc: Exception, index: IndexSettings) -> set[str]:
    """The failing projects whose newest matching release publishes an sdist and no wheel at all.

    Those are locked from their sdist. A release with wheels for other targets
    only is not among them: it is compiled, and the error says which tags exist.
    """
    _, requirements = _failing(exc)
    wanted = [r for r in requirements if r is not None]
    files = list_files([r.name for r in wanted], index)
    found: set[str] = set()
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        matching = [
            (v, f)
            for f in files[name]
            if (v := f.version()) and requirement.specifier.contains(v, True) and not f.yanked
        ]
        if not matching:
            continue
        latest = max((v for v, _ in matching), key=_version_key)
        release = [f for v, f in matching if _version_key(v) == _version_key(latest)]
        if not any(f.is_wheel for f in release) and any(_is_sdist(f) for f in release):
            found.add(name)
    return found


def _is_sdist(file: DistFile) -> bool:
    return file.filename.endswith((".tar.gz", ".zip"))


def explain_not_found(
    exc: Exception, target: Target, index: IndexSettings, mislabelled: Sequence[tuple[Any, Any]]
) -> Exception:
    causes, requirements = _failing(exc)
    names = sorted({canonicalize_name(r.name) for r in requirements if r is not None})
    files = list_files(names, index)
    for requirement in requirements:
        if requirement is None:
            continue
        problem = _missing_wheel(requirement, files[canonicalize_name(requirement.name)], target)
        if problem is not None:
            return problem
    for link, error in mislabelled:
        if canonicalize_name(error.ireq.name or "") in names:
            return PackageIndexError(
                f"{link.filename} on the index is mislabelled: its file name gives "
                f"{error.field} {error.f_val!r}, but the wheel's METADATA says {error.m_val!r}; "
                f"it was not used ({redact_url(link.url_without_fragment)}): have the index "
                "fix or remove it, or require a version whose wheels agree"
            )
    if causes:
        lines = [_conflict_line(c) for c in causes]
        return ResolutionError(
            f"conflicting requirements for {target}:\n  " + "\n  ".join(lines) + "\n"
            "loosen one of these requirements, or pin a version that satisfies all of them"
        )
    return ResolutionError(f"cannot resolve for {target}: {exc}")


def parse_requirement(text: str) -> Requirement | None:
    try:
        return Requirement(text)
    except InvalidRequirement:
        return None


def _from_message(message: str) -> Requirement | None:
    marker = "No matching distribution found for "
    return parse_requirement(message.partition(marker)[2].strip()) if marker in message else None


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
