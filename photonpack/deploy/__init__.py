"""Deployments of photons: Kubernetes manifests, and the engines that apply them.

``spec.py`` checks the options, ``manifests.py`` renders the objects (pure),
``yaml.py`` writes them, ``record.py`` remembers what was deployed under
``$PHOTONPACK_HOME/deployments/``, ``podman.py`` runs them with
``podman kube play`` on one host, and ``kubernetes.py`` applies them to a
cluster through its API.
"""

from __future__ import annotations

from photonpack.deploy.errors import DeployError
from photonpack.deploy.manifests import render
from photonpack.deploy.spec import (
    DeploymentSpec,
    DeploymentTemplate,
    SecretEnv,
    parse_env,
    parse_secret,
)
from photonpack.deploy.yaml import dump_all

__all__ = [
    "DeployError",
    "DeploymentSpec",
    "DeploymentTemplate",
    "SecretEnv",
    "dump_all",
    "parse_env",
    "parse_secret",
    "render",
]
