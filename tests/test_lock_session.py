"""The lock's one pip session is built, before pip's resolver is imported, as pip-tools would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from photonpack.lock.index import IndexSettings
from photonpack.lock.session import lock_session


def _described(session: Any) -> dict[str, Any]:
    """What a session does with a request, as far as its settings decide."""
    adapters = {
        prefix: (
            type(adapter).__name__,
            adapter.max_retries.total if hasattr(adapter, "max_retries") else None,
            getattr(getattr(adapter, "cache", None), "directory", None),
            type(getattr(adapter, "_ssl_context", None)).__name__,
        )
        for prefix, adapter in session.adapters.items()
    }
    return {
        "adapters": adapters,
        "timeout": session.timeout,
        "verify": session.verify,
        "cert": session.cert,
        "trust_env": session.trust_env,
        "headers": dict(session.headers),
        "trusted": session.pip_trusted_origins,
        "prompting": session.auth.prompting,
        "keyring": session.auth.keyring_provider,
        "index_urls": session.auth.index_urls,
    }


@pytest.mark.parametrize("with_cert", [False, True])
def test_the_lock_session_is_the_one_pip_tools_repository_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_cert: bool
) -> None:
    from piptools.repositories import PyPIRepository

    from photonpack.lock.repository import _pip_args
    from photonpack.lock.tls import pip_tls

    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # as resolve() isolates pip
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    if with_cert:
        monkeypatch.setenv("PIP_CERT", str(tmp_path / "ca.pem"))
    index = IndexSettings(
        index_url="https://user:secret@mirror.example/simple",
        extra_index_urls=("https://extra.example/simple",),
        find_links=(str(tmp_path / "wheels"),),
        pre=True,
    )
    ours = lock_session(index)
    with pip_tls():
        theirs = PyPIRepository(_pip_args(index), cache_dir=str(tmp_path / "work")).session
    assert _described(ours) == _described(theirs)
    assert _described(ours)["timeout"] == 30
