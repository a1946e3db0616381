"""The shared libraries the photon's compiled code needs, looked up in the base.

A manylinux wheel vendors every library but a short list it may assume the
system has (PEP 600's policy: ``libstdc++.so.6``, ``libgcc_s.so.1``, the C
library's parts, a few X11/GL ones). A slim base can still lack one of them
(``libstdc++6`` is not in every minimal image), and the photon then fails at
its first import, in production. So ``image`` reads the ``DT_NEEDED`` entries
of every ELF file of the staged environment and looks each library up in the
environment itself (vendored ``.libs`` directories) and in the base's library
directories: the usual ones, and those its ``/etc/ld.so.conf`` names (with
its ``include`` globs, as ``ldconfig`` reads them). A missing library of the
policy is an error; another missing one is a warning, since it may come from
the host at run time (``libcuda.so.1`` from the GPU driver).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from photonpack.image.rootfs import RootFS

__all__ = [
    "GLIBC_LIBRARIES",
    "LIBRARY_DIRS",
    "POLICY_LIBRARIES",
    "MissingLibrary",
    "describe",
    "library_dirs",
    "missing_libraries",
    "needed",
]

#: Libraries a manylinux wheel may assume the system has (PEP 600 / auditwheel's policy).
POLICY_LIBRARIES = frozenset(
    {
        "libgcc_s.so.1", "libstdc++.so.6", "libm.so.6", "libdl.so.2", "librt.so.1",
        "libc.so.6", "libnsl.so.1", "libutil.so.1", "libpthread.so.0", "libresolv.so.2",
        "libX11.so.6", "libXext.so.6", "libXrender.so.1", "libICE.so.6", "libSM.so.6",
        "libGL.so.1", "libgobject-2.0.so.0", "libgthread-2.0.so.0", "libglib-2.0.so.0",
        "libcrypt.so.1", "libz.so.1", "libexpat.so.1",
    }
)  # fmt: skip
#: The libraries glibc itself installs: present in any base whose glibc was found.
GLIBC_LIBRARIES = frozenset(
    {
        "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0",
        "libutil.so.1", "libresolv.so.2", "libnsl.so.1", "libanl.so.1",
        "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
    }
)  # fmt: skip
#: Where the dynamic loader of a Debian, Ubuntu, Alpine or RHEL-like base looks.
LIBRARY_DIRS = (
    "lib", "lib64", "usr/lib", "usr/lib64", "usr/local/lib",
    "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu",
)  # fmt: skip
#: Debian's package for a policy library, for the error's advice.
_DEBIAN_PACKAGES = {
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libz.so.1": "zlib1g",
    "libexpat.so.1": "libexpat1",
    "libGL.so.1": "libgl1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libX11.so.6": "libx11-6",
    "libXext.so.6": "libxext6",
    "libXrender.so.1": "libxrender1",
    "libICE.so.6": "libice6",
    "libSM.so.6": "libsm6",
    "libcrypt.so.1": "libcrypt1",
}
_DT_NEEDED = 1
_DT_STRTAB = 5
_PT_LOAD = 1
_PT_DYNAMIC = 2


@dataclass(frozen=True, kw_only=True)
class MissingLibrary:
    """``library`` is needed by ``needed_by`` (paths in the environment) and not found."""

    library: str
    needed_by: tuple[str, ...]

    @property
    def assumed(self) -> bool:
        """Whether manylinux wheels may assume the system has it (then: an error)."""
        return self.library in POLICY_LIBRARIES

    @property
    def debian_package(self) -> str | None:
        return _DEBIAN_PACKAGES.get(self.library)


def needed(path: Path) -> tuple[str, ...] | None:
    """The ``DT_NEEDED`` names of an ELF shared object or executable; None if not ELF."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
            if head[:4] != b"\x7fELF" or len(head) < 64:
                return None
            return _read_needed(handle, head)
    except (OSError, struct.error, ValueError):
        return None  # unreadable or malformed: the loader would refuse it too


def _read_needed(handle: BinaryIO, head: bytes) -> tuple[str, ...]:
    wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
    loads, dynamic = _segments(handle, head, wide, order)
    if dynamic is None:
        return ()  # statically linked
    handle.seek(dynamic[0])
    data = handle.read(min(dynamic[1], 1 << 20))
    item = struct.Struct(order + ("qQ" if wide else "iI"))
    names: list[int] = []
    strtab = None
    for tag, value in item.iter_unpack(data[: len(data) - len(data) % item.size]):
        if tag == 0:
            break
        if tag == _DT_NEEDED:
            names.append(value)
        elif tag == _DT_STRTAB:
            strtab = _file_offset(loads, value)
    if strtab is None:
        return ()
    result = []
    for name in names:
        handle.seek(strtab + name)
        result.append(handle.read(256).split(b"\0", 1)[0].decode("utf-8", "replace"))
    return tuple(result)


def _segments(
    handle: BinaryIO, head: bytes, wide: bool, order: str
) -> tuple[list[tuple[int, int, int]], tuple[int, int] | None]:
    """The (vaddr, offset, size) of each PT_LOAD, and the (offset, size) of PT_DYNAMIC."""
    if wide:
        (phoff,) = struct.unpack_from(order + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
        layout = order + "IIQQQQ"  # type, flags, offset, vaddr, paddr, filesz
    else:
        (phoff,) = struct.unpack_from(order + "I", head, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
        layout = order + "IIIII"  # type, offset, vaddr, paddr, filesz
    loads = []
    dynamic = None
    for i in range(min(phnum, 512)):
        handle.seek(phoff + i * phentsize)
        fields = struct.unpack_from(layout, handle.read(phentsize))
        p_type, (offset, vaddr, _paddr, filesz) = fields[0], fields[-4:]
        if p_type == _PT_DYNAMIC:
            dynamic = (offset, filesz)
        elif p_type == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
    return loads, dynamic


def _file_offset(segments: Sequence[tuple[int, int, int]], vaddr: int) -> int | None:
    for start, offset, size in segments:
        if start <= vaddr < start + size:
            return offset + vaddr - start
    return None


def _walk(root: Path) -> tuple[set[str], list[tuple[str, Path]]]:
    """The names under ``root`` with ``.so`` in them, and the regular files that may be ELF
    (a ``.so`` or no suffix), by relative path: one walk, no ``Path`` per entry."""
    names: set[str] = set()
    candidates: list[tuple[str, Path]] = []
    top = str(root)
    for folder, dirs, files in os.walk(top):
        names.update(name for name in dirs if ".so" in name)
        for name in files:
            shared = ".so" in name
            if shared:
                names.add(name)
            if not shared and os.path.splitext(name)[1] not in ("", "."):  # noqa: PTH122
                continue
            full = os.path.join(folder, name)  # noqa: PTH118 - no Path per file
            if stat.S_ISREG(os.lstat(full).st_mode):
                candidates.append((os.path.relpath(full, top), Path(full)))
    candidates.sort(key=lambda item: item[0].split(os.sep))  # noqa: PTH206 - as Paths sort
    return names, candidates


def missing_libraries(
    environment: Path, fs: RootFS, *, glibc: bool = False
) -> list[MissingLibrary]:
    """Libraries the environment's ELF files need that neither it nor the base has.

    ``glibc``: the base has a glibc, so it has :data:`GLIBC_LIBRARIES` wherever they lie.
    """
    own, candidates = _walk(environment)
    if glibc:
        own |= GLIBC_LIBRARIES
    wanted: dict[str, list[str]] = {}
    for relative, path in candidates:
        for library in needed(path) or ():
            if library not in own:
                wanted.setdefault(library, []).append(relative)
    directories = library_dirs(fs)
    return [
        MissingLibrary(library=library, needed_by=tuple(users))
        for library, users in sorted(wanted.items())
        if not _in_base(fs, library, directories)
    ]


_LD_SO_CONF = "etc/ld.so.conf"
_MAX_INCLUDES = 64  # nested or repeated includes beyond this are a loop


def _conf_dirs(fs: RootFS, path: str, seen: set[str]) -> list[str]:
    """The directories ``path`` (an ld.so.conf file) names, its includes followed."""
    text = fs.read(path)
    if text is None or path in seen or len(seen) >= _MAX_INCLUDES:
        return []
    seen.add(path)
    found: list[str] = []
    for raw in text.decode("utf-8", "replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("include") and line[7:8].isspace():
            for pattern in line[8:].split():
                # ldconfig: a relative pattern is relative to the including file's directory.
                absolute = posixpath.join("/" + posixpath.dirname(path), pattern).lstrip("/")
                for match in _glob(fs, absolute):
                    found += _conf_dirs(fs, match, seen)
        elif line and not line.startswith("hwcap"):
            # "DIR", "DIR=TYPE" (libc4/5 days), or several separated by commas or colons.
            for item in line.replace(",", " ").replace(":", " ").split():
                found.append(item.partition("=")[0].strip("/"))
    return found


def _glob(fs: RootFS, pattern: str) -> list[str]:
    """The kept files matching ``pattern``, whose ``*`` does not cross a ``/`` (as glob(3))."""
    depth = pattern.count("/")
    return sorted(
        p for p in fs.contents if p.count("/") == depth and fnmatch.fnmatchcase(p, pattern)
    )


def library_dirs(fs: RootFS) -> tuple[str, ...]:
    """Where the base's dynamic loader looks: :data:`LIBRARY_DIRS` and its ld.so.conf's.

    Without an ``/etc/ld.so.conf``, the files of ``/etc/ld.so.conf.d/*.conf``
    are read, as the distributions' own ``ld.so.conf`` includes them.
    """
    named = _conf_dirs(fs, _LD_SO_CONF, set())
    if fs.read(_LD_SO_CONF) is None:
        for path in _glob(fs, "etc/ld.so.conf.d/*.conf"):
            named += _conf_dirs(fs, path, set())
    return tuple(dict.fromkeys([*LIBRARY_DIRS, *(d for d in named if d)]))


def _in_base(fs: RootFS, library: str, directories: Sequence[str]) -> bool:
    return any(fs.resolve(f"{directory}/{library}") is not None for directory in directories)


def describe(missing: Sequence[MissingLibrary]) -> str:
    """``libstdc++.so.6 (Debian: libstdc++6; needed by numpy/…so)`` for each, joined."""
    parts = []
    for item in missing:
        hint = f"Debian: {item.debian_package}; " if item.debian_package else ""
        users = ", ".join(item.needed_by[:2]) + (" …" if len(item.needed_by) > 2 else "")
        parts.append(f"{item.library} ({hint}needed by {users})")
    return "; ".join(parts)
