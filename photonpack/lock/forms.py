"""One ``requirement_dependency`` line, read as pip reads it, into a structured form.

A line is one of (pip's requirements-file syntax, plus Lepton's ``uninstall``):

- a :class:`Requirement`: PEP 508 (``numpy>=1.26; python_version < "3.13"``),
  or a wheel by URL or path, with ``--hash=sha256:...`` options when given;
- a source (:mod:`photonpack.sources.form`): ``name @ git+https://host/repo@rev``
  or bare ``git+https://host/repo@rev#egg=name`` (``#subdirectory=`` too); an
  archive ``name @ https://host/x-1.0.tar.gz`` (or ``.zip``, or a local
  path); a local project ``./mylib``, editable with ``-e ./mylib``;
- an :class:`IndexOption`: ``-i/--index-url``, ``--extra-index-url``,
  ``-f/--find-links``, ``--pre``;
- an :class:`Include`: ``-r other.txt`` (requirements) or ``-c constraints.txt``;
- an :class:`Uninstall`: Lepton's ``uninstall X``, X kept out of the environment.

:func:`parse_line` does no I/O: a malformed line, or an option photonpack does
not read, raises :class:`FormError` with the reason and what to do. Reading
included files, and what the whole set means for a lock, is
:mod:`photonpack.lock.requirements`.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Literal

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as Pep508
from packaging.utils import canonicalize_name

from photonpack.sources.form import (
    ARCHIVE_SUFFIXES,
    ArchiveSource,
    DirectorySource,
    SourceForm,
    VcsSource,
)

__all__ = [
    "Form",
    "FormError",
    "Include",
    "IndexOption",
    "Requirement",
    "Uninstall",
    "parse_line",
    "strip_comment",
]

_VCS_SCHEMES = ("git", "hg", "svn", "bzr")
_GIT_TRANSPORTS = ("https", "http", "ssh", "git", "file")
_PATH = re.compile(r"^(\.{1,2}/|/|~|\.{1,2}$)")
_COMMENT = re.compile(r"(^|\s+)#.*$")
_HASH = re.compile(r"sha256:([0-9a-fA-F]{64})")
_EXTRAS = re.compile(r"^(?P<path>.*?)(?:\[(?P<extras>[^\]]*)\])?$")
_INDEX_OPTIONS = {
    "-i": "--index-url",
    "--index-url": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "-f": "--find-links",
    "--find-links": "--find-links",
    "--pre": "--pre",
}
_INCLUDES = {"-r": "-r", "--requirement": "-r", "-c": "-c", "--constraint": "-c"}
_EDITABLE = ("-e", "--editable")
_READ = "-r, -c, -e, -i/--index-url, --extra-index-url, -f/--find-links, --pre and --hash"
# What to do instead of the pip options photonpack does not read.
_INSTEAD = {
    "--no-index": "lock with --find-links and no index, or drop it",
    "--trusted-host": "photonpack reaches http:// indexes as they are: drop it",
    "--no-binary": "photonpack takes a package's wheel when the index has one: drop it",
    "--only-binary": "photonpack takes a package's wheel when the index has one: drop it",
    "--prefer-binary": "photonpack takes a package's wheel when the index has one: drop it",
    "--use-feature": "drop it",
}


class FormError(ValueError):
    """A line photonpack cannot read: the reason and what to do (without the line itself)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Requirement:
    """A requirement the resolver reads as written: PEP 508, or a wheel by URL or path."""

    text: str
    hashes: tuple[str, ...] = ()  # sha256 hex digits from ``--hash=sha256:...``, sorted

    @property
    def name(self) -> str | None:
        """The canonical project name, or None for a wheel given by path."""
        try:
            return canonicalize_name(Pep508(self.text).name)
        except InvalidRequirement:
            return None

    def __str__(self) -> str:
        return " ".join([self.text, *(f"--hash=sha256:{h}" for h in self.hashes)])


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexOption:
    """``--index-url URL``, ``--extra-index-url URL``, ``--find-links LOCATION`` or ``--pre``."""

    option: Literal["--index-url", "--extra-index-url", "--find-links", "--pre"]
    value: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Include:
    """``-r FILE`` (more requirements) or ``-c FILE`` (constraints), relative to the includer."""

    option: Literal["-r", "-c"]
    path: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Uninstall:
    """Lepton's ``uninstall X Y``: these projects are kept out of the environment."""

    names: tuple[str, ...]  # canonical


Form = Requirement | SourceForm | IndexOption | Include | Uninstall


def strip_comment(line: str) -> str:
    """``line`` without a ``#`` comment (one at the start or after whitespace, as pip reads)."""
    return _COMMENT.sub("", line).strip()


def parse_line(line: str) -> Form | None:
    """The form of one line, None for a blank or comment line; :class:`FormError` if refused."""
    text = strip_comment(line)
    if not text:
        return None
    first, _, rest = text.partition(" ")
    rest = rest.strip()
    if first.startswith("-") and not first.startswith("--hash"):
        return _option(first, rest)
    if first == "uninstall":
        return _uninstall(rest)
    requirement, hashes = _split_hashes(text)
    form = _requirement(requirement)
    if hashes and not isinstance(form, Requirement):
        raise FormError(
            "carries --hash, which applies to a package from an index; pin an archive with "
            "#sha256= in its URL, a git requirement with a commit id"
        )
    return dataclasses.replace(form, hashes=hashes) if isinstance(form, Requirement) else form


def _option(first: str, rest: str) -> Form:
    option, equals, inline = first.partition("=") if first.startswith("--") else (first, "", "")
    value = inline if equals else rest
    if option in _EDITABLE:
        return _editable(value)
    if option in _INDEX_OPTIONS:
        canonical = _INDEX_OPTIONS[option]
        if canonical == "--pre":
            if value:
                raise FormError("is --pre with a value; --pre takes none")
            return IndexOption(option="--pre")
        if not value or " " in value:
            raise FormError(f"needs one location after {option}")
        return IndexOption(option=canonical, value=value)  # type: ignore[arg-type]
    if option in _INCLUDES:
        if not value:
            raise FormError(f"needs a file after {option}")
        return Include(option=_INCLUDES[option], path=value)  # type: ignore[arg-type]
    instead = _INSTEAD.get(option, f"photonpack reads {_READ}")
    raise FormError(f"is pip's option {option}, which photonpack does not read; {instead}")


def _editable(value: str) -> Form:
    form = _requirement(value) if value else None
    if isinstance(form, DirectorySource):
        return dataclasses.replace(form, editable=True)
    if isinstance(form, VcsSource):
        return form  # an editable checkout is a development convenience: locked as its commit
    raise FormError("is -e without a local project directory or git URL; -e takes one of those")


def _uninstall(rest: str) -> Uninstall:
    names = rest.split()
    if not names or any(not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n) for n in names):
        raise FormError("is an uninstall line without project names; write uninstall NAME ...")
    return Uninstall(names=tuple(canonicalize_name(n) for n in names))


def _split_hashes(text: str) -> tuple[str, tuple[str, ...]]:
    requirement, *options = re.split(r"\s+(?=--)", text)
    hashes = []
    for option in options:
        name, _, value = option.partition("=")
        if name != "--hash":
            raise FormError(
                f"carries {name}, which photonpack does not read; the per-requirement option "
                "it reads is --hash=sha256:<64 hex digits>"
            )
        for item in value.split(","):  # pip also reads --hash=sha256:a,sha256:b
            match = _HASH.fullmatch(item.strip())
            if match is None:
                raise FormError(
                    f"carries --hash={value}, which is not sha256:<64 hex digits>; photonpack "
                    "checks sha256 hashes (the one the lock records)"
                )
            hashes.append(match.group(1).lower())
    return requirement.strip(), tuple(sorted(set(hashes)))


def _requirement(text: str) -> Requirement | SourceForm:
    if _PATH.match(text):
        return _local(text)
    scheme = text.partition("+")[0].lower()
    if scheme in _VCS_SCHEMES and "+" in text.split("://", 1)[0]:
        return _vcs(text, name=None, extras=(), marker=None)
    if "://" in text.split(" ", 1)[0] and not re.match(r"^[A-Za-z0-9._-]+\s*(\[|@)", text):
        return _url(text, name=None, extras=(), marker=None)
    try:
        parsed = Pep508(text)
    except InvalidRequirement as exc:
        reason = str(exc).splitlines()[0]  # packaging adds the line and a caret below
        raise FormError(f"is not a requirement pip reads: {reason}; fix its spelling") from None
    if parsed.url is None:
        return Requirement(text=text)
    extras = tuple(sorted(parsed.extras))
    marker = str(parsed.marker) if parsed.marker else None
    head = parsed.url.partition("+")[0].lower()
    if head in _VCS_SCHEMES and "+" in parsed.url.split("://", 1)[0]:
        return _vcs(parsed.url, name=parsed.name, extras=extras, marker=marker)
    return _url(parsed.url, name=parsed.name, extras=extras, marker=marker, text=text)


def _local(text: str) -> Requirement | SourceForm:
    """``./mylib``, ``./mylib[extra] ; marker``, ``../x-1.0.tar.gz``, ``./wheels/x.whl``."""
    located, _, marker_text = text.partition(";")
    marker = _marker(marker_text) if marker_text.strip() else None
    path, _, fragment = located.strip().partition("#")
    match = _EXTRAS.fullmatch(path.strip())
    assert match is not None  # the pattern matches any string
    where, extras = match.group("path"), _extras(match.group("extras"))
    if where.endswith(".whl"):
        return Requirement(text=text)
    name = _fragment(fragment).get("egg")
    if where.endswith(ARCHIVE_SUFFIXES):
        sha256, subdirectory = _archive_fields(fragment)
        return ArchiveSource(
            url=where, name=name, extras=extras, marker=marker, sha256=sha256,
            subdirectory=subdirectory,
        )  # fmt: skip
    return DirectorySource(path=where, name=name, extras=extras, marker=marker)


def _marker(text: str) -> str:
    from packaging.markers import InvalidMarker, Marker

    try:
        return str(Marker(text.strip()))
    except InvalidMarker as exc:
        reason = str(exc).splitlines()[0]
        raise FormError(f"has a marker pip cannot read: {reason}; fix its spelling") from None


def _extras(text: str | None) -> tuple[str, ...]:
    return tuple(sorted(e.strip() for e in text.split(",") if e.strip())) if text else ()


def _fragment(fragment: str) -> dict[str, str]:
    fields = urllib.parse.parse_qs(fragment, keep_blank_values=True)
    return {key: values[-1] for key, values in fields.items()}


def _archive_fields(fragment: str) -> tuple[str | None, str | None]:
    """The ``#sha256=`` (lowercased) and ``#subdirectory=`` of an archive URL."""
    fields = _fragment(fragment)
    sha256 = fields.get("sha256")
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise FormError(f"has #sha256={sha256}, which is not 64 hex digits")
    return (sha256.lower() if sha256 else None), (fields.get("subdirectory") or None)


def _url(
    url: str,
    *,
    name: str | None,
    extras: tuple[str, ...],
    marker: str | None,
    text: str | None = None,
) -> Requirement | SourceForm:
    bare, _, fragment = url.partition("#")
    parts = urllib.parse.urlsplit(bare)
    if parts.scheme not in ("http", "https", "file"):
        raise FormError(
            f"is a URL with the scheme {parts.scheme}://, which photonpack does not fetch; "
            "use an http://, https:// or file:// URL"
        )
    filename = urllib.parse.unquote(parts.path.rpartition("/")[2])
    if filename.endswith(".whl"):
        return Requirement(text=text or url)
    name = name or _fragment(fragment).get("egg")
    if filename.endswith(ARCHIVE_SUFFIXES):
        sha256, subdir = _archive_fields(fragment)
        return ArchiveSource(
            url=bare, name=name, extras=extras, marker=marker, sha256=sha256, subdirectory=subdir
        )
    if parts.scheme == "file":
        path = urllib.parse.unquote(parts.path)
        return DirectorySource(path=path, name=name, extras=extras, marker=marker)
    raise FormError(
        "is a URL that names neither a wheel nor a source archive (.tar.gz, .zip); point it "
        "at one of those, or use git+ for a repository"
    )


def _vcs(text: str, *, name: str | None, extras: tuple[str, ...], marker: str | None) -> VcsSource:
    vcs, _, rest = text.partition("+")
    vcs = vcs.lower()
    url, _, fragment = rest.partition("#")
    parts = urllib.parse.urlsplit(url)
    if vcs == "git" and parts.scheme not in _GIT_TRANSPORTS:
        raise FormError(
            f"is a git URL with the transport {parts.scheme or 'none'}; write "
            "git+https://host/repo, git+ssh://git@host/repo or git+file:///path"
        )
    path, at, rev = parts.path.rpartition("@") if "@" in parts.path else (parts.path, "", "")
    if at and not rev:
        raise FormError("ends its URL with @ and no branch, tag or commit; name one after @")
    fields = _fragment(fragment)
    egg = fields.get("egg")
    if name is not None and egg is not None and canonicalize_name(egg) != canonicalize_name(name):
        raise FormError(f"names the project {name} and #egg={egg}; keep one name")
    return VcsSource(
        vcs=vcs,
        url=urllib.parse.urlunsplit(parts._replace(path=path)),
        rev=rev or None,
        subdirectory=fields.get("subdirectory") or None,
        name=name or egg,
        extras=extras,
        marker=marker,
    )
