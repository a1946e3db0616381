"""Reading a JSON object someone else wrote (a registry, a base image): one check, one message."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["load_json_object"]


def load_json_object(data: bytes) -> dict[str, Any]:
    """``data`` as a JSON object, or ``ValueError``: ``not JSON (...)`` / ``not a JSON object``."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the stack
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value
