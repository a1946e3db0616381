"""Handlers: how a photon's method is exposed over HTTP, and how to find them on a class.

The ``@handler`` decorator records a :class:`HandlerSpec` on the method; the
app, the describe step and the client contract read them back with
:func:`handler_specs`. Nothing here needs the Photon class itself, so the
server can build routes without importing the SDK's base class.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from photonpack.serving.errors import PhotonDefinitionError

__all__ = ["F", "HandlerSpec", "handler", "handler_specs", "is_photon"]

F = TypeVar("F", bound=Callable[..., Any])

_HANDLER_ATTR = "__photon_handler__"
# Set on the Photon base class: what makes an object a photon to the server (a nested mount).
PHOTON_MARK = "__photonpack_photon__"
_METHODS = ("POST", "GET")


def is_photon(value: object) -> bool:
    """Whether ``value`` is an instance of a Photon subclass."""
    return getattr(type(value), PHOTON_MARK, False) is True


@dataclasses.dataclass(frozen=True, kw_only=True)
class HandlerSpec:
    """How one method is exposed over HTTP."""

    name: str
    path: str  # always starts with "/"
    method: str
    func: Callable[..., Any]  # the undecorated function
    example: Any = None
    use_raw_args: bool = False
    mount: bool = False

    @property
    def is_async(self) -> bool:
        """Whether the handler is a coroutine function."""
        return inspect.iscoroutinefunction(self.func)


def _normalize_path(name: str, path: str | None) -> str:
    raw = name if path is None else path
    return "/" + raw.strip("/")


def _make_handler(
    func: Callable[..., Any],
    *,
    path: str | None,
    method: str,
    example: Any,
    use_raw_args: bool,
    mount: bool,
) -> Callable[..., Any]:
    method = method.upper()
    if method not in _METHODS:
        raise PhotonDefinitionError(
            f"handler {func.__qualname__}: method must be one of {', '.join(_METHODS)}, "
            f"got {method!r}"
        )
    spec = HandlerSpec(
        name=func.__name__,
        path=_normalize_path(func.__name__, path),
        method=method,
        func=func,
        example=example,
        use_raw_args=use_raw_args,
        mount=mount,
    )
    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            self._photon_ensure_init()
            return await func(self, *args, **kwargs)

        wrapper = async_wrapper
    else:

        @functools.wraps(func)
        def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            self._photon_ensure_init()
            return func(self, *args, **kwargs)

        wrapper = sync_wrapper
    setattr(wrapper, _HANDLER_ATTR, spec)
    return wrapper


@overload
def handler(path: F, /) -> F: ...
@overload
def handler(
    path: str | None = None,
    *,
    method: str = "POST",
    example: Any = None,
    use_raw_args: bool = False,
    mount: bool = False,
) -> Callable[[F], F]: ...
def handler(
    path: Any = None,
    *,
    method: str = "POST",
    example: Any = None,
    use_raw_args: bool = False,
    mount: bool = False,
) -> Any:
    """Expose a photon method over HTTP: ``@handler``, ``@handler("name")``, ``@handler(path=...)``.

    ``path`` defaults to the method name and may be nested (``"a/b"``) or
    ``""`` for ``/``. ``method`` is ``"POST"`` (JSON body) or ``"GET"`` (query
    and ``{path}`` parameters). ``use_raw_args`` hands the signature to FastAPI
    as written; ``mount`` mounts the ASGI app or Photon the method returns.
    """
    if callable(path):
        return _make_handler(
            path, path=None, method="POST", example=None, use_raw_args=False, mount=False
        )
    if path is not None and not isinstance(path, str):
        raise PhotonDefinitionError(
            f"@handler(path) expects a string path such as 'predict', got {path!r}"
        )

    def decorate(func: F) -> F:
        return _make_handler(
            func, path=path, method=method, example=example, use_raw_args=use_raw_args, mount=mount
        )  # type: ignore[return-value]

    return decorate


def handler_specs(cls: type) -> list[HandlerSpec]:
    """Every handler of ``cls``, inherited ones included, sorted by path.

    A subclass handler of the same path wins over its parent's. A subclass
    that overrides a handler method without the decorator keeps the parent's
    route and serves its own method, as a Python override would.
    """
    by_path: dict[str, HandlerSpec] = {}
    route_of: dict[str, str] = {}  # method name -> path of the handler it defines
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            spec = getattr(value, _HANDLER_ATTR, None)
            if isinstance(spec, HandlerSpec):
                by_path[spec.path] = spec
                route_of[attr] = spec.path
            elif attr in route_of and callable(value):
                path = route_of[attr]
                by_path[path] = dataclasses.replace(by_path[path], func=value)
    return [by_path[path] for path in sorted(by_path)]
