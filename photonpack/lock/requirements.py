"""A photon's requirement lines, with the files they include, as one set a lock is made from.

``-r FILE`` and ``-c FILE`` are read recursively (a cycle is refused), each
path relative to the file that names it, the photon's directory for
``requirement_dependency``; so are local paths in those files (``./mylib``,
``-f ./wheels``). The option lines become index settings, ``uninstall`` lines
exclusions, and ``--hash`` stays with its requirement, checked against the
lock (:func:`check_hashes`). The set's content, not the lines naming the
files, is what a lock's inputs record: editing an included file makes the
lock stale.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from photonpack.errors import IntegrityError, ResolutionError
from photonpack.lock.forms import (
    FormError,
    Include,
    IndexOption,
    Requirement,
    Uninstall,
    parse_line,
)
from photonpack.lock.index import PYPI, IndexSettings
from photonpack.lock.pylock import Lock
from photonpack.sources.form import ArchiveSource, DirectorySource, SourceForm, VcsSource

if TYPE_CHECKING:
    from photonpack.lock.resolve import Resolution

__all__ = [
    "RequirementSet",
    "check_hashes",
    "check_sources",
    "read_requirements",
    "resolver_lines",
    "without_exclusions",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RequirementSet:
    """Everything a photon's lines (and the files they include) ask of a lock."""

    requirements: tuple[Requirement, ...] = ()
    sources: tuple[SourceForm, ...] = ()
    constraints: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()  # canonical names, sorted
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    pre: bool = False

    def index(self, given: IndexSettings) -> IndexSettings:
        """``given`` (the command line's) with these option lines added.

        The command line's ``--index-url`` wins over a photon's ``-i``: a site's
        mirror must not be overridden by the URL a photon was written with. Extra
        indexes and find-links add up, and ``--pre`` from either side holds.
        """
        index_url = given.index_url
        if self.index_url is not None and given.index_url == PYPI:
            index_url = self.index_url
        return dataclasses.replace(
            given,
            index_url=index_url,
            extra_index_urls=tuple(
                dict.fromkeys((*given.extra_index_urls, *self.extra_index_urls))
            ),
            find_links=tuple(dict.fromkeys((*given.find_links, *self.find_links))),
            pre=given.pre or self.pre,
        )


class _Reader:
    def __init__(self, photon: str) -> None:
        self.photon = photon
        self.requirements: list[Requirement] = []
        self.sources: list[SourceForm] = []
        self.constraints: list[str] = []
        self.exclusions: set[str] = set()
        self.index: dict[str, list[str]] = {
            "--index-url": [],
            "--extra-index-url": [],
            "--find-links": [],
        }
        self.pre = False

    def where(self, line: str, origin: tuple[Path, int] | None) -> str:
        if origin is None:
            return f"requirement_dependency line {line.strip()!r} of {self.photon}"
        return f"line {origin[1]} of {origin[0]} ({line.strip()!r}, included by {self.photon})"

    def read(
        self,
        lines: Sequence[tuple[str, tuple[Path, int] | None]],
        directory: Path,
        base_dir: Path,
        stack: tuple[Path, ...],
        *,
        constraints: bool,
    ) -> None:
        for line, origin in lines:
            where = self.where(line, origin)
            try:
                form = parse_line(line)
            except FormError as exc:
                raise ResolutionError(f"{where} {exc}") from None
            if form is None:
                continue
            if isinstance(form, Include):
                self.include(form, directory, base_dir, stack, where)
            elif constraints and not (
                isinstance(form, Requirement) and form.name and not form.hashes
            ):
                raise ResolutionError(
                    f"{where} is not a constraint: a constraints file (-c) holds only "
                    "`name specifier` lines; move it to requirement_dependency or a -r file"
                )
            elif constraints:
                assert isinstance(form, Requirement)
                self.constraints.append(form.text)
            else:
                self.add(form, directory, base_dir)

    def add(self, form: object, directory: Path, base_dir: Path) -> None:
        if isinstance(form, Requirement):
            self.requirements.append(form)
        elif isinstance(form, Uninstall):
            self.exclusions.update(form.names)
        elif isinstance(form, IndexOption):
            if form.option == "--pre":
                self.pre = True
            else:
                value = form.value
                if form.option == "--find-links" and "://" not in value:
                    value = str((directory / value).resolve())
                self.index[form.option].append(value)
        else:
            source = _rebased(form, directory, base_dir)  # type: ignore[arg-type]
            self.sources.append(source)

    def include(
        self, form: Include, directory: Path, base_dir: Path, stack: tuple[Path, ...], where: str
    ) -> None:
        path = (directory / form.path).resolve()
        if path in stack:
            chain = " -> ".join(str(p) for p in (*stack, path))
            raise ResolutionError(
                f"{where} includes a file that includes it again ({chain}); remove the cycle"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8"
            raise ResolutionError(
                f"{where} names {path}, which cannot be read ({reason}); -r and -c paths are "
                "relative to the file naming them (the photon's directory for "
                "requirement_dependency)"
            ) from None
        lines = [(line, (path, number)) for number, line in _logical_lines(text)]
        self.read(lines, path.parent, base_dir, (*stack, path), constraints=form.option == "-c")

    def result(self) -> RequirementSet:
        required = {r.name for r in self.requirements if r.name} | {
            canonicalize_name(s.name) for s in self.sources if s.name
        }
        both = sorted(required & self.exclusions)
        if both:
            raise ResolutionError(
                f"{self.photon} both requires and uninstalls {', '.join(both)}; an uninstall "
                "line keeps a package that something else pulls in out of the environment: "
                "remove one of the two lines"
            )
        if len(set(self.index["--index-url"])) > 1:
            urls = ", ".join(dict.fromkeys(self.index["--index-url"]))
            raise ResolutionError(
                f"{self.photon} names several index URLs ({urls}); keep one -i and make the "
                "others --extra-index-url"
            )
        return RequirementSet(
            requirements=tuple(dict.fromkeys(self.requirements)),
            sources=tuple(dict.fromkeys(self.sources)),
            constraints=tuple(dict.fromkeys(self.constraints)),
            exclusions=tuple(sorted(self.exclusions)),
            index_url=self.index["--index-url"][0] if self.index["--index-url"] else None,
            extra_index_urls=tuple(dict.fromkeys(self.index["--extra-index-url"])),
            find_links=tuple(dict.fromkeys(self.index["--find-links"])),
            pre=self.pre,
        )


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines joined across a trailing backslash, each with the number of its first line."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        start, head = pending if pending is not None else (number, "")
        if line.endswith("\\"):
            pending = (start, head + line[:-1])
            continue
        pending = None
        joined.append((start, head + line))
    if pending is not None:
        joined.append(pending)
    return joined


def _rebased(form: SourceForm, directory: Path, base_dir: Path) -> SourceForm:
    """A local path of an included file, made relative to the photon's directory."""
    if directory == base_dir:
        return form
    if isinstance(form, DirectorySource) and not Path(form.path).is_absolute():
        return dataclasses.replace(form, path=_relative(directory / form.path, base_dir))
    local = isinstance(form, ArchiveSource) and "://" not in form.url
    if isinstance(form, ArchiveSource) and local and not Path(form.url).is_absolute():
        return dataclasses.replace(form, url=_relative(directory / form.url, base_dir))
    return form


def _relative(path: Path, base_dir: Path) -> str:
    return Path(os.path.relpath(path, base_dir)).as_posix()


def check_sources(wanted: RequirementSet, base_dir: Path, *, photon: str) -> None:
    """Raise before anything is fetched or built for what a source line gets wrong.

    A local path that is not a Python project, a version control system other than git.
    """
    for source in wanted.sources:
        if isinstance(source, DirectorySource):
            from photonpack.sources.tree import check_project  # tarfile: for local projects

            check_project(base_dir / Path(source.path).expanduser(), written=source.path)
        if isinstance(source, VcsSource) and source.vcs != "git":
            raise ResolutionError(
                f"requirement_dependency line {str(source)!r} of {photon} is a {source.vcs} "
                "requirement; photonpack fetches git repositories only: use a git mirror of "
                "it, or a wheel and --find-links"
            )


def read_requirements(lines: Sequence[str], base_dir: Path, *, photon: str) -> RequirementSet:
    """The set ``lines`` (a photon's ``requirement_dependency``) and their includes ask for."""
    reader = _Reader(photon)
    base = base_dir.resolve()
    reader.read([(line, None) for line in lines], base, base, (), constraints=False)
    return reader.result()


def without_exclusions(resolution: Resolution, exclusions: Sequence[str]) -> Resolution:
    """``resolution`` without the packages ``uninstall`` lines keep out (their own needs stay)."""
    if not exclusions:
        return resolution
    pins = {
        target: {name: pin for name, pin in per.items() if name not in exclusions}
        for target, per in resolution.pins.items()
    }
    return dataclasses.replace(resolution, pins=pins)


def resolver_lines(requirements: Sequence[str]) -> list[str]:
    """The lock's recorded requirement lines as the resolver reads them (``--hash`` apart).

    Source lines are left out: the resolver gets their pinned archives instead.
    """
    return [_requirement(line).text for line in requirements if not _is_source(line)]


def _is_source(line: str) -> bool:
    return not isinstance(parse_line(line), Requirement)


def _requirement(line: str) -> Requirement:
    form = parse_line(line)
    assert isinstance(form, Requirement), f"not a requirement line: {line!r}"
    return form


def check_hashes(lock: Lock) -> None:
    """Raise :class:`IntegrityError` unless each ``--hash`` requirement's locked files match one."""
    for line in lock.inputs.requirements:
        if _is_source(line):
            continue
        requirement = _requirement(line)
        if not requirement.hashes:
            continue
        for package in lock.packages:
            if package.name != requirement.name:
                continue
            for wheel in package.wheels:
                if wheel.sha256 not in requirement.hashes:
                    allowed = ", ".join(f"sha256:{h}" for h in requirement.hashes)
                    raise IntegrityError(
                        f"requirement {requirement.text!r} allows --hash={allowed}, but the "
                        f"index's {wheel.filename} has sha256:{wheel.sha256}; nothing was "
                        "written: check the file, and correct the --hash if it is the right one"
                    )
