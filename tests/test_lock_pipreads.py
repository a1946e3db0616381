"""pip's per-link work spared while a lock resolves (``lock/pipreads.cheaper_links``).

Each shortcut must give pip's own answer: these tests ask pip's functions the
same questions inside and outside the patch.
"""

from __future__ import annotations

import pytest
from pip._internal.models import link as link_module
from pip._internal.models.link import Link
from pip._internal.resolution.resolvelib.factory import Factory
from pip._vendor.packaging import utils as packaging_utils
from pip._vendor.packaging.tags import InvalidTag

from photonpack.lock.pipreads import cheaper_links

URLS = (
    "https://files.pythonhosted.org/packages/ab/cd/ef/numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
    "http://mirror.example:8080/simple/pkg/pkg-1.0.tar.gz",
    "https://host/a b/pkg-1.0.tar.gz",  # a space: quoted
    "https://host/pkg-1.0+local-py3-none-any.whl",  # "+": quoted
    "https://host/already%20quoted/pkg-1.0.tar.gz",
    "https://host/pkg-1.0.tar.gz#sha256=abc",
    "https://user@host/pkg-1.0.tar.gz",
    "git+https://host/repo.git@v1.0#egg=pkg",
    "file:///tmp/a b/pkg-1.0.tar.gz",
    "HTTPS://host/pkg-1.0.tar.gz",
)


def test_cheaper_links_quote_urls_as_pip_does() -> None:
    expected = [link_module._ensure_quoted_url(url) for url in URLS]
    with cheaper_links():
        assert [link_module._ensure_quoted_url(url) for url in URLS] == expected


def test_cheaper_links_parse_wheel_tags_as_pip_does() -> None:
    names = ["x-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"] * 2
    expected = [packaging_utils.parse_wheel_filename(name) for name in names]
    with cheaper_links():
        assert [packaging_utils.parse_wheel_filename(name) for name in names] == expected
        for _ in range(2):  # not remembered as valid
            with pytest.raises(InvalidTag):
                packaging_utils.parse_tag("py3--any")  # type: ignore[attr-defined]


def test_cheaper_links_find_no_cached_wheel_for_a_wheel_link() -> None:
    asked: list[str] = []
    original = Factory.__dict__["get_wheel_cache_entry"]

    def recording(self: object, link: Link, name: str | None) -> None:
        asked.append(link.filename)

    Factory.get_wheel_cache_entry = recording  # type: ignore[method-assign]
    try:
        with cheaper_links():
            factory = object.__new__(Factory)
            wheel = Link("https://host/pkg-1.0-py3-none-any.whl")
            sdist = Link("https://host/pkg-1.0.tar.gz")
            assert factory.get_wheel_cache_entry(wheel, "pkg") is None
            assert factory.get_wheel_cache_entry(sdist, "pkg") is None
    finally:
        Factory.get_wheel_cache_entry = original  # type: ignore[method-assign]
    assert asked == ["pkg-1.0.tar.gz"]  # the sdist's link is still looked up


def test_cheaper_links_parse_a_candidates_version_as_pip_does() -> None:
    from pip._internal.models.candidate import InstallationCandidate
    from pip._vendor.packaging.version import InvalidVersion, Version

    link = Link("https://host/pkg-1.0-py3-none-any.whl")
    with cheaper_links():
        first, again = (InstallationCandidate("pkg", "1.0.0", link) for _ in range(2))
        assert first.version == Version("1.0.0") and str(again.version) == "1.0.0"
        for _ in range(2):
            with pytest.raises(InvalidVersion):
                InstallationCandidate("pkg", "not a version", link)


def test_cheaper_links_compute_the_interpreters_tags_once() -> None:
    from pip._internal.resolution.resolvelib import factory
    from pip._internal.utils.compatibility_tags import get_supported

    with cheaper_links():
        first = factory.get_supported()  # type: ignore[attr-defined]
        assert factory.get_supported() is first  # type: ignore[attr-defined]
        assert first == get_supported()
        assert factory.get_supported("311", ["linux_x86_64"]) == get_supported(  # type: ignore[attr-defined]
            "311", ["linux_x86_64"]
        )


def test_cheaper_links_are_undone_on_exit() -> None:
    from pip._internal.models import candidate as candidate_module
    from pip._internal.resolution.resolvelib import factory

    before = (
        factory.__dict__["get_supported"],
        candidate_module.__dict__["parse_version"],
        link_module.__dict__["_ensure_quoted_url"],
        packaging_utils.__dict__["parse_tag"],
        Factory.__dict__["get_wheel_cache_entry"],
    )
    with cheaper_links():
        pass
    after = (
        factory.__dict__["get_supported"],
        candidate_module.__dict__["parse_version"],
        link_module.__dict__["_ensure_quoted_url"],
        packaging_utils.__dict__["parse_tag"],
        Factory.__dict__["get_wheel_cache_entry"],
    )
    assert after == before
