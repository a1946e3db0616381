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
_OPTIONS = frozenset(
    {
        "example",
        "examples",
        "use_raw_args",
        "mount",
        "cancel_on_disconnect",
        "max_batch_size",
        "max_wait_time",
        "include_in_schema",
        "use_router_if_possible",
    }
)


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
    examples: Any = None  # Lepton's named OpenAPI examples: a list, or a dict of name -> example
    use_raw_args: bool = False
    mount: bool = False
    cancel_on_disconnect: float | None = None  # seconds between checks of the connection
    max_batch_size: int | None = None
    max_wait_time: float | None = None  # seconds a batch waits to fill
    include_in_schema: bool = True

    @property
    def is_async(self) -> bool:
        """Whether the handler is a coroutine function."""
        return inspect.iscoroutinefunction(self.func)


def _normalize_path(name: str, path: str | None) -> str:
    raw = name if path is None else path
    return "/" + raw.strip("/")


def _positive(where: str, option: str, value: object, kind: type[int] | type[float]) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, kind | int) or not value > 0
    ):
        raise PhotonDefinitionError(
            f"handler {where}: {option} must be a positive {kind.__name__}, got {value!r}"
        )


def _check_options(where: str, spec: HandlerSpec) -> None:
    """Lepton's rules for the handler options, with messages that say what to write."""
    _positive(where, "cancel_on_disconnect", spec.cancel_on_disconnect, float)
    _positive(where, "max_wait_time", spec.max_wait_time, float)
    _positive(where, "max_batch_size", spec.max_batch_size, int)
    if spec.cancel_on_disconnect is not None and spec.use_raw_args:
        raise PhotonDefinitionError(
            f"handler {where}: cancel_on_disconnect cannot be combined with use_raw_args "
            "(as in Lepton); drop one of them"
        )
    if (spec.max_batch_size is None) != (spec.max_wait_time is None):
        raise PhotonDefinitionError(
            f"handler {where}: batching needs both max_batch_size and max_wait_time, "
            f"got max_batch_size={spec.max_batch_size!r}, max_wait_time={spec.max_wait_time!r}"
        )
    if spec.max_batch_size is not None and (spec.use_raw_args or spec.mount):
        raise PhotonDefinitionError(
            f"handler {where}: max_batch_size cannot be combined with use_raw_args or mount; "
            "drop one of them"
        )
    if spec.max_batch_size == 1:
        raise PhotonDefinitionError(
            f"handler {where}: max_batch_size must be greater than 1 (as in Lepton); "
            "drop it to call the handler once per request"
        )


def _make_handler(
    func: Callable[..., Any],
    *,
    path: str | None,
    method: str,
    options: dict[str, Any],
) -> Callable[..., Any]:
    method = method.upper()
    if method not in _METHODS:
        raise PhotonDefinitionError(
            f"handler {func.__qualname__}: method must be one of {', '.join(_METHODS)}, "
            f"got {method!r}"
        )
    # use_router_if_possible: Lepton's switch between a router and an app route;
    # photonpack always routes on the app, so it changes nothing and is accepted.
    options.pop("use_router_if_possible", None)
    spec = HandlerSpec(
        name=func.__name__,
        path=_normalize_path(func.__name__, path),
        method=method,
        func=func,
        **options,
    )
    _check_options(func.__qualname__, spec)
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
    examples: Any = None,
    use_raw_args: bool = False,
    mount: bool = False,
    cancel_on_disconnect: float | None = None,
    max_batch_size: int | None = None,
    max_wait_time: float | None = None,
    include_in_schema: bool = True,
    use_router_if_possible: bool = True,
) -> Callable[[F], F]: ...
def handler(path: Any = None, *, method: str = "POST", **options: Any) -> Any:
    """Expose a photon method over HTTP: ``@handler``, ``@handler("name")``, ``@handler(path=...)``.

    ``path`` defaults to the method name and may be nested (``"a/b"``) or
    ``""`` for ``/``. ``method`` is ``"POST"`` (JSON body) or ``"GET"`` (query
    and ``{path}`` parameters). ``use_raw_args`` hands the signature to FastAPI
    as written; ``mount`` mounts the app (ASGI, WSGI, gradio) or Photon the
    method returns. Lepton's options: ``cancel_on_disconnect=seconds`` stops
    the call with a 503 when the client goes away; ``max_batch_size`` with
    ``max_wait_time`` gathers concurrent calls into one call with a list per
    parameter, whose list result is split back; ``examples``;
    ``include_in_schema``; ``use_router_if_possible`` (no effect here).
    """
    unknown = set(options) - _OPTIONS
    if unknown:
        raise PhotonDefinitionError(
            f"@handler got unknown option(s) {', '.join(sorted(unknown))}; "
            f"the options are {', '.join(sorted(_OPTIONS))}"
        )
    if callable(path):
        return _make_handler(path, path=None, method="POST", options={})
    if path is not None and not isinstance(path, str):
        raise PhotonDefinitionError(
            f"@handler(path) expects a string path such as 'predict', got {path!r}"
        )

    def decorate(func: F) -> F:
        return _make_handler(func, path=path, method=method, options=dict(options))  # type: ignore[return-value]

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
