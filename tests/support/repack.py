"""Turn distributions installed in the test venv back into wheels.

Build and run tests need the real serving stack (fastapi, uvicorn, pydantic,
...) as wheels in a local index, without downloading. Everything the test venv
has installed can be repacked: the installed files plus their dist-info, with
a fresh RECORD, under the tag the installer recorded in ``WHEEL``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as md
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = ["closure", "repack"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


def closure(requirements: Iterable[str]) -> list[str]:
    """Names of the installed distributions that ``requirements`` need, transitively."""
    env: dict[str, str] = dict(default_environment())  # type: ignore[arg-type]
    todo = [Requirement(line) for line in requirements]
    seen: dict[str, None] = {}
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        seen[name] = None
        for line in md.requires(req.name) or ():
            dep = Requirement(line)
            if dep.marker is None or any(
                dep.marker.evaluate({**env, "extra": extra}) for extra in ("", *req.extras)
            ):
                todo.append(dep)
    return sorted(seen)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def repack(name: str, directory: Path) -> Path:
    """Write the installed distribution ``name`` as a wheel into ``directory``."""
    dist = md.distribution(name)
    files = [f for f in dist.files or () if ".." not in f.parts and f.suffix != ".pyc"]
    dist_info = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    wheel_meta = (dist.read_text("WHEEL") or "").splitlines()
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta if line.startswith("Tag:")]
    pythons, abis, platforms = (
        ".".join(sorted({tag.split("-")[i] for tag in tags})) for i in range(3)
    )
    stem = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    target = directory / f"{stem}-{dist.version}-{pythons}-{abis}-{platforms}.whl"
    record_name = f"{dist_info}/RECORD"
    skip = {record_name, f"{dist_info}/INSTALLER", f"{dist_info}/REQUESTED"}
    skip |= {f"{dist_info}/direct_url.json"}
    records = []
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(files, key=str):
            arcname = file.as_posix()
            path = Path(str(dist.locate_file(file)))
            if arcname in skip or "__pycache__" in file.parts or not path.is_file():
                continue
            data = path.read_bytes()
            info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
            info.external_attr = (0o755 if path.stat().st_mode & 0o100 else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
            records.append(f"{arcname},{_record_hash(data)},{len(data)}")
        records.append(f"{record_name},,")
        info = zipfile.ZipInfo(record_name, date_time=_EPOCH)
        info.external_attr = 0o644 << 16
        zf.writestr(info, "\n".join(records) + "\n")
    return target
