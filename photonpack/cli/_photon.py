"""One photon argument for the commands that read an archive: ``X.photon`` or ``-n NAME``.

``verify``, ``inspect``, ``sbom`` and ``diff`` read archive files. For ``-n NAME``
the photon is looked up in the local store with the same helper ``run`` and
``push`` use (:func:`photonpack.admit.admit_name`, through
:func:`photonpack.cli.registry.admit_photon`) and read where it lies: its
stored manifest, its blobs re-hashed in place by ``verify``. Nothing is
written (a torch-size archive would be gigabytes), and every command reports
the same result whichever form named the photon.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import click

from photonpack.errors import UsageError

if TYPE_CHECKING:
    from photonpack.archive.manifest import Manifest
    from photonpack.store import Store

NAME_HELP = "The photon of this name in the local store ($PHOTONPACK_HOME), instead of a file."


def name_option(func: Any) -> Any:
    """``-n/--name NAME``: the same option, with the same meaning, on every archive command."""
    return click.option("-n", "--name", "photon_name", metavar="NAME", help=NAME_HELP)(func)


def one_photon(command: str, archive: object | None, name: str | None) -> None:
    """Exactly one of ARCHIVE and -n NAME, or a usage error saying so."""
    if archive is not None and name is not None:
        raise UsageError(f"{command} takes one photon: ARCHIVE or -n NAME, not both")
    if archive is None and name is None:
        raise UsageError(f"{command} needs a photon: ARCHIVE or -n NAME")


@dataclasses.dataclass(frozen=True)
class StoredPhoton:
    """The photon named NAME in the store: its manifest, and its archive's recorded size."""

    store: Store
    manifest: Manifest
    archive_size: int


def stored_photon(name: str) -> StoredPhoton:
    """The photon named ``name`` in the local store, or the error that lists the names."""
    from photonpack.cli.registry import admit_photon
    from photonpack.store import Store

    store = Store()
    manifest = admit_photon(store, None, name, None)
    return StoredPhoton(store, manifest, store.refs.get(name).size)
