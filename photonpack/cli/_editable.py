"""``-e ./mylib`` under ``run -m``: the project's own files imported, so an edit is live.

``run -m`` serves a photon from source in the current environment; an
editable local project among its requirement lines is put first on the
import path (its ``src/`` when it has one, as setuptools and hatchling lay
out a src-layout project), so the photon imports the files being edited, not
a copy. An archive always carries the wheel built from the project instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from photonpack.serving.source import PhotonSpec

__all__ = ["editable_roots", "use_editable"]


def editable_roots(spec: PhotonSpec) -> list[Path]:
    """The import roots of the photon's ``-e`` local projects, in line order."""
    from photonpack.lock.declaration import read_declaration
    from photonpack.lock.requirements import read_requirements
    from photonpack.sources.form import DirectorySource

    declaration = read_declaration(spec)
    if not any(line.lstrip().startswith("-e") for line in declaration.requirement_dependency):
        return []  # the common case: nothing to read beyond the declaration
    wanted = read_requirements(
        declaration.requirement_dependency, spec.directory, photon=declaration.class_name
    )
    roots = []
    for source in wanted.sources:
        if isinstance(source, DirectorySource) and source.editable:
            root = (spec.directory / Path(source.path).expanduser()).resolve()
            roots.append(root / "src" if (root / "src").is_dir() else root)
    return roots


def use_editable(spec: PhotonSpec) -> None:
    """Put the editable projects first on this process's import path (and its children's)."""
    roots = [str(root) for root in editable_roots(spec)]
    if not roots:
        return
    sys.path[:0] = roots
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*roots, *([inherited] if inherited else [])])
