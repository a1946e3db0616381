"""The image's config and manifest: pure functions of the photon, the base and the layers.

The config keeps the base's (its environment, history, labels) and sets how
the photon runs: as ``lepton`` (numerically, so that an orchestrator can check
``runAsNonRoot``), in ``/home/lepton``, the serve entry point on the photon's
``exposed_port`` (8080, in ``Cmd`` so that arguments after the image replace
it) — or Lepton's ``cmd`` under a PID 1 that passes signals on, ``args`` as ``Cmd`` —,
stopped with SIGTERM (the server drains and exits 0). The token is never
baked in: the server reads ``PHOTONPACK_TOKEN`` from the container's
environment. ``created`` is ``SOURCE_DATE_EPOCH`` (0 unless set) so that the
image's digest does not depend on when it was built.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any

from photonpack.archive.manifest import Manifest
from photonpack.errors import PhotonpackError
from photonpack.image.base import CONFIG_TYPE, OCI_MANIFEST, BaseImage
from photonpack.image.environment import ENV_PATH
from photonpack.image.users import HOME
from photonpack.launch import serve_argv
from photonpack.serving.deployment import ENV_VAR_REQUIRED

__all__ = [
    "INIT_PATH",
    "PORT",
    "image_config",
    "image_manifest",
    "labels",
    "source_date_epoch",
    "timestamp",
]

PORT = 8080
INIT_PATH = "opt/photon/init.py"  # PID 1 of a cmd photon (pid1.py), without the leading "/"
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LABEL_PREFIX = "dev.photonpack"


def source_date_epoch(environ: Mapping[str, str] = os.environ) -> int:
    """``SOURCE_DATE_EPOCH`` (0 unless set): the mtime and ``created`` of an image."""
    text = environ.get("SOURCE_DATE_EPOCH", "0").strip() or "0"
    if not text.isdigit():
        raise PhotonpackError(
            f"SOURCE_DATE_EPOCH must be a whole number of seconds, found {text!r}; "
            "unset it or set it to e.g. $(git log -1 --format=%ct)"
        )
    return int(text)


def timestamp(epoch: int) -> str:
    """RFC 3339 UTC, as OCI wants: ``1970-01-01T00:00:00Z``."""
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def labels(manifest: Manifest, base: BaseImage, *, epoch: int, bytecode: str) -> dict[str, str]:
    """The photon's name, digest and description, and the ``org.opencontainers.image.*`` keys."""
    found = {
        "org.opencontainers.image.title": manifest.name,
        "org.opencontainers.image.created": timestamp(epoch),
        "org.opencontainers.image.base.digest": base.digest,
        f"{LABEL_PREFIX}.photon.name": manifest.name,
        f"{LABEL_PREFIX}.photon.digest": manifest.digest,
        f"{LABEL_PREFIX}.photon.entry": manifest.entry,
        f"{LABEL_PREFIX}.image.bytecode": bytecode,
    }
    if manifest.photon.description:
        found["org.opencontainers.image.description"] = manifest.photon.description
        found[f"{LABEL_PREFIX}.photon.description"] = manifest.photon.description
    return found


def _env(base_env: Sequence[str], manifest: Manifest) -> list[str]:
    env = [item for item in base_env if not item.startswith("PATH=")]
    path = next((item[5:] for item in base_env if item.startswith("PATH=")), _DEFAULT_PATH)
    photon = manifest.photon
    defaults = [  # the deployment_template's env defaults: `podman run -e` still wins
        f"{name}={value}"
        for name, value in sorted(((photon.deployment_template or {}).get("env") or {}).items())
        if isinstance(value, str) and value != ENV_VAR_REQUIRED
    ]
    venv = [f"VIRTUAL_ENV=/{ENV_PATH}"] if photon.cmd else []
    return [f"PATH=/{ENV_PATH}/bin:{path}", *env, *venv, *defaults]


def _run_argv(manifest: Manifest, port: int) -> tuple[list[str], list[str]]:
    """``Entrypoint`` and ``Cmd``: what runs, and what ``podman run IMAGE ARG...`` replaces.

    The serve entry point's ``--port`` is the Cmd, so ``podman run IMAGE --port 9000``
    gives one ``--port``. Lepton's ``cmd`` runs under ``init.py`` (PID 1: it passes
    signals on and reaps orphans) with its ``args`` as the Cmd, as Kubernetes'
    ``command`` and ``args``; the command is found on the env-first PATH.
    """
    photon = manifest.photon
    python = f"/{ENV_PATH}/bin/python"
    if photon.cmd:
        return [python, "-I", f"/{INIT_PATH}", *photon.cmd], list(photon.args or ())
    argv = serve_argv(python, manifest.entry, "0.0.0.0", port)  # noqa: S104
    at = argv.index("--port")
    return [*argv[:at], *argv[at + 2 :]], argv[at : at + 2]


def image_config(
    manifest: Manifest,
    base: BaseImage,
    *,
    diff_ids: Sequence[str],
    history: Sequence[str],
    uid: int,
    gid: int,
    epoch: int,
    bytecode: str,
    variant: str = "",
) -> dict[str, Any]:
    """The OCI image config; ``diff_ids`` and ``history`` are the layers added to the base's.

    ``variant`` (``v7``) is the base's, else that of the archive's target the image runs.
    """
    base_config: Mapping[str, Any] = base.config.get("config") or {}
    created = timestamp(epoch)
    port = manifest.photon.exposed_port or PORT
    entrypoint, cmd = _run_argv(manifest, port)
    run = {
        "User": f"{uid}:{gid}",
        "WorkingDir": f"/{HOME}",
        "Entrypoint": entrypoint,
        **({"Cmd": cmd} if cmd else {}),
        "Env": _env(list(base_config.get("Env") or []), manifest),
        "ExposedPorts": {f"{port}/tcp": {}},
        "StopSignal": "SIGTERM",
        "Labels": {
            **(base_config.get("Labels") or {}),
            **labels(manifest, base, epoch=epoch, bytecode=bytecode),
        },
    }
    base_history = list(base.config.get("history") or [])
    return {
        "architecture": base.config.get("architecture", "amd64"),
        "os": base.config.get("os", "linux"),
        **({"variant": variant} if variant else {}),
        "created": created,
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": [*base.diff_ids, *diff_ids]},
        "history": [*base_history, *({"created": created, "created_by": h} for h in history)],
    }


def image_manifest(
    config: tuple[str, int], layers: Sequence[Mapping[str, Any]], annotations: Mapping[str, str]
) -> dict[str, Any]:
    """The OCI image manifest: the config's (digest, size), the layer descriptors."""
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": CONFIG_TYPE, "digest": config[0], "size": config[1]},
        "layers": [dict(layer) for layer in layers],
        "annotations": dict(annotations),
    }
