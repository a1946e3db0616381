"""Where blobs may be mounted from: the repositories this machine pushed to or pulled from.

A registry links a blob from another repository it holds instead of taking
the bytes again (``POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<other>``),
but only when told which repository to link from. Like docker's blob-info
cache, photonpack remembers, per registry, the repositories it last moved
photons through, and ``push`` offers them as mount sources. The record is a
hint, never trusted for content: a mount the registry refuses is an upload, and
two processes racing on the file at worst forget a repository.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from photonpack._fs import write_atomic

__all__ = ["RecentRepositories"]

# Mounts are tried in turn for every missing blob; a few recent repositories are enough.
MAX_REMEMBERED = 8


class RecentRepositories:
    """The file ``path``: ``{registry: [repository, ...]}``, most recent first."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, list[str]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(document, dict):
            return {}
        return {
            str(registry): [str(repo) for repo in repos if isinstance(repo, str)]
            for registry, repos in document.items()
            if isinstance(repos, list)
        }

    def get(self, registry: str) -> list[str]:
        """The repositories of ``registry`` used lately, most recent first."""
        return self._read().get(registry, [])

    def add(self, registry: str, repository: str) -> None:
        """Remember ``repository``; a file that cannot be written is left as it is."""
        document = self._read()
        repos = [repository, *(r for r in document.get(registry, []) if r != repository)]
        document[registry] = repos[:MAX_REMEMBERED]
        data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, data, sync=False)
