"""Fetch the bytes behind a URL a caller sent in place of file content (as Lepton did)."""

from __future__ import annotations

import urllib.request

from photonpack.serving.errors import FileContentError

__all__ = ["download", "is_url"]

DOWNLOAD_TIMEOUT = 60.0  # seconds without a byte before the read is given up


def is_url(text: str) -> bool:
    """Whether ``text`` is an http(s) URL."""
    return text.startswith(("http://", "https://"))


def download(url: str) -> bytes:
    """The body at ``url``; FileContentError names the URL when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as answer:  # noqa: S310 - http(s) only
            data: bytes = answer.read()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FileContentError(
            f"cannot download the file content from {url}: {reason}; send the bytes "
            "(base64 or a data: URI) instead, or make the URL reachable from the server"
        ) from exc
    return data
