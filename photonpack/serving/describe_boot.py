"""Start ``describe`` in an environment that leaves some of the photon's wheels out.

``build`` reads a photon's handler contract by importing it (``describe.py``).
Most photons import their heavy libraries (torch, the CUDA wheels) in
``init()``, which describe never runs, so the build first tries an
environment without its biggest wheels. The contract read there is the one
the full environment gives if the photon never reaches a wheel left out, and
this module makes sure it cannot, before ``site`` runs any ``.pth`` file:

- importing (or ``find_spec`` of) a module of a wheel left out ends the
  process at once with :data:`NEEDS_MORE`, naming the module on stderr; the
  build then adds that wheel and describes again, or uses the full
  environment;
- ``importlib.metadata`` sees the wheels left out as if installed: their
  dist-info files are read from the wheel files themselves, so entry points,
  versions and plugin lookups answer as they will on the server.

Loaded by path with the standard library only (``python -I -S -c``): nothing of
the environment may be imported before the guard is in place.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.metadata
import json
import os
import re
import site
import sys
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["BOOT", "NEEDS_MORE", "run"]

NEEDS_MORE = 3  # the exit code: the photon reached a wheel left out
MARK = "photonpack-describe: needs "  # ... then the module's top-level name, on stderr

# What ``build`` runs: ``python -I -S -c BOOT this-file config.json --entry ENTRY``.
BOOT = (
    "import sys, importlib.machinery as m, importlib.util as u\n"
    "l = m.SourceFileLoader('_photonpack_describe_boot', sys.argv[1])\n"
    "b = u.module_from_spec(u.spec_from_loader(l.name, l))\n"
    "l.exec_module(b)\n"
    "sys.exit(b.run(sys.argv[2], sys.argv[3:]))\n"
)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


_CONTEXT = importlib.metadata.DistributionFinder.Context()


class _WheelDistribution(importlib.metadata.Distribution):
    """A wheel left out, as ``importlib.metadata`` would see it installed."""

    def __init__(self, wheel: str, dist_info: str, site_packages: str) -> None:
        self._wheel, self._dist_info, self._site = wheel, dist_info, site_packages

    def read_text(self, filename: str) -> str | None:
        if filename == "INSTALLER":
            return "photonpack\n"
        try:
            with zipfile.ZipFile(self._wheel) as zf:
                return zf.read(f"{self._dist_info}/{filename}").decode("utf-8")
        except KeyError:
            return None

    def locate_file(self, path: Any) -> Any:
        return Path(self._site, path)


class _LeftOut(importlib.abc.MetaPathFinder):
    """Ends the process on the first look for a module of a wheel left out."""

    def __init__(self, modules: set[str], dists: dict[str, _WheelDistribution]) -> None:
        self._modules, self._dists = modules, dists

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        top = fullname.partition(".")[0]
        if top in self._modules:
            sys.stderr.write(f"{MARK}{top}\n")
            sys.stderr.flush()
            os._exit(NEEDS_MORE)  # not an ImportError: a photon could catch that

    def find_distributions(
        self, context: importlib.metadata.DistributionFinder.Context = _CONTEXT
    ) -> list[_WheelDistribution]:
        if context.name is None:
            return list(self._dists.values())
        found = self._dists.get(_normalise(context.name))
        return [found] if found is not None else []


def run(config: str, argv: list[str]) -> int:
    """Install the guard, start ``site`` (``.pth`` files included), then describe."""
    left_out = json.loads(Path(config).read_text(encoding="utf-8"))
    dists = {
        _normalise(d["name"]): _WheelDistribution(
            d["wheel"], d["dist_info"], left_out["site_packages"]
        )
        for d in left_out["wheels"]
    }
    sys.meta_path.insert(0, _LeftOut(set(left_out["modules"]), dists))
    site.main()
    # By name: build imports this module for its constants, and must not import the
    # serving stack that describe loads (the layering contract checks it).
    describe = importlib.import_module("photonpack.serving.describe")
    code: int = describe.main(argv)
    return code
