"""The handler contract: the photon described as it will run, in its own locked environment.

``build`` asks for it once the wheels are fetched: the photon's files are laid
out from the store in a fresh working directory, its environment is made from
the locked wheels, and ``python -I -m photonpack.serving.describe`` imports it
there (never running ``init()``). The answer is cached in the store by
environment, entry and files. A photon that exits or hangs while imported is
a clear error, not the build's exit code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from photonpack.archive.manifest import FileEntry, WheelEntry
from photonpack.errors import BuildError
from photonpack.install.environment import (
    ensure_environment,
    environment_name,
    environment_python,
)
from photonpack.install.leftout import LEAVE_OUT_BYTES, leave_out
from photonpack.lock.declaration import Declaration
from photonpack.lock.lockfile import Lock, LockedWheel
from photonpack.lock.target import Target, host_compatible
from photonpack.serving.describe_boot import BOOT, MARK, NEEDS_MORE
from photonpack.serving.source import PhotonSpec
from photonpack.store import Store

__all__ = [
    "begin_description",
    "describe_first",
    "describe_keeps",
    "describe_photon",
    "photon_entry",
]

# Describing a photon imports the user's module; a hung import must not hang the build.
_DESCRIBE_TIMEOUT_S = 300
_DESCRIBE_CODES = (0, 1, 2)  # python -m photonpack.serving.describe: ok, error, usage
_DESCRIBE = "photonpack.serving.describe"
_ROUNDS = 3  # describes without some wheels before the full environment is installed


def photon_entry(spec: PhotonSpec, declaration: Declaration) -> str:
    """The manifest's ``entry``: ``file.py:Class`` or ``pkg.module:Class``."""
    if spec.path is not None:
        return f"{spec.path.name}:{declaration.class_name}"
    return f"{spec.module}:{declaration.class_name}"


def describe_first(lock: Lock) -> list[LockedWheel]:
    """The wheels to fetch first: the describe environment is made of some of them while
    the others download (:func:`begin_description`).

    The locked wheels of the target that runs here below the size at which a
    wheel may be left out; none when no target runs here.
    """
    host = host_compatible(lock.targets)
    if host is None:
        return []
    return [w for w in lock.wheels_for(host) if w.size < LEAVE_OUT_BYTES]


def describe_keeps(lock: Lock, host: Target, needed: Iterable[str] | None = None) -> set[str]:
    """The sha256s of ``host``'s wheels below the leaving-out size that the describe needs.

    By default what the photon's requirements and the serving stack's need: a
    requirement's locked ``dependencies`` are needed too, except through a wheel
    left out for its size (what only torch imports, sympy, networkx, jinja2, is
    not imported while torch is not). A requirement that names no package (a
    path, a URL) keeps every wheel below that size. ``needed``: distributions a
    describe found it needs after all; what they need is kept, whatever their size.
    """
    chosen = {canonicalize_name(w.name): w for w in lock.wheels_for(host)}
    small = {w.sha256 for w in chosen.values() if w.size < LEAVE_OUT_BYTES}
    through: set[str] = set()
    if needed is None:
        roots = []
        for line in (*lock.inputs.requirements, *lock.inputs.serving_requirements):
            try:
                roots.append(canonicalize_name(Requirement(line).name))
            except InvalidRequirement:
                return small
    else:
        roots = [canonicalize_name(name) for name in needed]
        through = set(roots)
    needs = {canonicalize_name(p.name): p.dependencies for p in lock.packages if p.applies_to(host)}
    todo, seen, keep = roots, set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        wheel = chosen.get(name)
        if wheel is not None and wheel.sha256 in small:
            keep.add(wheel.sha256)
        elif wheel is not None and name not in through:
            continue  # left out for its size: what it needs is not imported either
        todo.extend(canonicalize_name(dependency) for dependency in needs.get(name, ()))
    return keep


def begin_description(
    store: Store, lock: Lock, fetched: Mapping[str, Path], runtime: Sequence[FileEntry]
) -> None:
    """Build the describe environment from :func:`describe_first`'s wheels (``fetched``:
    sha256 -> verified file), while the others download.

    The wheels :func:`describe_photon` will keep in, as far as these tell: what
    the photon's requirements and the serving stack need, and the wheels whose
    ``.pth`` runs at every start; ``describe_photon`` then finds it ready (or,
    when a namespace it shares with a wheel still downloading says otherwise,
    links another from its files). Installing them runs none of their code.
    """
    host = host_compatible(lock.targets)
    if host is None:
        return
    small = [w for w in describe_first(lock) if w.sha256 in fetched]
    listed = [(w.sha256, w.filename, w.size, fetched[w.sha256]) for w in small]
    left = leave_out(listed, keep=describe_keeps(lock, host), min_bytes=0)
    wheels = [(w.sha256, w.filename) for w in small if w.sha256 not in left]
    if wheels:
        ensure_environment(store, wheels=wheels, runtime=runtime)


def describe_photon(
    spec: PhotonSpec,
    declaration: Declaration,
    *,
    lock: Lock,
    wheels: list[WheelEntry],
    files: list[FileEntry],
    runtime: list[FileEntry],
    store: Store,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Load the photon as it will run, from its files in its locked environment.

    The photon is loaded from a working directory laid out from the archive's
    own files, not from its source directory, so a module the photon imports
    but the archive lacks fails here rather than on the server. It is first
    loaded without its biggest wheels (``install/leftout.py``): only a photon
    that reaches one of them while imported waits for them to be installed.
    The result is cached in the store by environment, entry and files.
    """
    host = host_compatible(lock.targets)
    if host is None:
        targets = ", ".join(str(t) for t in lock.targets)
        warning = (
            f"no target of the lock runs on this machine ({targets}); "
            "the handler contract (handlers, OpenAPI) is not recorded"
        )
        return _declared_only(declaration), (warning,)
    mine = [w for w in wheels if str(host) in w.targets]
    pairs = [(w.sha256, w.filename) for w in mine]
    entry = photon_entry(spec, declaration)
    key = hashlib.sha256(
        json.dumps(
            [environment_name(pairs, runtime), entry, [(f.path, f.sha256) for f in files]]
        ).encode()
    ).hexdigest()
    cached = store.root / "describe" / f"{key}.json"
    if cached.is_file():
        described: dict[str, Any] = json.loads(cached.read_bytes())
        return described, ()
    photon = _Photon(entry=entry, files=files, source_dir=spec.directory, store=store)
    output = _described_without(
        mine, runtime, photon, lambda roots: describe_keeps(lock, host, roots)
    )
    if output is None:
        env, _ = ensure_environment(store, wheels=pairs, runtime=runtime)
        output = photon.describe([str(environment_python(env)), "-I", "-m", _DESCRIBE])
    described = _contract(output, entry)
    cached.parent.mkdir(parents=True, exist_ok=True)
    store.write_atomic(cached, json.dumps(described, sort_keys=True, ensure_ascii=False).encode())
    return described, ()


def _described_without(
    wheels: list[WheelEntry],
    runtime: list[FileEntry],
    photon: _Photon,
    keeps: Callable[[Iterable[str] | None], set[str]],
) -> str | None:
    """The contract read with the wheels it should not need left out; None to ask the full
    environment.

    ``keeps(needed)`` is what those distributions need (:func:`describe_keeps`);
    wheels built from sources are kept in. A photon that looks for a module of a
    wheel left out is described again with that wheel and what it needs in, up to
    :data:`_ROUNDS` times; one that fails to load without them is left to the full
    environment to describe, or to word its error.
    """
    store = photon.store
    listed = [(w.sha256, w.filename, w.size, store.blob_path(w.sha256)) for w in wheels]
    keep = keeps(None) | {w.sha256 for w in wheels if w.source is not None}
    left = leave_out(listed, keep=keep)
    for _round in range(_ROUNDS):
        if not left:
            return None
        kept = [(w.sha256, w.filename) for w in wheels if w.sha256 not in left]
        env, _ = ensure_environment(store, wheels=kept, runtime=runtime)
        site = next(env.glob("lib/python*/site-packages"))
        config = {
            "site_packages": str(site),
            "modules": sorted(set().union(*(w.modules for w in left.values()))),
            "wheels": [
                {"name": w.name, "wheel": str(w.path), "dist_info": w.dist_info}
                for w in left.values()
            ],
        }
        boot = site / "photonpack" / "serving" / "describe_boot.py"
        command = [str(environment_python(env)), "-I", "-S", "-c", BOOT, str(boot)]
        try:
            return photon.describe(command, boot_config=config)
        except _NeedsMore as more:
            wanted = {sha: w for sha, w in left.items() if more.module in w.modules}
            if not wanted:
                return None
            keep |= set(wanted) | keeps([w.name for w in wanted.values()])
            left = {sha: w for sha, w in leave_out(listed, keep=keep).items() if sha not in wanted}
        except BuildError:
            return None
    return None


class _NeedsMore(Exception):
    def __init__(self, module: str) -> None:
        super().__init__(module)
        self.module = module


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Photon:
    """The photon to describe: its entry and files, laid out afresh for each attempt."""

    entry: str
    files: list[FileEntry]
    source_dir: Path
    store: Store

    def describe(self, command: list[str], *, boot_config: dict[str, Any] | None = None) -> str:
        """What ``describe`` printed, run by ``command`` (then ``--entry ENTRY``)."""
        with self.store.temp_dir("describe-") as temp:
            work = temp / "photon"
            work.mkdir()
            for file in self.files:  # copies: a photon may write to its files even at import
                (work / file.path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.store.blob_path(file.sha256), work / file.path)
            if boot_config is not None:
                config = temp / "boot.json"
                config.write_text(json.dumps(boot_config), encoding="utf-8")
                command = [*command, str(config)]
            return _run_describe(
                [*command, "--entry", self.entry], self.entry, work, self.source_dir
            )


def _run_describe(command: list[str], entry: str, work: Path, source_dir: Path) -> str:
    try:
        done = subprocess.run(
            command,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=_DESCRIBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(
            f"importing the photon {entry} did not finish in {_DESCRIBE_TIMEOUT_S} s"
        ) from exc
    code, detail = done.returncode, done.stderr.strip().splitlines()
    if code == NEEDS_MORE and detail and detail[-1].startswith(MARK):
        raise _NeedsMore(detail[-1].removeprefix(MARK))
    if code < 0:
        raise BuildError(
            f"the photon {entry} was killed by {_signal_name(-code)} while it was imported "
            "to read its handler contract"
        )
    said = bool(detail) and detail[-1].startswith("error: ")
    crashed = "Traceback (most recent call last):" in done.stderr
    if code not in _DESCRIBE_CODES or (code != 0 and not said and not crashed):
        # A code describe never exits with, or no word from it: the photon's module
        # code ended the process (sys.exit, os._exit).
        raise BuildError(_exited(entry, code))
    if code != 0:
        reason = detail[-1].removeprefix("error: ")
        missing = re.search(r"imports ([\w.]+), which is not", reason)
        top = missing.group(1).split(".")[0] if missing else None
        if top and ((source_dir / f"{top}.py").is_file() or (source_dir / top).is_dir()):
            reason = (
                f"it imports {top}, which is next to it in {source_dir} but not in the "
                f"archive; add {top!r} to extra_files so that it travels with the photon"
            )
        raise BuildError(f"the photon {entry} fails to load in its locked environment: {reason}")
    return done.stdout


def _contract(output: str, entry: str) -> dict[str, Any]:
    """The JSON describe printed last: a photon may print lines of its own at import."""
    lines = output.strip().splitlines()
    if not lines:
        raise BuildError(_exited(entry, 0))
    try:
        described = json.loads(lines[-1])
    except ValueError:
        described = None
    if not isinstance(described, dict):
        raise BuildError(f"describing {entry} printed no handler contract: {lines[-1][:200]!r}")
    return described


def _signal_name(number: int) -> str:
    try:
        return f"signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"signal {number}"


def _exited(entry: str, code: int) -> str:
    return (
        f"the photon {entry} exited during import (exit code {code}: sys.exit or os._exit in "
        "its module code), so its handler contract cannot be read; move that call under "
        '`if __name__ == "__main__":` or into init()'
    )


def _declared_only(declaration: Declaration) -> dict[str, Any]:
    return {
        "photon": {
            "requirement_dependency": list(declaration.requirement_dependency),
            "system_dependency": list(declaration.system_dependency),
            "image": declaration.image,
            "handler_max_concurrency": 1,
            "handler_timeout": None,
            "description": None,
        },
        "handlers": [],
        "openapi": None,
    }
