"""An sdist's dependencies from its static PKG-INFO, without running its build backend.

To learn what an sdist depends on, pip prepares its metadata: it installs the
build requirements into an isolated environment and runs the backend's
``prepare_metadata_for_build_wheel`` (or ``build_wheel``), with the network
open. It is the one step of ``lock`` that runs code from a package.

PEP 643 makes that unnecessary for most sdists: when ``PKG-INFO`` is
Metadata-Version 2.2 or later, every field it does not list as ``Dynamic`` is
the one the built wheel will have. When ``Requires-Dist``, ``Requires-Python``
and ``Provides-Extra`` are all static, :func:`static_sdist_metadata` hands
pip that ``PKG-INFO`` as the distribution's metadata, as pip's own PEP 658
path does for a wheel, and the backend never runs. Any other sdist (an older
``PKG-INFO``, a dynamic field, none at all, a VCS or directory requirement)
falls back to pip's preparation.

The sdist is downloaded (its index sha256 checked by pip's downloader) and
only ``<top>/PKG-INFO`` is read.

A dynamic sdist (or pinned source) is built instead when ``lock`` is given a
builder (:func:`built_metadata`): its build environment locked from its
``pyproject.toml``, the wheel built hermetically into the store's build cache,
and that wheel's ``METADATA`` handed to pip, so ``build`` runs no backend again.

``build`` still checks the built wheel's real ``Requires-Dist`` against the lock
(``lock/closure.py``), so a ``PKG-INFO`` that lies is caught before an archive
exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.parser
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from photonpack._digest import sha256_file
from photonpack.errors import PhotonpackError

if TYPE_CHECKING:
    from photonpack.lock.buildreqs import BuildEnvironments, SourceBuilder
    from photonpack.lock.pipreads import MetadataShortcut

__all__ = [
    "STATIC_FIELDS",
    "built_metadata",
    "remembered_metadata",
    "sdist_metadata",
    "static_pkg_info",
    "static_sdist_metadata",
]

# The fields resolution reads: each must be static for PKG-INFO to stand for the metadata.
STATIC_FIELDS = frozenset({"requires-dist", "requires-python", "provides-extra"})

_MAX_PKG_INFO = 1 << 20  # a PKG-INFO larger than this is not one
_SDIST_SUFFIXES = (".tar.gz", ".zip")


def static_pkg_info(path: Path, filename: str) -> bytes | None:
    """The sdist's ``PKG-INFO`` if its dependencies are static (PEP 643), else None."""
    import tarfile
    import zipfile

    try:
        text = _top_file(path, filename, "PKG-INFO")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None  # pip's own preparation reports a broken sdist
    if text is None:
        return None
    message = email.parser.BytesParser().parsebytes(text, headersonly=True)
    version = str(message.get("Metadata-Version", "")).strip()
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return None
    if (major, minor) < (2, 2):
        return None
    dynamic = {str(field).strip().lower() for field in message.get_all("Dynamic") or ()}
    if dynamic & STATIC_FIELDS:
        return None
    return text


def _top_file(path: Path, filename: str, name: str) -> bytes | None:
    """The bytes of ``<top>/<name>`` in the sdist, or None when it has none."""

    def is_top(member: str) -> bool:
        parts = PurePosixPath(member).parts
        return len(parts) == 2 and parts[1] == name

    import tarfile
    import zipfile

    if filename.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if is_top(i.filename)]
            if not infos or infos[0].file_size > _MAX_PKG_INFO:
                return None
            return archive.read(infos[0])
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile() and is_top(member.name):
                stream = tar.extractfile(member)
                if stream is None or member.size > _MAX_PKG_INFO:
                    return None
                return stream.read()
    return None


def static_sdist_metadata(preparer: Any, req: Any) -> Any:
    """An index sdist's static PKG-INFO, so pip need not run its backend; else None.

    A :data:`photonpack.lock.pipreads.MetadataShortcut`, handed to
    :func:`photonpack.lock.pipreads.metadata_shortcuts` by ``resolve``.
    """
    from pip._internal.metadata import get_metadata_distribution

    path = _sdist_file(preparer, req)
    if path is None:
        return None
    text = static_pkg_info(path, req.link.filename)
    if text is None:
        return None  # dynamic: pip prepares it by running the backend
    return get_metadata_distribution(text, req.link.filename, req.req.name)


def sdist_metadata(
    environments: BuildEnvironments, builder: SourceBuilder | None
) -> MetadataShortcut:
    """:func:`static_sdist_metadata` without a builder, else :func:`built_metadata`."""
    return static_sdist_metadata if builder is None else built_metadata(environments, builder)


def built_metadata(environments: BuildEnvironments, builder: SourceBuilder) -> MetadataShortcut:
    """A shortcut giving an sdist's static PKG-INFO, else the metadata of the wheel
    ``builder`` builds from it (one download for both).

    The sdist's build environment is
    locked by ``environments`` (the same one ``lock_build_requirements``
    records, so ``build`` computes the same cache key); anything that fails
    here (a build requirement without a wheel, a failing backend) leaves the
    metadata to pip, and ``build`` reports it as it always did.
    """
    built: dict[str, bytes] = {}  # by link: pip asks again in each resolution round

    def shortcut(preparer: Any, req: Any) -> Any:
        # Imported here, when an sdist is met: made before the lock's first request, this
        # shortcut must not delay it by importing pip's metadata code (60 ms).
        from pip._internal.metadata import get_metadata_distribution

        from photonpack.lock.buildsystem import read_build_system
        from photonpack.lock.sdist import LockedSdist

        url, name = req.link.url_without_fragment, req.req.name
        if url not in built:
            path = _sdist_file(preparer, req)
            if path is None:
                return None
            filename = req.link.filename
            if (text := static_pkg_info(path, filename)) is not None:
                return get_metadata_distribution(text, filename, name)
            try:
                system = read_build_system(path, filename)
                packages = environments.packages(system.requires)
            except PhotonpackError:
                return None  # lock_build_requirements says what is wrong
            sha256, size = sha256_file(path)
            sdist = LockedSdist(
                name=name,
                version=_version(filename, name),
                filename=filename,
                url=url,
                size=size,
                sha256=sha256,
                build=dataclasses.replace(
                    system, packages=tuple(f"{p.name}=={p.version}" for p in packages)
                ),
            )
            metadata = builder(sdist, path, packages, environments.index)
            if metadata is None:
                return None
            built[url] = metadata
        return get_metadata_distribution(built[url], req.link.filename, name)

    return shortcut


def _version(filename: str, name: str) -> str:
    """The version an sdist's filename names, or "" (a pinned source's archive is named
    by its sha256: the wheel built from it says its version)."""
    from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename

    try:
        found, version = parse_sdist_filename(filename)
    except InvalidSdistFilename:
        return ""
    return str(version) if found == canonicalize_name(name) else ""


def _sdist_file(preparer: Any, req: Any) -> Path | None:
    """The sdist file of ``req`` on disk (downloaded and hash-checked by pip), or None when
    ``req`` is not an sdist (a wheel, a VCS or directory link, another scheme)."""
    from pip._internal.operations.prepare import get_http_url

    link = req.link
    if (
        link.is_wheel
        or link.is_vcs
        or not link.filename.endswith(_SDIST_SUFFIXES)
        or link.scheme not in ("http", "https", "file")
    ):
        return None
    hashes = link.as_hashes() if link.has_hash else None
    if link.scheme == "file":
        path = Path(link.file_path)
        if not path.is_file():
            return None
        if hashes:
            hashes.check_against_path(str(path))  # a mismatch is pip's HashError
        return path
    return Path(get_http_url(link, preparer._download, hashes=hashes).path)


@contextlib.contextmanager
def remembered_metadata() -> Iterator[None]:
    """Prepare each sdist's metadata once per ``resolve`` call, however often pip asks.

    pip-tools resolves in rounds and photonpack in two passes, each with new
    requirement objects: without this, a dynamic sdist's backend ran once per
    round (docopt three times in one lock of ``bench/sources.py``). The first
    preparation's ``METADATA`` is kept by link (URL and hash) and handed to the
    later ones, as pip's own PEP 658 path hands a wheel's.
    """
    from pip._internal.distributions.sdist import SourceDistribution
    from pip._internal.metadata import get_metadata_distribution

    original = SourceDistribution.__dict__["prepare_distribution_metadata"]
    prepared: dict[str, bytes] = {}

    def prepare(self: Any, *args: Any, **kwargs: Any) -> None:
        req, link = self.req, self.req.link
        key = link.url if link is not None and not req.editable and req.req is not None else None
        if key is not None and key in prepared:
            req._distribution = get_metadata_distribution(
                prepared[key], link.filename, req.req.name
            )
            return
        original(self, *args, **kwargs)
        if key is not None and req.metadata_directory:
            with contextlib.suppress(OSError):
                prepared[key] = (Path(req.metadata_directory) / "METADATA").read_bytes()

    SourceDistribution.prepare_distribution_metadata = prepare  # type: ignore[method-assign]
    try:
        yield
    finally:
        SourceDistribution.prepare_distribution_metadata = original  # type: ignore[method-assign]
