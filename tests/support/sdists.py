"""Build small, real sdists on disk (deterministic .tar.gz) for the source-build tests.

``build_sdist`` writes ``<name>-<version>.tar.gz`` with a ``pyproject.toml``,
``PKG-INFO`` and one module. The backend is either a real one (``hatchling``,
``flit_core``, ``setuptools``: its wheels must be on the test index) or
``IN_TREE``: a tiny PEP 517 backend shipped inside the sdist
(``backend-path = ["."]``, no build requirements), which ``network=True``
makes open a socket in ``build_wheel``, as a backend that downloads would, and
``fail=True`` fail there, as a backend without its compiler would, and
``asks`` the dynamic build requirements ``get_requires_for_build_wheel`` returns,
and ``marker`` (a path) get a line whenever the backend is imported, i.e. run.
``metadata_version`` and ``dynamic`` shape ``PKG-INFO`` (PEP 643).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from packaging.utils import canonicalize_name

__all__ = ["IN_TREE", "build_sdist"]

IN_TREE = "in-tree"

_BACKEND = '''\
"""A minimal PEP 517 backend: the package's one module, zipped with fixed times."""
import base64, hashlib, os, zipfile

if {marker!r}:
    with open({marker!r}, "a") as ran:
        ran.write("imported\\n")

NAME, VERSION, REQUIRES, TAG = {name!r}, {version!r}, {requires!r}, {tag!r}
NETWORK, FAIL, ASKS = {network!r}, {fail!r}, {asks!r}
DIST = NAME.replace("-", "_")
INFO = f"{{DIST}}-{{VERSION}}.dist-info"


def _metadata():
    lines = ["Metadata-Version: 2.1", f"Name: {{NAME}}", f"Version: {{VERSION}}"]
    lines += [f"Requires-Dist: {{r}}" for r in REQUIRES]
    return "\\n".join(lines) + "\\n"


def _wheel():
    pure = "true" if TAG.endswith("none-any") else "false"
    return f"Wheel-Version: 1.0\\nGenerator: in-tree\\nRoot-Is-Purelib: {{pure}}\\nTag: {{TAG}}\\n"


def get_requires_for_build_wheel(config_settings=None):
    return ASKS


def prepare_metadata_for_build_wheel(directory, config_settings=None):
    os.makedirs(os.path.join(directory, INFO))
    for name, text in (("METADATA", _metadata()), ("WHEEL", _wheel())):
        with open(os.path.join(directory, INFO, name), "w") as f:
            f.write(text)
    return INFO


def build_wheel(directory, config_settings=None, metadata_directory=None):
    if FAIL:
        print("checking for a C compiler... no")
        raise RuntimeError("error: no C compiler found")
    if NETWORK:
        import socket
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    stamp = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    import time
    date = time.gmtime(max(stamp, 315532800))[:6]
    files = {{f"{{DIST}}/__init__.py": open(f"{{DIST}}/__init__.py", "rb").read()}}
    files[f"{{INFO}}/METADATA"] = _metadata().encode()
    files[f"{{INFO}}/WHEEL"] = _wheel().encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{{path}},sha256={{digest}},{{len(data)}}")
    record.append(f"{{INFO}}/RECORD,,")
    files[f"{{INFO}}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    filename = f"{{DIST}}-{{VERSION}}-{{TAG}}.whl"
    with zipfile.ZipFile(os.path.join(directory, filename), "w") as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=date)
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return filename
'''


def _build_system(requirement: str, backend: str) -> str:
    return f'[build-system]\nrequires = ["{requirement}"]\nbuild-backend = "{backend}"\n'


def build_sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    backend: str = IN_TREE,
    requires: Sequence[str] = (),
    module: str | None = None,
    network: bool = False,
    fail: bool = False,
    asks: Sequence[str] = (),
    tag: str = "py3-none-any",
    extra: Mapping[str, str] | None = None,
    marker: Path | None = None,
    metadata_version: str = "2.1",
    dynamic: Sequence[str] = (),
) -> Path:
    """Write the sdist of ``name`` ``version`` into ``directory`` and return its path."""
    dist = canonicalize_name(name).replace("-", "_")
    top = f"{dist}-{version}"
    code = module if module is not None else f"VERSION = {version!r}\n"
    files: dict[str, str] = {f"{dist}/__init__.py": code}
    deps = ", ".join(f'"{r}"' for r in requires)
    project = f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'
    if backend == IN_TREE:
        build = '[build-system]\nrequires = []\nbuild-backend = "_backend"\nbackend-path = ["."]\n'
        files["_backend.py"] = _BACKEND.format(
            name=name,
            version=version,
            requires=list(requires),
            network=network,
            tag=tag,
            fail=fail,
            asks=list(asks),
            marker=str(marker) if marker is not None else "",
        )
    elif backend == "hatchling":
        build = _build_system("hatchling", "hatchling.build")
    elif backend == "flit_core":
        build = _build_system("flit_core>=3.2", "flit_core.buildapi")
        files[f"{dist}/__init__.py"] = f'"""{name}."""\n__version__ = {version!r}\n' + code
    elif backend == "setuptools":
        build = _build_system("setuptools", "setuptools.build_meta")
    elif backend == "legacy":  # no pyproject.toml: setuptools' legacy default
        build, project = "", ""
        files["setup.py"] = (
            f"from setuptools import setup\nsetup(name={name!r}, version={version!r}, "
            f"packages=[{dist!r}], install_requires={list(requires)!r})\n"
        )
    else:
        raise ValueError(backend)
    if build or project:
        files["pyproject.toml"] = build + "\n" + project
    requires_dist = "".join(f"Requires-Dist: {r}\n" for r in requires)
    dynamics = "".join(f"Dynamic: {field}\n" for field in dynamic)
    files["PKG-INFO"] = (
        f"Metadata-Version: {metadata_version}\nName: {name}\nVersion: {version}\n"
        f"{dynamics}{requires_dist}"
    )
    files.update(extra or {})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            data = files[path].encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime, info.mode = len(data), 315532800, 0o644
            tar.addfile(info, io.BytesIO(data))
    target = directory / f"{top}.tar.gz"
    directory.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return target
