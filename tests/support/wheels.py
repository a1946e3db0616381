"""Build small, real wheels on disk so that tests never download a package."""

from __future__ import annotations

import base64
import hashlib
import random
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

__all__ = ["build_big_wheel", "build_wheel", "wheel_filename"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    """The PEP 427 filename of a wheel (``tag`` is ``python-abi-platform``)."""
    return f"{canonicalize_name(name).replace('-', '_')}-{version}-{tag}.whl"


def build_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
    tag: str = "py3-none-any",
    files: Mapping[str, str | bytes] | None = None,
    requires_python: str | None = None,
    entry_points: Mapping[str, str] | None = None,
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` into ``directory`` and return its path.

    By default the wheel holds one module, ``<name>/__init__.py``, that sets
    ``VERSION``. ``requires`` become ``Requires-Dist`` lines (markers allowed);
    ``entry_points`` maps console-script names to ``module:function``. The
    bytes depend only on the arguments.
    """
    module = canonicalize_name(name).replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    contents: dict[str, bytes] = {}
    for path, data in (files or {f"{module}/__init__.py": f"VERSION = {version!r}\n"}).items():
        contents[path] = data.encode() if isinstance(data, str) else data
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        metadata.append(f"Requires-Python: {requires_python}")
    metadata += [f"Requires-Dist: {req}" for req in requires]
    contents[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    pure = "true" if tag.endswith("-none-any") else "false"
    contents[f"{dist_info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: photonpack-tests\nRoot-Is-Purelib: {pure}\nTag: {tag}\n"
    ).encode()
    if entry_points:
        lines = ["[console_scripts]"] + [f"{k} = {v}" for k, v in sorted(entry_points.items())]
        contents[f"{dist_info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    record_path = f"{dist_info}/RECORD"
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in sorted(contents.items())]
    record.append(f"{record_path},,")
    contents[record_path] = ("\n".join(record) + "\n").encode()

    directory.mkdir(parents=True, exist_ok=True)
    target = directory / wheel_filename(name, version, tag)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in contents.items():
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return target


# Payload of big wheels is written in pieces of this many bytes: memory stays flat.
_PIECE = 4 << 20


def build_big_wheel(
    directory: Path,
    name: str,
    version: str,
    size: int,
    *,
    tag: str = "py3-none-any",
    member_size: int = 256 << 20,
    seed: int = 0,
    requires: Sequence[str] = (),
) -> Path:
    """A wheel with about ``size`` bytes of incompressible payload, written in streaming mode.

    The payload is ``<name>/weights-N.bin`` members of at most ``member_size``
    bytes each, stored (random bytes do not deflate), plus ``<name>/__init__.py``;
    memory stays at a few MiB whatever ``size`` is (no member is held whole).
    The bytes depend only on the arguments.
    """
    module = canonicalize_name(name).replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    rng = random.Random(f"{name}-{version}-{seed}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / wheel_filename(name, version, tag)
    rows: list[str] = []
    with zipfile.ZipFile(target, "w", allowZip64=True) as zf:

        def small(path: str, data: bytes) -> None:
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
            rows.append(f"{path},{_record_hash(data)},{len(data)}")

        small(f"{module}/__init__.py", f"VERSION = {version!r}\n".encode())
        for index, start in enumerate(range(0, size, member_size)):
            length = min(member_size, size - start)
            path = f"{module}/weights-{index}.bin"
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            info.file_size = length
            digest = hashlib.sha256()
            with zf.open(info, "w", force_zip64=length >= 1 << 31) as member:
                for offset in range(0, length, _PIECE):
                    piece = rng.randbytes(min(_PIECE, length - offset))
                    digest.update(piece)
                    member.write(piece)
            encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            rows.append(f"{path},sha256={encoded},{length}")
        pure = "true" if tag.endswith("-none-any") else "false"
        small(
            f"{dist_info}/METADATA",
            "".join(
                [
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                    *(f"Requires-Dist: {req}\n" for req in requires),
                ]
            ).encode(),
        )
        small(
            f"{dist_info}/WHEEL",
            (
                "Wheel-Version: 1.0\nGenerator: photonpack-tests\n"
                f"Root-Is-Purelib: {pure}\nTag: {tag}\n"
            ).encode(),
        )
        record_path = f"{dist_info}/RECORD"
        rows.append(f"{record_path},,")
        info = zipfile.ZipInfo(record_path, date_time=_EPOCH)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, ("\n".join(rows) + "\n").encode())
    return target
