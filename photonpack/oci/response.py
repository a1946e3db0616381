"""A registry's answer, and what its headers and body say."""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Response", "error_detail", "next_link", "response_with"]


@dataclass(frozen=True, kw_only=True)
class Response:
    """Status, lower-cased headers and body of one answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def response_with(raw: http.client.HTTPResponse, body: bytes) -> Response:
    """``raw``'s status and headers with ``body``."""
    return Response(
        status=raw.status, headers={k.lower(): v for k, v in raw.getheaders()}, body=body
    )


def next_link(header: str) -> str | None:
    """The path of a ``Link: <...>; rel="next"`` header (tag list pagination), or None."""
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    if not match:
        return None
    target = match.group(1)
    parsed = urllib.parse.urlsplit(target)
    return urllib.parse.urlunsplit(("", "", parsed.path, parsed.query, ""))


def error_detail(body: bytes) -> str:
    """`` (CODE: message)`` of the distribution spec's error body, or ``""``."""
    try:
        errors = json.loads(body).get("errors") or []
        first = errors[0]
        return f" ({first.get('code', '')}: {first.get('message', '')})"
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
