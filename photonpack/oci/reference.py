"""Registry references: ``host[:port]/repository[:tag][@sha256:<hex>]``.

The grammar is the OCI distribution spec's (lowercase path components, tags of
up to 128 characters, sha256 digests). Unlike Docker there is no default
registry: the host always comes first, so a reference never silently means
Docker Hub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from photonpack._digest import Digest
from photonpack.errors import RegistryError

__all__ = ["Reference", "parse_reference", "parse_repository"]

_REPO_RE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, kw_only=True)
class Reference:
    """``registry/repository[:tag][@sha256:...]``; without both, the tag is ``latest``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes in ``/v2/<repo>/manifests/<reference>``: the digest if any, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split_registry(text: str) -> tuple[str, str]:
    registry, sep, rest = text.partition("/")
    looks_like_host = "." in registry or ":" in registry or registry == "localhost"
    if not sep or not rest or not looks_like_host:
        raise RegistryError(
            f"expected a reference like localhost:5000/team/counter:v1, found {text!r}: "
            "name the registry host first"
        )
    return registry, rest


def _check_repository(repository: str, text: str) -> None:
    if not _REPO_RE.match(repository):
        raise RegistryError(
            f"invalid repository {repository!r} in {text!r}: use lowercase letters, digits "
            "and separators (. _ -), with / between path components"
        )


def parse_reference(text: str) -> Reference:
    """Parse ``host[:port]/repo[:tag][@sha256:<hex>]``; raise RegistryError otherwise."""
    registry, rest = _split_registry(text)
    digest: str | None = None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _is_digest(digest):
            raise RegistryError(
                f"invalid digest {digest!r} in {text!r}: expected sha256: and 64 hex digits"
            )
    repository, tag = rest, None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = rest.rpartition(":")
        if not _TAG_RE.match(tag):
            raise RegistryError(
                f"invalid tag {tag!r} in {text!r}: up to 128 letters, digits, . _ -"
            )
    _check_repository(repository, text)
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry=registry, repository=repository, tag=tag, digest=digest)


def parse_repository(text: str) -> tuple[str, str]:
    """Parse ``host[:port]/repo`` (no tag, no digest) into (registry, repository)."""
    registry, repository = _split_registry(text)
    if "@" in repository or ":" in repository.rsplit("/", 1)[-1]:
        raise RegistryError(
            f"expected a repository like localhost:5000/team/counter, found {text!r}: "
            "drop the tag or digest"
        )
    _check_repository(repository, text)
    return registry, repository


def _is_digest(text: str) -> bool:
    try:
        Digest(text)
    except ValueError:
        return False
    return True
