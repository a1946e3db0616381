"""``photonpack run ARCHIVE | -n NAME``: verify, install offline, serve.

The archive is streamed once and every blob re-hashed before anything is
installed; the environment comes only from the archive's own wheels; the
photon is served by the environment's own interpreter, isolated (``-I``) from
the host's site-packages, from its working directory.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from photonpack.archive.manifest import Manifest
from photonpack.errors import ServeError, UsageError
from photonpack.install.environment import (
    ensure_environment,
    ensure_workdir,
    environment_python,
    wheels_for_target,
)
from photonpack.lock.target import Target, host_compatible
from photonpack.serving.deployment import ENV_VAR_REQUIRED
from photonpack.store import Store

if TYPE_CHECKING:
    from photonpack.install.installer import InstallProgress

__all__ = [
    "Prepared",
    "ServeOptions",
    "exec_serve",
    "missing_system_dependencies",
    "prepare",
    "serve_argv",
    "serve_command",
]

# Variables that would let the host's Python setup leak into the photon's interpreter.
_HOST_PYTHON_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")

# The serve entry point, run isolated (-I) from the photon's environment's python.
_SERVE_MODULE = ("-I", "-m", "photonpack.serving.serve")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServeOptions:
    """How to serve: address, token, extra environment variables."""

    host: str = "0.0.0.0"  # noqa: S104 - a served photon is meant to be reached, as in Lepton
    port: int = 8080
    token: str | None = None
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ready_json: bool = False  # once ready, one JSON line on stdout (``run --json``)
    quiet: bool = False  # no ready line on stderr (``photonpack -q run``)

    def serve_flags(self, entry: str, digest: str | None = None) -> list[str]:
        """The serve entry point's arguments (``photonpack.serving.serve``) for ``entry``.

        The one place they are spelled, for archive runs, source runs and images alike.
        """
        flags = ["--entry", entry, "--host", self.host, "--port", str(self.port)]
        if self.ready_json:
            flags.append("--ready-json")
            if digest is not None:
                flags += ["--photon-digest", digest]
        if self.quiet:
            flags.append("--quiet")
        return flags


@dataclasses.dataclass(frozen=True, kw_only=True)
class Prepared:
    """A verified photon, ready to serve."""

    manifest: Manifest
    target: Target
    environment: Path
    workdir: Path
    installed: bool  # False when an existing environment was reused


def prepare(
    store: Store,
    manifest: Manifest,
    *,
    check_system: bool = True,
    installing: Callable[[int], AbstractContextManager[InstallProgress | None]] | None = None,
) -> Prepared:
    """Install (or reuse) the environment and working directory of a stored photon.

    ``manifest``'s blobs must already be in ``store`` (verified on entry). The
    environment and working directory are marked in use for the life of this
    process and of the server it execs (``store/locks.py``), and their last use
    noted: what ``gc`` keeps. ``installing(n)`` wraps the install of a new
    environment of ``n`` wheels (where the CLI draws its progress line).
    """
    store.hold()
    targets = [Target.parse(text) for text in manifest.targets]
    target = host_compatible(targets)
    if target is None:
        raise ServeError(
            f"{manifest.name} ({manifest.digest}) has no wheels for this machine "
            f"({Target.host()}); it was built for: {', '.join(manifest.targets)}. "
            "Rebuild it with --target for this platform"
        )
    if check_system and (missing := missing_system_dependencies(manifest.photon.system_dependency)):
        raise ServeError(
            f"{manifest.name} needs system packages that are not installed: {', '.join(missing)}; "
            f"install them with 'apt-get install -y {' '.join(missing)}', "
            "or pass --skip-system-check to serve anyway"
        )
    env, installed = ensure_environment(
        store,
        wheels=wheels_for_target(manifest, target),
        runtime=manifest.runtime,
        installing=installing,
    )
    workdir = ensure_workdir(store, manifest)
    # Until this process (the server it execs) exits, gc leaves both alone.
    store.hold_in_use(env, workdir)
    return Prepared(
        manifest=manifest, target=target, environment=env, workdir=workdir, installed=installed
    )


def missing_system_dependencies(packages: Sequence[str]) -> list[str]:
    """The Debian packages among ``packages`` that dpkg does not report as installed.

    On a system without dpkg nothing can be checked and nothing is reported.
    """
    if not packages or shutil.which("dpkg-query") is None:
        return []
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {
        line.split()[0].split(":")[0]
        for line in done.stdout.splitlines()
        if len(line.split()) > 1 and line.split()[1].startswith("ii")
    }
    return [name for name in packages if name.split(":")[0] not in installed]


def serve_command(
    prepared: Prepared, options: ServeOptions, base_env: Mapping[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that serve ``prepared`` (run from its working directory)."""
    env = {
        k: v
        for k, v in (os.environ if base_env is None else base_env).items()
        if k not in _HOST_PYTHON_VARS
    }
    env.update(options.env)
    if options.token:
        env["PHOTONPACK_TOKEN"] = options.token  # not in argv, where `ps` would show it
    python = str(environment_python(prepared.environment))
    photon = prepared.manifest.photon
    if photon.cmd is None:
        flags = options.serve_flags(prepared.manifest.entry, prepared.manifest.digest)
        return [python, *_SERVE_MODULE, *flags], env
    if options.ready_json:
        raise UsageError(
            f"{prepared.manifest.name} declares cmd {list(photon.cmd)!r}, which photonpack "
            "cannot watch for readiness: run it without --json"
        )
    return _cmd_argv(prepared, python, env), env


def _cmd_argv(prepared: Prepared, python: str, env: dict[str, str]) -> list[str]:
    """Lepton's ``cmd`` (then ``args``), with the photon's environment first on ``PATH``.

    As Lepton's platform did, the command replaces the handler server; the
    template's ``env`` defaults are set for it, since no ``init()`` will.
    """
    photon = prepared.manifest.photon
    bin_dir = str(Path(python).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", os.defpath)
    env["VIRTUAL_ENV"] = str(prepared.environment)
    template = photon.deployment_template or {}
    for name, value in (template.get("env") or {}).items():
        if value != ENV_VAR_REQUIRED:
            env.setdefault(name, value)
    argv = [*(photon.cmd or ()), *(photon.args or ())]
    found = shutil.which(argv[0], path=env["PATH"])
    if found is None:
        raise ServeError(
            f"{prepared.manifest.name} declares cmd {argv!r}, and {argv[0]!r} is found neither "
            f"in its environment ({bin_dir}) nor on PATH; add the package that provides it to "
            "requirement_dependency (or system_dependency)"
        )
    return [found, *argv[1:]]


def serve_argv(python: str, entry: str, host: str, port: int) -> list[str]:
    """The serve entry point run by ``python``: what ``run`` executes and an image's Entrypoint."""
    return [python, *_SERVE_MODULE, *ServeOptions(host=host, port=port).serve_flags(entry)]


def exec_serve(prepared: Prepared, options: ServeOptions) -> NoReturn:
    """Replace this process with the photon's server, so signals reach it directly."""
    argv, env = serve_command(prepared, options)
    os.chdir(prepared.workdir)
    os.execve(argv[0], argv, env)  # noqa: S606 - argv[0] is the verified environment's python
