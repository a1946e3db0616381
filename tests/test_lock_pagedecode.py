"""Big index pages decoded by a helper process (``lock/pagedecode.py``).

The helper is the real one (this Python, this photonpack); what it keeps must be
what each target's finder would be shown, in the page's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from photonpack.lock.pagedecode import PageDecoder, kept_files

X86 = frozenset({"cp311-cp311-manylinux_2_28_x86_64", "py3-none-any"})
FILES = [
    {"filename": "pkg-1.0.tar.gz", "url": "https://h/pkg-1.0.tar.gz", "size": 10},
    {"filename": "pkg-1.0-cp311-cp311-manylinux_2_28_aarch64.whl", "url": "https://h/a.whl"},
    {"filename": "pkg-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", "url": "https://h/x.whl"},
    {"filename": "pkg-1.0-py2.py3-none-any.whl", "url": "https://h/p.whl", "yanked": "bad"},
    {"filename": "pkg-bad.whl", "url": "https://h/bad.whl"},  # no wheel name: pip reports it
    {"filename": "pkg-1.0-cp311-cp311-win_amd64.whl", "url": "https://h/w.whl"},
]
PAGE = json.dumps({"meta": {"api-version": "1.1"}, "name": "pkg", "files": FILES}).encode()


@pytest.fixture
def decoder() -> Iterator[PageDecoder]:
    decoder = PageDecoder()
    decoder.start(wait=True)  # else the first pages are decoded here, while it starts
    yield decoder
    decoder.close()


def test_kept_files_are_what_a_target_may_install_in_page_order() -> None:
    assert kept_files(PAGE, X86) == [FILES[0], FILES[2], FILES[3], FILES[4]]


def test_the_helper_keeps_the_same_files(decoder: PageDecoder) -> None:
    assert decoder.files(PAGE, X86) == kept_files(PAGE, X86)
    aarch64 = frozenset({"cp311-cp311-manylinux_2_28_aarch64"})
    assert decoder.files(PAGE, aarch64) == [FILES[0], FILES[1], FILES[4]]


def test_a_page_the_helper_cannot_decode_is_left_to_this_process(decoder: PageDecoder) -> None:
    assert decoder.files(b"<html>not json</html>", X86) is None
    assert decoder.files(b'{"files": [1]}', X86) is None
    assert decoder.files(PAGE, X86) == kept_files(PAGE, X86)  # still answering


def test_a_helper_still_starting_leaves_the_page_to_this_process() -> None:
    decoder = PageDecoder()
    try:
        decoder.start()
        answers = [decoder.files(PAGE, X86) for _ in range(2)]  # maybe ready by then
        decoder.start(wait=True)
        answers.append(decoder.files(PAGE, X86))
    finally:
        decoder.close()
    assert all(a is None or a == kept_files(PAGE, X86) for a in answers)
    assert answers[-1] == kept_files(PAGE, X86)


def test_a_closed_decoder_answers_nothing(decoder: PageDecoder) -> None:
    decoder.close()
    assert decoder.files(PAGE, X86) is None


def test_a_target_whose_tags_were_not_kept_for_gets_the_whole_page(decoder: PageDecoder) -> None:
    from pip._internal.index.collector import IndexContent

    from photonpack.lock.shared import _Page

    content = IndexContent(PAGE, "application/vnd.pypi.simple.v1+json", None, "https://h/pkg/")
    decoded: list[_Page] = []
    page = _Page(content, decoder.files(PAGE, X86), X86, decoded.append)
    assert page.for_tags(frozenset({"py3-none-any"})) is page
    windows = frozenset({"cp311-cp311-win_amd64"})
    whole = page.for_tags(windows)
    assert whole.files == FILES and decoded == [whole]  # given to the shared index's sizes
    links = page.links_for(windows, wheels_only=True)
    assert [link.url for link in links] == ["https://h/bad.whl", "https://h/w.whl"]


@pytest.mark.parametrize("code", ["import sys; sys.exit(3)", "print('someone else')"])
def test_a_helper_that_does_not_answer_leaves_the_page_to_this_process(
    code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("photonpack.lock.pagedecode._CODE", code)
    decoder = PageDecoder()
    decoder.start(wait=True)
    try:
        assert decoder.files(PAGE, X86) is None
        assert decoder.files(PAGE, X86) is None  # not asked again
    finally:
        decoder.close()
