"""pip's TLS trust, set up once per lock instead of once per connection.

pip verifies an index's certificate with ``truststore``: on Linux an OpenSSL
context holding the system's default CAs, to which pip adds certifi's bundle.
truststore's context loads the system CAs again at every new connection and
holds one lock across each TLS handshake, and urllib3 loads the CA bundle
again at every connection too. The lock's fetching threads open a dozen
connections at once; they queued behind that lock and reloaded the same
certificates, which was most of the first second of a cold lock.

Where truststore itself uses OpenSSL (not on Windows or macOS, whose system
verifiers need its lock), :func:`pip_tls` gives pip's session a plain OpenSSL
context configured once with the same trust: truststore's own choice of system
CAs, certifi's bundle, and whatever else pip or urllib3 loads into it (``--cert``,
``PIP_CERT``), each loaded once. Verification is OpenSSL's in both cases
(``CERT_REQUIRED`` and the host name checked), so the same certificates pass.
"""

from __future__ import annotations

import contextlib
import os
import platform
import ssl
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["OnceContext", "pip_tls"]


class OnceContext(ssl.SSLContext):
    """An OpenSSL client context that loads each CA location once, however often asked."""

    _loaded: set[tuple[Any, ...]]
    _loading: threading.Lock

    def load_verify_locations(
        self, cafile: Any = None, capath: Any = None, cadata: Any = None
    ) -> None:
        key = (
            os.fspath(cafile) if cafile is not None else None,
            os.fspath(capath) if capath is not None else None,
            bytes(cadata) if isinstance(cadata, bytes | bytearray | memoryview) else cadata,
        )
        with self._loading:
            if key in self._loaded:
                return
            super().load_verify_locations(cafile, capath, cadata)
            self._loaded.add(key)


def once_context() -> OnceContext:
    """A client context with the trust pip's truststore context has on this platform."""
    from pip._vendor import certifi
    from pip._vendor.truststore._openssl import _configure_context

    context = OnceContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, host names checked
    context._loaded = set()
    context._loading = threading.Lock()
    with _configure_context(context):  # the system's CAs, as truststore loads them
        pass
    context.load_verify_locations(certifi.where())  # as pip adds to truststore's
    return context


@contextlib.contextmanager
def pip_tls() -> Iterator[None]:
    """pip sessions built while this lasts use one :class:`OnceContext` (OpenSSL platforms)."""
    if platform.system() in ("Windows", "Darwin"):
        yield
        return
    from pip._internal.cli import index_command

    try:
        original = index_command._create_truststore_ssl_context
        context = once_context()
    except (ImportError, AttributeError):  # another pip: its own context, as it builds it
        yield
        return
    index_command._create_truststore_ssl_context = lambda: context  # type: ignore[assignment]
    try:
        yield
    finally:
        index_command._create_truststore_ssl_context = original
