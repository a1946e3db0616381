"""Registry logins where podman, skopeo, docker and ORAS keep them.

The files, in the order they are read (``containers-auth.json(5)``, then docker's)::

    $REGISTRY_AUTH_FILE
    $XDG_RUNTIME_DIR/containers/auth.json
    $XDG_CONFIG_HOME/containers/auth.json    (default ~/.config/containers/auth.json)
    $DOCKER_CONFIG/config.json               (default ~/.docker/config.json)

Each is JSON: ``auths`` maps a registry (``host[:port]``, or an ``https://`` URL
as docker writes for Docker Hub) to ``{"auth": base64("user:password")}``;
``credHelpers`` maps a registry to a helper name and ``credsStore`` names the
helper for every other registry. A helper is the program
``docker-credential-<name>`` speaking docker's protocol: ``get`` reads the
server on stdin and prints ``{"ServerURL", "Username", "Secret"}``; ``store``
reads that JSON; ``erase`` reads the server. The first file that knows the
registry answers. ``photonpack login`` writes where podman does
(``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``, else
docker's file), keeping every other key of the file as it was.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photonpack._fs import write_atomic
from photonpack.errors import RegistryError
from photonpack.oci.credentials import Credentials

__all__ = ["AuthFiles", "CredentialHelper"]

# A helper is a local program; it answers at once or it is broken.
_HELPER_TIMEOUT = 30.0
# Docker Hub is written under this key by `docker login`.
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")


@dataclass(frozen=True, kw_only=True)
class CredentialHelper:
    """``docker-credential-<name>``: docker's credential-helper protocol on stdin/stdout."""

    name: str

    @property
    def program(self) -> str:
        return f"docker-credential-{self.name}"

    def get(self, registry: str) -> Credentials | None:
        """The login the helper holds for ``registry``, or None if it has none."""
        done = self._run("get", registry, missing_ok=True)
        if done is None:
            return None
        try:
            answer = json.loads(done)
            username, secret = answer["Username"], answer["Secret"]
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(
                f"{self.program} answered `get {registry}` with something other than "
                'the JSON {"Username": ..., "Secret": ...} of the credential-helper protocol'
            ) from exc
        if not isinstance(username, str) or not isinstance(secret, str) or not secret:
            return None
        return Credentials(username=username, password=secret)

    def store(self, registry: str, credentials: Credentials) -> None:
        document = {
            "ServerURL": registry,
            "Username": credentials.username,
            "Secret": credentials.password,
        }
        self._run("store", json.dumps(document))

    def erase(self, registry: str) -> None:
        self._run("erase", registry, missing_ok=True)

    def _run(self, action: str, stdin: str, *, missing_ok: bool = False) -> str | None:
        binary = shutil.which(self.program)
        if binary is None:
            raise RegistryError(
                f"the auth file names the credential helper {self.name!r}, but "
                f"{self.program} is not on PATH: install it, or remove it from the auth file"
            )
        try:
            done = subprocess.run(
                [binary, action],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=_HELPER_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RegistryError(f"cannot run {self.program} {action}: {exc}") from exc
        if done.returncode != 0:
            said = (done.stdout.strip() or done.stderr.strip()).splitlines()
            if missing_ok and said and "credentials not found" in said[0].lower():
                return None
            raise RegistryError(
                f"{self.program} {action} failed (exit {done.returncode}): "
                f"{said[0] if said else 'no message'}"
            )
        return done.stdout


class AuthFiles:
    """The auth files of one environment (``os.environ`` unless given), read on demand."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env

    def paths(self) -> list[Path]:
        """Every auth file photonpack reads, in order (whether or not it exists)."""
        env, home = self._env, Path(self._env.get("HOME") or Path.home())
        paths = []
        if env.get("REGISTRY_AUTH_FILE"):
            paths.append(Path(env["REGISTRY_AUTH_FILE"]))
        if env.get("XDG_RUNTIME_DIR"):
            paths.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        paths.append(config / "containers" / "auth.json")
        paths.append(Path(env.get("DOCKER_CONFIG") or home / ".docker") / "config.json")
        return paths

    def login_path(self) -> Path:
        """Where ``photonpack login`` writes: podman's choice, else docker's file."""
        env = self._env
        if env.get("REGISTRY_AUTH_FILE"):
            return Path(env["REGISTRY_AUTH_FILE"])
        if env.get("XDG_RUNTIME_DIR"):
            return Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
        return self.paths()[-1]

    def lookup(self, registry: str) -> Credentials | None:
        """The login for ``registry`` from the first file that knows it, or None."""
        for path in self.paths():
            document = _read(path)
            if document is None:
                continue
            helper = _helper_for(document, registry)
            if helper is not None and helper[1]:
                return helper[0].get(registry)
            entry = _entry(document, registry)
            if entry is not None and (found := _decode(entry, registry, path)) is not None:
                return found
            # docker leaves an empty entry in ``auths`` for logins kept by ``credsStore``.
            if helper is not None and (found := helper[0].get(registry)) is not None:
                return found
        return None

    def store(self, registry: str, credentials: Credentials) -> Path | str:
        """Record ``credentials`` for ``registry``: in its helper if one is set, else the file.

        Returns where they went: the file's path, or the helper's program name.
        """
        path = self.login_path()
        document = _read(path) or {}
        helper = _helper_for(document, registry)
        if helper is not None:
            helper[0].store(registry, credentials)
            return helper[0].program
        auths = document.setdefault("auths", {})
        if not isinstance(auths, dict):
            raise _malformed(path, "auths is not an object")
        raw = f"{credentials.username}:{credentials.password}".encode()
        auths[registry] = {"auth": base64.b64encode(raw).decode("ascii")}
        _write(path, document)
        return path

    def remove(self, registry: str) -> list[str]:
        """Forget the login for ``registry`` in every file and helper; where it was removed."""
        removed: list[str] = []
        for path in self.paths():
            document = _read(path)
            if document is None:
                continue
            helper = _helper_for(document, registry)
            if helper is not None and helper[0].get(registry) is not None:
                helper[0].erase(registry)
                removed.append(helper[0].program)
            auths = document.get("auths")
            if isinstance(auths, dict):
                keys = [key for key in auths if _normalise(key) == _normalise(registry)]
                for key in keys:
                    del auths[key]
                if keys:
                    _write(path, document)
                    removed.append(str(path))
        return removed


def _read(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryError(f"cannot read the auth file {path}: {exc.strerror}") from exc
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _malformed(path, f"not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise _malformed(path, "not a JSON object")
    return document


def _write(path: Path, document: dict[str, Any]) -> None:
    data = (json.dumps(document, indent="\t", sort_keys=True) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, data, mode=0o600)
    except OSError as exc:
        raise RegistryError(f"cannot write the auth file {path}: {exc.strerror}") from exc


def _malformed(path: Path, what: str) -> RegistryError:
    return RegistryError(
        f"the auth file {path} is malformed: {what}; fix it or log in again with `photonpack login`"
    )


def _normalise(key: str) -> str:
    """``https://host/v1/`` -> ``host``; Docker Hub's names -> ``docker.io``."""
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host in _DOCKER_HUB_KEYS or key in _DOCKER_HUB_KEYS else host


def _entry(document: Mapping[str, Any], registry: str) -> Mapping[str, Any] | None:
    auths = document.get("auths")
    if not isinstance(auths, dict):
        return None
    if isinstance(auths.get(registry), dict):
        return auths[registry]  # type: ignore[no-any-return]
    for key, value in sorted(auths.items()):
        if _normalise(key) == _normalise(registry) and isinstance(value, dict):
            return value
    return None


def _helper_for(document: Mapping[str, Any], registry: str) -> tuple[CredentialHelper, bool] | None:
    """The helper for ``registry``: (helper, True) if named for it, (helper, False) if default."""
    helpers = document.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _normalise(key) == _normalise(registry) and isinstance(name, str) and name:
                return CredentialHelper(name=name), True
    store = document.get("credsStore")
    if isinstance(store, str) and store:
        return CredentialHelper(name=store), False
    return None


def _decode(entry: Mapping[str, Any], registry: str, path: Path) -> Credentials | None:
    auth = entry.get("auth")
    if not auth:
        return None
    try:
        username, sep, password = base64.b64decode(str(auth), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _malformed(path, f"the login of {registry} is not base64 of user:password") from exc
    if not sep or not username:
        raise _malformed(path, f"the login of {registry} is not base64 of user:password")
    return Credentials(username=username, password=password)
