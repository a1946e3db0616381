"""How the client turns a photon's OpenAPI paths into attributes and keyword-only calls.

``/math/square`` is ``c.math.square``, ``-`` and ``.`` become ``_``, a Python
keyword gets a trailing ``_`` (``/run/with/slashes`` is ``c.run.with_.slashes``),
``{name}`` segments are arguments, and a path served with both POST and GET
calls POST, with ``.post()`` and ``.get()`` to choose: all as Lepton's client did.
"""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable
from typing import Any

from photonpack.serving.client_errors import ClientArgumentError

__all__ = ["Call", "Node", "attribute_name", "attribute_path", "operation_params"]

# (method, path, arguments, stream option) -> the decoded answer
Send = Callable[[str, str, dict[str, Any], bool | None], Any]


def attribute_name(segment: str) -> str:
    """The attribute for one path segment, as Lepton's client named it."""
    if keyword.iskeyword(segment):
        segment += "_"
    return segment.replace("-", "_").replace(".", "_")


def attribute_path(path: str) -> list[str]:
    """The attribute names leading to ``path``; ``{name}`` segments are arguments, not names."""
    segments = [s for s in path.strip("/").split("/") if s and not s.startswith("{")]
    return [attribute_name(s) for s in segments]


class Call:
    """One handler (a path and an HTTP method), callable with keyword arguments only."""

    def __init__(
        self, send: Send, method: str, path: str, operation: dict[str, Any], schemas: dict[str, Any]
    ) -> None:
        params = operation_params(operation, schemas)
        self._send = send
        self._method = method
        self._path = path
        self._names = [name for name, _, _ in params]
        self.__name__ = ".".join(attribute_path(path)) or "root"
        signature = ", ".join(f"{n}: {t}" + ("" if req else " = ...") for n, req, t in params)
        summary = operation.get("description") or operation.get("summary") or ""
        self.__doc__ = f"{method} {path}({'*, ' if params else ''}{signature})"
        if summary:
            self.__doc__ += "\n\n" + summary
        self.__signature__ = inspect.Signature(
            [
                inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=_default(required))
                for n, required, _ in params
            ]
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            example = ", ".join(f"{n}=..." for n in self._names[: len(args)]) or "..."
            raise ClientArgumentError(
                f"{self.__name__}() takes keyword arguments only, got {len(args)} positional; "
                f"call it as {self.__name__}({example})"
            )
        # A handler's own `stream` parameter is the handler's; otherwise it is the client's option.
        stream = None if "stream" in self._names else kwargs.pop("stream", None)
        return self._send(self._method, self._path, kwargs, stream)

    def __repr__(self) -> str:
        return f"<photon handler {self._method} {self._path}>"


class Node:
    """One level of the path tree: ``c.math`` in ``c.math.square()``; callable if a handler."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._children: dict[str, Node] = {}
        self._calls: dict[str, Call] = {}

    # Its own methods are private: every public name is left to the photon's paths.
    def _child(self, name: str) -> Node:
        """The node below this one named ``name``, made if missing."""
        if name not in self._children:
            self._children[name] = Node(f"{self._path}/{name}")
        return self._children[name]

    def _add(self, call: Call, method: str) -> None:
        """Serve ``method`` here with ``call``; the first call of a method wins."""
        self._calls.setdefault(method, call)
        default = self._default()
        self.__doc__ = default.__doc__
        self.__signature__ = default.__signature__

    def _default(self) -> Call:
        return self._calls.get("POST") or self._calls["GET"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._calls:
            raise ClientArgumentError(
                f"{self._path or '/'} is not a handler of the photon; "
                f"below it: {', '.join(sorted(self._children)) or 'nothing'}"
            )
        return self._default()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        call = self.__dict__["_calls"].get(name.upper()) if name in ("get", "post") else None
        if call is not None:
            return call
        child = self.__dict__["_children"].get(name)
        if child is not None:
            return child
        raise AttributeError(f"the photon has no handler under {self._path}/{name}")

    def __dir__(self) -> list[str]:
        return sorted([*self._children, *(m.lower() for m in self._calls)])

    def __repr__(self) -> str:
        methods = "/".join(sorted(self._calls))
        return f"<photon {'handler ' + methods if methods else 'path'} {self._path or '/'}>"


def _default(required: bool) -> Any:
    return inspect.Parameter.empty if required else None


def operation_params(
    operation: dict[str, Any], schemas: dict[str, Any]
) -> list[tuple[str, bool, str]]:
    """(name, required, type) of an operation's inputs: query/path parameters and body fields."""
    params = [
        (p["name"], bool(p.get("required")), _type_name(p.get("schema", {})))
        for p in operation.get("parameters", [])
    ]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content:
        schema = _resolve(content.get("schema", {}), schemas)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            params.append((name, name in required, _type_name(_resolve(prop, schemas))))
    return params


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in schema:  # an optional body: Model | None
        for option in schema["anyOf"]:
            if "$ref" in option:
                return _resolve(option, schemas)
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        resolved: dict[str, Any] = schemas.get(ref.rsplit("/", 1)[1], {})
        return resolved
    return schema


def _type_name(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return str(schema["type"])
    if "anyOf" in schema:
        return " | ".join(_type_name(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[1]
    return "any"
