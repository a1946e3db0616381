"""Lepton's ``deployment_template``: the environment a photon expects, checked and applied.

A photon declares ``{"resource_shape": "cpu.small", "env": {"NAME": "default"},
"secret": ["TOKEN_NAME"]}``. Before ``init()`` runs, every ``env`` default is
set unless the variable is already set; a variable whose default is
:data:`ENV_VAR_REQUIRED` and a secret that is not in the environment are
warned about in the server log (the photon may read them later or not at all).
The template is checked as Lepton checked it when the class is defined, and
recorded in the manifest for deployments and images.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

from photonpack.serving.errors import PhotonDefinitionError

__all__ = [
    "ENV_VAR_REQUIRED",
    "RESERVED_ENV_NAMES",
    "VALID_SHAPES",
    "apply_template",
    "check_template",
]

logger = logging.getLogger("photonpack")

# Lepton's marker for "the deployer must give this variable": never set as a value.
ENV_VAR_REQUIRED = "PLEASE_ENTER_YOUR_ENV_VARIABLE_HERE_(LEPTON_ENV_VAR_REQUIRED)"
# Set by Lepton's platform itself; a template may not declare them.
RESERVED_ENV_NAMES = frozenset(
    {
        "LEPTON_WORKSPACE_ID",
        "LEPTON_DEPLOYMENT_NAME",
        "LEPTON_PHOTON_NAME",
        "LEPTON_PHOTON_ID",
        "LEPTON_RESOURCE_ACCELERATOR_TYPE",
    }
)
# The shapes of Lepton 0.27.3; another shape loads with a warning (a new platform's name).
VALID_SHAPES = (
    "cpu.small",
    "cpu.medium",
    "cpu.large",
    "gpu.t4",
    "gpu.a10",
    "gpu.a10.6xlarge",
    "gpu.a100-40gb",
    "gpu.2xa100-40gb",
    "gpu.4xa100-40gb",
    "gpu.8xa100-40gb",
    "gpu.a100-80gb",
    "gpu.2xa100-80gb",
    "gpu.4xa100-80gb",
    "gpu.8xa100-80gb",
    "gpu.h100-pcie",
    "gpu.h100-sxm",
    "gpu.2xh100-sxm",
    "gpu.4xh100-sxm",
    "gpu.8xh100-sxm",
)
_KEYS = ("resource_shape", "env", "secret")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_template(owner: str, template: object, warning: type[Warning]) -> dict[str, Any]:
    """The template in its recorded form; raises when it cannot be read as Lepton's."""
    where = f"{owner}.deployment_template"
    if not isinstance(template, Mapping):
        raise PhotonDefinitionError(
            f'{where} must be a dict such as {{"env": {{"NAME": "value"}}}}, got {template!r}'
        )
    unknown = sorted(str(k) for k in template if k not in _KEYS)
    if unknown:
        raise PhotonDefinitionError(
            f"{where} has unknown key(s) {', '.join(unknown)}; its keys are {', '.join(_KEYS)}"
        )
    shape = template.get("resource_shape")
    if shape is not None and not isinstance(shape, str):
        raise PhotonDefinitionError(f"{where}.resource_shape must be a string, got {shape!r}")
    if shape is not None and shape not in VALID_SHAPES:
        warnings.warn(
            f"{where}.resource_shape {shape!r} is not one of Lepton's shapes "
            f"({', '.join(VALID_SHAPES[:3])}, ...); it is recorded as written",
            warning,
            stacklevel=4,
        )
    env = template.get("env") or {}
    if not isinstance(env, Mapping):
        raise PhotonDefinitionError(f"{where}.env must be a dict of name -> value, got {env!r}")
    for name, value in env.items():
        _check_name(where, "env", name)
        if not isinstance(value, str):
            raise PhotonDefinitionError(
                f"{where}.env[{name!r}] must be a string (environment values are text), "
                f"got {value!r}; write {str(value)!r}"
            )
    secrets = template.get("secret") or []
    if isinstance(secrets, str) or not isinstance(secrets, list | tuple):
        raise PhotonDefinitionError(
            f"{where}.secret must be a list of secret names, got {secrets!r}"
        )
    for name in secrets:
        _check_name(where, "secret", name)
    return {"resource_shape": shape, "env": dict(env), "secret": list(secrets)}


def _check_name(where: str, key: str, name: object) -> None:
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise PhotonDefinitionError(
            f"{where}.{key}: {name!r} is not an environment variable name "
            "(letters, digits and _, not starting with a digit)"
        )
    if name in RESERVED_ENV_NAMES:
        raise PhotonDefinitionError(
            f"{where}.{key}: {name} is reserved (Lepton's platform sets it); choose another name"
        )


def apply_template(owner: str, template: Mapping[str, Any] | None) -> None:
    """Set the template's ``env`` defaults not already set; warn of what is still missing."""
    if not template:
        return
    for name, value in (template.get("env") or {}).items():
        if name in os.environ:
            continue
        if value == ENV_VAR_REQUIRED:
            logger.warning(
                "%s: environment variable %s is required by its deployment_template and is "
                "not set; set it (photonpack run --env %s=...) before the photon reads it",
                owner,
                name,
                name,
            )
            continue
        os.environ[name] = value
    for name in template.get("secret") or []:
        if name not in os.environ:
            logger.warning(
                "%s: secret %s named by its deployment_template is not in the environment; "
                "set it before the photon reads it",
                owner,
                name,
            )
