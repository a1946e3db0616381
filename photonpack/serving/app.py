"""Turn a photon into a FastAPI app, and describe its handler contract.

Each handler becomes one route whose request model comes from its signature.
The return value is the JSON body, ``None`` gives 204, a ``Response`` passes
through, ``HTTPException`` keeps its status, anything else raised gives 500
with a JSON ``{"error": ...}`` body; the traceback goes to the server log.
"""

from __future__ import annotations

import inspect
import json
import logging
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Body, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount

from photonpack.__about__ import __version__
from photonpack.serving.calls import caller
from photonpack.serving.docs import add_docs
from photonpack.serving.errors import (
    PhotonDefinitionError,
    PhotonpackError,
    ServeError,
    failure_location,
)
from photonpack.serving.guard import Guard
from photonpack.serving.handler import HandlerSpec, handler_specs, is_photon
from photonpack.serving.mounts import WSGIApp, check_asgi, is_gradio, is_wsgi
from photonpack.serving.operations import Metrics, Queue, allowed_origins

if TYPE_CHECKING:
    from photonpack.serving.photon import Photon

__all__ = ["DEFAULT_MAX_BODY_BYTES", "MAX_ECHO_CHARS", "build_app", "describe"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# A 422 shows the input it refused up to this many characters (of its JSON):
# enough to see the mistake, never the whole of a large body sent back.
MAX_ECHO_CHARS = 1000

logger = logging.getLogger("photonpack")


def build_app(
    photon: Photon,
    *,
    token: str | None = None,
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    init: bool = True,
    operations: bool = True,
) -> FastAPI:
    """The FastAPI app serving ``photon``; runs its ``init()`` first unless ``init=False``.

    Mounted handlers are resolved once ``init()`` has run (here, or before, as
    :func:`photonpack.serving.server.serve` does). With ``init=False`` on a new
    photon nothing of it runs: that is how :func:`describe` reads the contract
    at build time. ``operations`` adds ``/livez``, ``/queue-length``,
    ``/metrics`` and CORS (:mod:`photonpack.serving.operations`).
    """
    cls = type(photon)
    if init:
        photon._photon_ensure_init()
    app = FastAPI(
        title=photon.name,
        description=_class_doc(cls) or "",
        version=__version__,
        docs_url=None,  # FastAPI's pages load their assets from CDNs; these serve them locally
        redoc_url=None,
    )
    add_docs(app)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
    specs = handler_specs(cls)
    queue = Queue()
    ready = photon.__dict__.get("_photon_state") == "ready"
    for spec in specs:
        if spec.mount:
            if ready:
                _mount(app, photon, spec)
            continue
        _add_route(app, photon, spec, queue)
    taken = {(s.path, s.method) for s in specs}
    if ("/healthz", "GET") not in taken:
        app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    if operations:
        _add_operations(app, specs, queue, taken)
    if token is not None or max_body_bytes is not None:
        app.add_middleware(Guard, token=token, max_body_bytes=max_body_bytes)
    if operations:
        origins = allowed_origins()
        if origins is not None:  # outside the guard: a browser's preflight carries no token
            app.add_middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["*"],
                allow_headers=["*"],
                allow_credentials=True,
            )
        app.add_middleware(Metrics, routes=[s.path for s in specs], queue=queue)
    return app


async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


def _add_operations(
    app: FastAPI, specs: list[HandlerSpec], queue: Queue, taken: set[tuple[str, str]]
) -> None:
    """Lepton's ``/livez`` and ``/queue-length``, unless the photon serves those paths."""

    async def queue_length() -> int:
        return queue.length

    if ("/livez", "GET") not in taken:
        app.add_api_route("/livez", _healthz, methods=["GET"], include_in_schema=False)
    if ("/queue-length", "GET") not in taken:
        app.add_api_route("/queue-length", queue_length, methods=["GET"], include_in_schema=False)


def describe(photon_cls: type[Photon]) -> dict[str, Any]:
    """The handler contract of ``photon_cls``, as the manifest records it (runs no ``init()``)."""
    photon = photon_cls()
    openapi: dict[str, Any] | None
    try:
        openapi = build_app(photon, init=False, max_body_bytes=None, operations=False).openapi()
    except Exception:  # the manifest records null when capture fails
        logger.warning("could not capture the OpenAPI schema of %s", photon.name, exc_info=True)
        openapi = None
    return {
        "name": photon.name,
        "description": _class_doc(photon_cls),
        "handlers": [_describe_handler(photon_cls, spec) for spec in handler_specs(photon_cls)],
        "openapi": openapi,
        "photon": {
            "requirement_dependency": list(photon_cls.requirement_dependency),
            "system_dependency": list(photon_cls.system_dependency),
            "image": photon_cls.image,
            "handler_max_concurrency": photon_cls.handler_max_concurrency,
            "handler_timeout": photon_cls.handler_timeout,
            "description": _class_doc(photon_cls),
            **_lepton_deployment(photon_cls),
        },
    }


def _lepton_deployment(photon_cls: type[Photon]) -> dict[str, Any]:
    """Lepton's deployment attributes the photon sets, for the manifest (none: no keys)."""
    recorded: dict[str, Any] = {}
    if photon_cls._photon_template is not None:
        recorded["deployment_template"] = photon_cls._photon_template
    for attr in ("cmd", "args"):
        value = getattr(photon_cls, attr)
        if value is not None:
            recorded[attr] = list(value)
    for attr in ("exposed_port", "health_check_liveness_tcp_port"):
        if getattr(photon_cls, attr) is not None:
            recorded[attr] = getattr(photon_cls, attr)
    return recorded


def _describe_handler(cls: type[Photon], spec: HandlerSpec) -> dict[str, Any]:
    params, hints = _parameters(cls, spec)
    returns = hints.get("return", inspect.Parameter.empty)
    return {
        "name": spec.name,
        "path": spec.path,
        "method": spec.method,
        "mount": spec.mount,
        "description": _doc(spec.func),
        "parameters": [
            {
                "name": p.name,
                "required": p.default is inspect.Parameter.empty,
                "schema": _schema(hints.get(p.name, Any)),
            }
            for p in params
            if p.kind is not p.VAR_KEYWORD
        ],
        "returns": None if spec.mount or returns is inspect.Parameter.empty else _schema(returns),
    }


def _schema(annotation: Any) -> dict[str, Any]:
    try:
        return TypeAdapter(annotation).json_schema()
    except Exception:  # noqa: BLE001 - an arbitrary type simply has no JSON schema
        return {}


def _class_doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) and doc.strip() else None


def _doc(func: Callable[..., Any]) -> str | None:
    doc = func.__doc__
    return inspect.cleandoc(doc) if doc and doc.strip() else None


def _parameters(
    cls: type[Photon], spec: HandlerSpec
) -> tuple[list[inspect.Parameter], dict[str, Any]]:
    """The handler's parameters (without ``self``) and its resolved type hints."""
    where = f"{cls.__name__}.{spec.name}"
    try:
        hints = typing.get_type_hints(spec.func, include_extras=True)
    except Exception as exc:
        raise PhotonDefinitionError(
            f"{where}: its type hints cannot be resolved ({type(exc).__name__}: {exc}); "
            "import every type its annotations name"
        ) from exc
    params = list(inspect.signature(spec.func).parameters.values())[1:]
    for p in params:
        if p.kind is p.VAR_POSITIONAL and not spec.use_raw_args:
            raise PhotonDefinitionError(
                f"{where}: *{p.name} cannot become request fields; "
                "name each parameter, or take **kwargs for the extra JSON fields"
            )
        if p.kind is p.VAR_KEYWORD and not spec.use_raw_args and spec.method != "POST":
            raise PhotonDefinitionError(
                f"{where}: **{p.name} takes the extra fields of a JSON body, and a "
                f"{spec.method} handler has none; name each query parameter, or use POST"
            )
        if p.kind is p.VAR_KEYWORD and spec.max_batch_size is not None:
            raise PhotonDefinitionError(
                f"{where}: a batched handler (max_batch_size) cannot take **{p.name}; "
                "name each parameter"
            )
    return params, hints


# The endpoint's own parameter for the request (cancel_on_disconnect): a name
# no handler parameter can clash with, as it is not a valid request field.
_REQUEST = "photonpack__request"


def _add_route(app: FastAPI, photon: Photon, spec: HandlerSpec, queue: Queue) -> None:
    cls = type(photon)
    params, hints = _parameters(cls, spec)
    call = caller(photon, spec, queue)
    endpoint_params: list[inspect.Parameter]
    if spec.use_raw_args:
        endpoint_params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params]

        async def endpoint(**kwargs: Any) -> Response:
            return await call(kwargs, None)

    elif spec.method == "GET":
        endpoint_params = [_query_param(spec, p, hints) for p in params]

        async def endpoint(**kwargs: Any) -> Response:
            request = kwargs.pop(_REQUEST, None)
            return await call(kwargs, request)

    else:
        endpoint_params, names = _body_param(cls, spec, params, hints)

        async def endpoint(**kwargs: Any) -> Response:
            request = kwargs.pop(_REQUEST, None)
            body = kwargs.get("body")
            if body is None:
                return await call({}, request)
            extra = body.model_extra or {}  # **kwargs: the JSON fields no parameter names
            return await call({**{n: getattr(body, n) for n in names}, **extra}, request)

    if spec.cancel_on_disconnect is not None:
        endpoint_params.append(
            inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        )
    endpoint.__signature__ = inspect.Signature(endpoint_params)  # type: ignore[attr-defined]
    app.add_api_route(
        spec.path,
        endpoint,
        methods=[spec.method],
        name=spec.name,
        summary=spec.name,
        description=_doc(spec.func) or "",
        response_model=_response_model(hints.get("return")),
        include_in_schema=spec.include_in_schema,
    )


def _query_param(
    spec: HandlerSpec, p: inspect.Parameter, hints: dict[str, Any]
) -> inspect.Parameter:
    default = ... if p.default is inspect.Parameter.empty else p.default
    where = Path(...) if "{" + p.name + "}" in spec.path else Query(default)
    return inspect.Parameter(
        p.name, inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, Any), default=where
    )


def _body_param(
    cls: type[Photon],
    spec: HandlerSpec,
    params: list[inspect.Parameter],
    hints: dict[str, Any],
) -> tuple[list[inspect.Parameter], list[str]]:
    """One JSON object keyed by parameter name; no body at all when there are no parameters."""
    if not params:
        return [], []
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params)
    params = [p for p in params if p.kind is not p.VAR_KEYWORD]
    fields: dict[str, Any] = {
        p.name: (hints.get(p.name, Any), ... if p.default is inspect.Parameter.empty else p.default)
        for p in params
    }
    model_name = f"{cls.__name__}_{spec.name}_Input"
    model: type[BaseModel] = create_model(
        model_name, __config__=ConfigDict(extra="allow" if open_ended else "forbid"), **fields
    )
    required = any(p.default is inspect.Parameter.empty for p in params)
    body_kwargs: dict[str, Any] = {}
    examples = _openapi_examples(spec)
    if examples:
        body_kwargs["openapi_examples"] = examples
    default = Body(**body_kwargs) if required else Body(None, **body_kwargs)
    annotation: Any = model if required else model | None
    body = inspect.Parameter(
        "body", inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )
    # With every field optional an absent body means "all defaults": the
    # endpoint then receives None and calls the handler with no arguments.
    return [body], [p.name for p in params]


def _openapi_examples(spec: HandlerSpec) -> dict[str, Any]:
    """``example=`` and Lepton's ``examples=`` (a list, or a dict by name) as OpenAPI examples."""
    found: dict[str, Any] = {}
    if spec.example is not None:
        found["example"] = {"value": spec.example}
    named = spec.examples
    if isinstance(named, dict):
        items = list(named.items())
    elif isinstance(named, list | tuple):
        items = [(f"example {i}", value) for i, value in enumerate(named, 1)]
    else:
        items = []
    for name, value in items:
        is_object = isinstance(value, dict) and "value" in value
        found[str(name)] = value if is_object else {"value": value}
    return found


def _response_model(annotation: Any) -> Any:
    """The return annotation, for the OpenAPI schema only (the endpoint returns a Response)."""
    if annotation is None or annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, type) and issubclass(annotation, Response):
        return None
    try:
        TypeAdapter(annotation).json_schema()
    except Exception:  # noqa: BLE001 - no schema, no documented response model
        return None
    return annotation


def _mount(app: FastAPI, photon: Photon, spec: HandlerSpec) -> None:
    """Mount what ``spec``'s handler returns at its path (:mod:`photonpack.serving.mounts`)."""
    where = f"{type(photon).__name__}.{spec.name}"
    try:
        target = spec.func(photon)
    except PhotonpackError:
        raise
    except ImportError as exc:
        raise ServeError(
            f"mount handler {where} failed at {failure_location(exc)}: {exc}; add the "
            f"package it imports to {type(photon).__name__}.requirement_dependency"
        ) from exc
    except Exception as exc:
        raise ServeError(
            f"mount handler {where} failed at {failure_location(exc)}: {type(exc).__name__}: {exc}"
        ) from exc
    if is_photon(target):
        # Its routes join this app's, under the prefix: served and in /openapi.json.
        target._photon_ensure_init()
        nested = build_app(target, max_body_bytes=None, operations=False)
        prefix = "" if spec.path == "/" else spec.path
        app.include_router(nested.router, prefix=prefix)
        for route in nested.routes:
            if isinstance(route, Mount):  # its own mounts, which routers do not carry
                app.mount(prefix + route.path, route.app)
    elif is_gradio(target):
        import gradio  # type: ignore[import-not-found]  # installed: the handler made a Blocks

        gradio.mount_gradio_app(app, target, path=spec.path)
    elif is_wsgi(target):
        app.mount(spec.path, WSGIApp(target))
    else:
        app.mount(spec.path, check_asgi(where, target))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {**error, "input": _echo(error["input"])} if "input" in error else error
        for error in exc.errors()
    ]
    errors = jsonable_encoder(errors)
    parts = []
    for error in errors:
        loc = ".".join(str(x) for x in error.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {error.get('msg', 'invalid')}")
    return JSONResponse({"error": "invalid request: " + "; ".join(parts), "detail": errors}, 422)


def _echo(value: Any) -> Any:
    """``value`` as a 422 shows it: in full when short, else its first characters, marked cut."""
    encoded = jsonable_encoder(value)
    text = encoded if isinstance(encoded, str) else json.dumps(encoded, ensure_ascii=False)
    if len(text) <= MAX_ECHO_CHARS:
        return encoded
    return f"{text[:MAX_ECHO_CHARS]}... (cut: {len(text)} characters)"


async def _server_error(request: Request, exc: Exception) -> Response:
    # Starlette logs the traceback; the client gets the JSON shape of every other error.
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, 500)
