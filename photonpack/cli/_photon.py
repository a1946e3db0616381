"""One photon argument for the commands that read an archive: ``X.photon`` or ``-n NAME``.

``verify``, ``inspect``, ``sbom`` and ``diff`` read archive files. For ``-n NAME``
the photon is looked up in the local store with the same helper ``run`` and
``push`` use (:func:`photonpack.admit.admit_name`, through
:func:`photonpack.cli.registry.admit_photon`) and written back out as its
archive into the store's scratch space, so every command reads the same bytes
and reports the same result whichever form named the photon.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from photonpack.errors import UsageError

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


@contextmanager
def stored_archive(name: str) -> Iterator[Path]:
    """The archive of the photon named ``name`` in the store, while the block runs."""
    from photonpack.archive import write_archive
    from photonpack.cli.registry import admit_photon
    from photonpack.store import Store

    store = Store()
    manifest = admit_photon(store, None, name, None)
    with store.temp_dir("named-") as scratch:
        path = scratch / f"{manifest.name}.photon"
        with path.open("wb") as out:
            write_archive(out, manifest, store.blob_path)
        yield path


@contextmanager
def archive_path(archive: Path | None, name: str | None) -> Iterator[Path]:
    """ARCHIVE as given, or the stored photon ``name`` as an archive file."""
    if name is None:
        assert archive is not None
        yield archive
        return
    with stored_archive(name) as path:
        yield path
