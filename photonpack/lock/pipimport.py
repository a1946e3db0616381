"""pip modules a lock imports and never uses, loaded only if something uses them.

pip-tools builds its repository from pip's ``install`` command, whose module
imports pip's CLI; ``base_command`` imports rich's traceback renderer (with rich's
pretty-printer, attrs and pygments' lexers: 37 modules, ~35 ms of a cold lock on a
quiet machine) only to install it under ``pip --debug``. photonpack never runs pip's
CLI. :func:`lazy_unused` puts such a module in ``sys.modules`` behind the standard
library's ``importlib.util.LazyLoader``, and on its package as the attribute an import
of it sets (so that ``from package import module`` binds it without looking inside,
which would load it): the first use of one of its attributes loads it whole, as the
import would have.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["UNUSED", "lazy_unused"]

UNUSED = ("pip._vendor.rich.traceback",)


def lazy_unused() -> None:
    """Make each of :data:`UNUSED` not yet imported load at its first use instead."""
    for name in UNUSED:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            continue  # another pip: its own imports, as they are
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
        package, _, child = name.rpartition(".")
        setattr(sys.modules[package], child, module)
