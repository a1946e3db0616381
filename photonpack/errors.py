"""The one exception tree of photonpack.

Every error a user can cause is a :class:`PhotonpackError`. Its message is
complete: what was expected, what was found, and what to do. The CLI turns it
into that message and ``exit_code``, never into a traceback.

::

    PhotonpackError                      exit 1 (photonpack.serving.errors: the root
    │                                    travels with the serving package)
    ├── UsageError                       exit 2: the command line is wrong
    ├── PhotonDefinitionError            a Photon subclass is declared wrongly
    ├── PhotonSourceError                a photon cannot be found or imported
    ├── LockError                        resolution or the lock file
    │   ├── ResolutionError              conflicting / unknown requirements
    │   ├── NoCompatibleWheelError       a package has no wheel for a target
    │   ├── LockFileError                a malformed pylock file
    │   ├── StaleLockError               the lock does not match its inputs
    │   └── TargetError                  a --target is misspelled or unsupported
    ├── PackageIndexError                a package index or download failed
    ├── BuildError                       assembling an archive failed
    ├── SourceError                      a local project, git repository or source URL
    │                                    cannot be read, fetched or exported
    ├── ArchiveError                     not a photon archive / unreadable
    ├── IntegrityError                   exit 3: bytes differ from their digest
    ├── StoreError                       $PHOTONPACK_HOME unusable
    ├── InstallError                     creating the photon's environment failed
    ├── ServeError                       the server cannot start (port busy, ...)
    ├── RegistryError                    an OCI registry refused or failed
    ├── ImageError                       a container image cannot be made or written
    └── ClientError                      an HTTP call from :class:`Client` failed

Any other exception reaching the CLI is a bug: it prints one line
(``error: internal error: ...``) and exits 1; ``--debug`` or
``PHOTONPACK_DEBUG=1`` shows its traceback.

Foreign exceptions (``OSError``, ``zstandard.ZstdError``, ``tarfile``,
``subprocess``, ``urllib``) are translated into this tree at the boundary where
they happen, with ``raise ... from``.
"""

from __future__ import annotations

from photonpack.serving.errors import (
    ClientError,
    PhotonDefinitionError,
    PhotonpackError,
    PhotonSourceError,
    ServeError,
)

__all__ = [
    "ArchiveError",
    "BuildError",
    "ClientError",
    "ImageError",
    "InstallError",
    "IntegrityError",
    "LockError",
    "LockFileError",
    "NoCompatibleWheelError",
    "PackageIndexError",
    "PhotonDefinitionError",
    "PhotonSourceError",
    "PhotonpackError",
    "RegistryError",
    "ResolutionError",
    "ServeError",
    "SourceError",
    "StaleLockError",
    "StoreError",
    "TargetError",
    "UsageError",
]


class LockError(PhotonpackError):
    """Locking failed or a lock file cannot be used."""


class ResolutionError(LockError):
    """The requirements cannot be resolved (conflict, unknown package)."""


class NoCompatibleWheelError(LockError):
    """A locked package has no wheel for one of the targets."""


class LockFileError(LockError):
    """A pylock file is malformed or not one of ours."""


class StaleLockError(LockError):
    """The lock file does not match the photon's current inputs."""


class TargetError(LockError):
    """A target (interpreter-platform) is misspelled or names an unknown platform."""


class PackageIndexError(PhotonpackError):
    """A package index is unreachable or served something unexpected."""


class BuildError(PhotonpackError):
    """An archive cannot be assembled."""


class SourceError(PhotonpackError):
    """A source (local project, git repository, archive URL) cannot be read, fetched or exported."""


class ArchiveError(PhotonpackError):
    """A file is not a readable photon archive."""


class IntegrityError(PhotonpackError):
    """Bytes do not match the digest or size that vouches for them."""

    exit_code = 3


class StoreError(PhotonpackError):
    """The local store ($PHOTONPACK_HOME) cannot be used."""


class InstallError(PhotonpackError):
    """A photon's virtual environment cannot be created."""


class RegistryError(PhotonpackError):
    """An OCI registry refused a request or cannot be reached."""


class UsageError(PhotonpackError):
    """The command line is wrong: a missing argument, options that exclude each other."""

    exit_code = 2


class ImageError(PhotonpackError):
    """A container image cannot be made from a photon, or cannot be written."""
