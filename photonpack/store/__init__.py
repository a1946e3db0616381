"""The local content-addressed store under ``$PHOTONPACK_HOME``.

Layout (every name below the root is derived from content or a digest)::

    blobs/sha256/<hex>      immutable, verified content (also the download cache)
    manifests/<hex>.json    canonical manifest bytes, by archive digest
    refs/<name>.json        {"name", "digest", "size", "created"}
    envs/<env-hex>/         installed environments; valid only with .complete inside
    installed/<wheel-hex>-<interpreter>-v<layout>
                            which complete environment holds the wheel installed,
                            to hard-link its files from (``install/cache.py``)
    work/<archive-hex>/     a photon's working directory; valid only with .complete
    describe/<key>.json     handler contracts captured by build (key: env, entry, files)
    inspected/<hex>.json    a wheel blob's Requires-Dist, once build inspected it whole
    archives/<hex>.json     archive files (by sha256 of their bytes) verified and imported
    written/<hex>.json      archives build wrote (by sha256 of their path), with the file's
                            identity, so an unchanged rebuild keeps them (``written.py``)
    tmp/                    temp files and dirs, renamed into place when complete
    locks/                  OS file locks that serialise installs of one digest;
                            use-<area>-<name>.lock: held by a live server (``locks.py``)
    .lock                   the store-wide lock: shared by commands, exclusive for ``gc``

Crash safety: everything is written under ``tmp/`` and renamed into place
only when complete (files are fsynced first); directories carry a
``.complete`` marker written last. A process killed at any point leaves at
worst an orphan in ``tmp/`` that nothing ever reads. ``gc.py`` removes what no
kept photon needs, safely while other processes run (the protocol of ``locks.py``).
"""

from photonpack.store.blobs import BlobWriter, StoreSink
from photonpack.store.names import COMPLETE, default_home, validate_name
from photonpack.store.refs import Ref, Refs
from photonpack.store.store import Store

__all__ = [
    "COMPLETE",
    "BlobWriter",
    "Ref",
    "Refs",
    "Store",
    "StoreSink",
    "default_home",
    "validate_name",
]
