"""photonpack's serving files in an environment: a distribution of their own.

The manifest's ``runtime`` entries (the serving package and the facade) are
installed into site-packages beside the wheels, with a ``photonpack-<version>
.dist-info`` whose RECORD lets ``verify --store`` re-hash them and the wheel
cache link them like any wheel's files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from photonpack.errors import InstallError
from photonpack.install.extract import INSTALLER, InstalledDist, write_new
from photonpack.install.owners import RUNTIME
from photonpack.install.record import record_hash

__all__ = ["place_runtime", "runtime_dist_info"]

_VERSION = re.compile(rb'^__version__ = "([A-Za-z0-9.+!_-]+)"$', re.MULTILINE)


def _runtime_target(site: Path, relpath: str) -> Path:
    parts = PurePosixPath(relpath).parts
    if relpath.startswith("/") or not parts or any(p in ("..", ".") for p in parts):
        raise InstallError(
            f"runtime file path {relpath!r} is not a relative path inside site-packages"
        )
    return site.joinpath(*parts)


def runtime_dist_info(runtime_files: Mapping[str, Path]) -> str:
    """The dist-info of the runtime files: ``photonpack-<their version>.dist-info``."""
    about = runtime_files.get("photonpack/__about__.py")
    found = _VERSION.search(about.read_bytes()) if about is not None else None
    return f"photonpack-{found.group(1).decode() if found else '0'}.dist-info"


def place_runtime(
    site: Path,
    runtime_files: Mapping[str, Path],
    taken: Iterable[str],
    *,
    readonly: bool = False,
) -> InstalledDist:
    """Copy photonpack's runtime files into site-packages; none may be a wheel's file.

    Returns them as a distribution (with ``METADATA`` and ``INSTALLER``) whose
    RECORD is still to write.
    """
    taken = set(taken)
    dist_info = runtime_dist_info(runtime_files)
    name, _, version = dist_info.removesuffix(".dist-info").partition("-")
    files = {relpath: source.read_bytes() for relpath, source in runtime_files.items()}
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        "Summary: photonpack's serving runtime, as shipped in the photon's archive\n"
    ).encode()
    files[f"{dist_info}/INSTALLER"] = f"{INSTALLER}\n".encode()
    rows = []
    for relpath, data in sorted(files.items()):
        target = _runtime_target(site, relpath)
        if str(target) in taken or target.exists():
            raise InstallError(
                f"runtime file {relpath} is also installed by a wheel of the photon; "
                "remove photonpack from the photon's requirements and lock again."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        write_new(target, data, executable=False, readonly=readonly)
        rows.append((target, record_hash(data), len(data)))
    return InstalledDist(label=RUNTIME, dist_info=dist_info, rows=tuple(rows))
