"""Run at start-up by ``photonpack_leptonai.pth``: ``import leptonai`` works in plain Python.

The finder goes last on ``sys.meta_path``, so it is asked about ``leptonai``
only after every other finder found nothing: a real ``leptonai``, installed
anywhere Python looks, always wins. Start-up pays for this module and one
list append; photonpack itself is imported only when ``leptonai`` is.
"""

import sys

TYPE_CHECKING = False  # typing is not imported: it would cost every interpreter start
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LeptonaiFallbackFinder"]


class LeptonaiFallbackFinder:
    """Answers ``leptonai`` imports with photonpack's stand-in when nothing else can."""

    def find_spec(self, fullname: str, path: "Any" = None, target: "Any" = None) -> "Any":
        """The stand-in's spec for ``leptonai`` and its modules, unless another finder has one."""
        if fullname != "leptonai" and not fullname.startswith("leptonai."):
            return None
        # A finder added after start-up sits behind this one: let it answer first.
        later = sys.meta_path[sys.meta_path.index(self) + 1 :] if self in sys.meta_path else []
        for finder in later:
            find = getattr(finder, "find_spec", None)
            if find is not None and find(fullname, path, target) is not None:
                return None
        from photonpack.serving.lepton import find_shim_spec

        return find_shim_spec(fullname)


if not any(type(f).__name__ == "LeptonaiFallbackFinder" for f in sys.meta_path):
    sys.meta_path.append(LeptonaiFallbackFinder())
