"""Several targets resolved against one set of index pages and metadata (issue 19).

The scenario mixes what sharing could get wrong: pure wheels every target reads,
platform wheels only one target can use, a dependency behind a marker, a package
whose newest version exists for one interpreter only (the targets disagree, and
are resolved again), advertised-nowhere ``.metadata`` files and plain wheels. The
expected lock was written by photonpack before targets shared anything
(``tests/data/lockspeed/four-targets.toml``, the index URL replaced by ``INDEX``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pip._vendor.packaging.specifiers import SpecifierSet

from photonpack.lock.index import IndexSettings
from photonpack.lock.lockfile import LockOptions, lock_photon
from photonpack.lock.shared import SharedIndex
from photonpack.lock.target import Target
from tests.support.index import PackageIndex, add_serving_stack
from tests.test_lock import photon

TARGETS = tuple(
    Target.parse(t)
    for t in (
        "cp311-manylinux_2_28_x86_64",
        "cp311-manylinux_2_28_aarch64",
        "cp312-manylinux_2_28_x86_64",
        "cp312-manylinux_2_28_aarch64",
    )
)
EXPECTED = Path(__file__).parent / "data" / "lockspeed" / "four-targets.toml"
REQUIREMENTS = ("app", "native>=2", "split", "plain[extra]")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    served = PackageIndex(tmp_path_factory.mktemp("four-target-index")).start()
    add_serving_stack(served)
    served.add("app", "1.0", requires=["common>=1", 'armhelper; platform_machine == "aarch64"'])
    served.add("app", "1.1", requires=["common>=1.1", 'armhelper; platform_machine == "aarch64"'])
    served.add("common", "1.0")
    served.add("common", "1.2", requires=['tomli; python_version < "3.12"'])
    served.add("tomli", "2.0")
    for python in ("cp311-cp311", "cp312-cp312"):
        served.add("armhelper", "0.3", tag=f"{python}-manylinux_2_17_aarch64")
        for arch in ("x86_64", "aarch64"):
            served.add("native", "2.0", tag=f"{python}-manylinux_2_17_{arch}", requires=["common"])
            served.add("native", "3.0", tag=f"{python}-manylinux_2_28_{arch}", requires=["common"])
    served.add("native", "3.1", tag="cp312-cp312-manylinux_2_28_x86_64", requires=["common"])
    served.add("split", "1.0")
    served.add("split", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    served.add("plain", "1.0", requires=['common; extra == "extra"'], provides_extras=["extra"])
    served.unadvertised_metadata = True
    yield served
    served.stop()


def _normalized(text: str, index: PackageIndex) -> str:
    return re.sub(r'inputs-digest = "[^"]*"', 'inputs-digest = "…"', text).replace(
        index.root_url, "INDEX"
    )


def test_four_targets_lock_to_the_bytes_of_one_target_at_a_time(
    index: PackageIndex, tmp_path: Path
) -> None:
    options = LockOptions(index=IndexSettings(index_url=index.url), targets=TARGETS)
    result = lock_photon(photon(tmp_path, *REQUIREMENTS), options)
    assert _normalized(result.path.read_text(), index) == EXPECTED.read_text()


def test_four_targets_lock_to_the_same_bytes_with_pages_decoded_by_the_helper(
    index: PackageIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photonpack.lock.pagedecode import PageDecoder

    class Ready(PageDecoder):  # the real helper, waited for: it decodes every page
        def start(self, *, wait: bool = False) -> None:
            super().start(wait=True)

    monkeypatch.setattr("photonpack.lock.shared.BIG_PAGE", 0)
    monkeypatch.setattr("photonpack.lock.shared.PageDecoder", Ready)
    options = LockOptions(index=IndexSettings(index_url=index.url), targets=TARGETS)
    result = lock_photon(photon(tmp_path, *REQUIREMENTS), options)
    assert _normalized(result.path.read_text(), index) == EXPECTED.read_text()


def test_four_targets_fetch_each_page_and_pure_wheel_once(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    add_serving_stack(package_index)
    package_index.add("app", "1.0", requires=["common"])
    package_index.add("common", "1.0")
    for python in ("cp311-cp311", "cp312-cp312"):
        for arch in ("x86_64", "aarch64"):
            package_index.add("native", "1.0", tag=f"{python}-manylinux_2_17_{arch}")
    options = LockOptions(index=IndexSettings(index_url=package_index.url), targets=TARGETS)
    lock_photon(photon(tmp_path, "app", "native"), options)
    pages = Counter(p for p in package_index.requests if p.startswith("/simple/"))
    assert set(pages.values()) == {1}, pages
    files = Counter(p for p in package_index.requests if p.startswith("/files/"))
    # Each wheel is read once, by whichever target needs it first: four native wheels, one
    # app and one common wheel for all four targets.
    assert files["/files/app-1.0-py3-none-any.whl"] == 1
    assert files["/files/common-1.0-py3-none-any.whl"] == 1
    assert sum(n for f, n in files.items() if f.startswith("/files/native-")) == 4


def test_a_wheels_metadata_is_one_distribution_parsed_once() -> None:
    from photonpack.lock.metadist import metadata_distribution

    text = (
        b"Metadata-Version: 2.1\nName: Native\nVersion: 3.0\nRequires-Python: >=3.11\n"
        b'Requires-Dist: common>=1\nRequires-Dist: tomli; python_version < "3.12"\n\nA README.\n'
    )
    dist = metadata_distribution(text, "native-3.0-cp311-cp311-manylinux_2_28_x86_64.whl")
    assert (dist.canonical_name, str(dist.version), dist.requires_python) == (
        "native",
        "3.0",
        SpecifierSet(">=3.11"),
    )
    assert [str(r) for r in dist.iter_raw_dependencies()] == [
        "common>=1",
        'tomli; python_version < "3.12"',
    ]
    assert dist._dist.metadata is dist._dist.metadata  # parsed once, for every question


@pytest.mark.parametrize(
    "text",
    [
        b"Metadata-Version: 2.1\nName: native\nVersion: 3.0\nRequires-Dist: common\n\n"
        + b"# A README\n\nWith paragraphs,\r\nodd lines\n\n\nand no end",
        b"Metadata-Version: 2.1\nName: native\nVersion: 3.0\n",  # no body
        b"Metadata-Version: 2.1\r\nName: native\r\nVersion: 3.0\r\n\r\nCRLF body\r\n",
        b"Metadata-Version: 2.1\nName: native\nVersion: 3.0\nnot a header\n\nbody\n",
        b"Metadata-Version: 2.1\nName: native\nContent-Type: multipart/mixed; boundary=b\n\n"
        + b"--b\n\npart\n--b--\n",
    ],
)
def test_a_wheels_metadata_parses_as_the_email_parser_parses_it(text: bytes) -> None:
    import pathlib

    from pip._internal.metadata.importlib._dists import WheelDistribution

    from photonpack.lock.metadist import metadata_distribution

    dist = metadata_distribution(text, "native-3.0-py3-none-any.whl")
    files = {pathlib.PurePosixPath("METADATA"): text}
    whole: Any = WheelDistribution(files, pathlib.PurePosixPath("x")).metadata  # pip's own
    parsed = dist._dist.metadata
    assert type(parsed) is type(whole)
    assert _rendered(parsed) == _rendered(whole)


def _rendered(message: Any) -> Any:
    """What a parsed message holds, comparable (its defects and parts compare by identity)."""
    if isinstance(message, list):
        return [_rendered(part) for part in message]
    if not hasattr(message, "items"):
        return message
    return (
        [(key, _rendered(value)) for key, value in message.items()],
        _rendered(message.get_payload()),
        [type(defect) for defect in message.defects],
    )


def test_a_wheel_read_whole_gives_one_distribution_parsed_once(
    package_index: PackageIndex,
) -> None:
    from pip._internal.network.session import PipSession

    package_index.add("common", "1.2", requires=['tomli; python_version < "3.12"'])
    shared = SharedIndex(indexes=(package_index.url + "/",), preferences={})
    shared.session = PipSession()
    try:
        page = shared.page(f"{package_index.url}/common/")
        assert page is not None
        (link,) = page.links_for(frozenset({"py3-none-any"}))
        dist = shared.metadata(link, "common")  # no .metadata: the wheel is downloaded
        assert shared.metadata(link, "common") is dist
        assert (dist.canonical_name, str(dist.version)) == ("common", "1.2")
        assert dist._dist.metadata is dist._dist.metadata  # parsed once, for every question
    finally:
        shared.close()
    wheels = [p for p in package_index.requests if p.startswith("/files/")]
    assert wheels == ["/files/common-1.2-py3-none-any.whl"]


def test_the_extras_asked_of_a_project_have_their_requirements_fetched_ahead(
    package_index: PackageIndex,
) -> None:
    from pip._internal.network.session import PipSession

    from photonpack.lock.shared import TargetView

    requires = ['cublas; extra == "cublas"', 'other; extra == "other"', "base"]
    package_index.add("kit", "1.0", requires=requires, provides_extras=["cublas", "other"])
    target = Target.parse("cp311-manylinux_2_28_x86_64")
    view = TargetView(
        target=target, tags=("py3-none-any",), environment=target.environment(), pre=False
    )
    shared = SharedIndex(indexes=(package_index.url + "/",), preferences={})
    shared.session = PipSession()
    shared.views.append(view)
    try:
        shared.want(["kit[CuBLAS]>=1"])  # the extra's name as PEP 685 compares it
        page = shared.page(f"{package_index.url}/kit/")
        assert page is not None
        (link,) = page.links_for(view.tag_set)
        assert shared.metadata(link, "kit") is not None  # its Requires-Dist read, and wanted
        fetched = {url.removeprefix(package_index.url) for url in shared._pages}
    finally:
        shared.close()
    assert fetched == {"/kit/", "/base/", "/cublas/"}
