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
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from photonpack.__about__ import __version__
from photonpack.serving.calls import caller
from photonpack.serving.errors import PhotonDefinitionError
from photonpack.serving.guard import Guard
from photonpack.serving.handler import HandlerSpec, handler_specs, is_photon

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
) -> FastAPI:
    """The FastAPI app serving ``photon``; runs its ``init()`` first unless ``init=False``.

    With ``init=False`` nothing of the photon runs (mounted handlers are not
    resolved): that is how :func:`describe` reads the contract at build time.
    """
    cls = type(photon)
    if init:
        photon._photon_ensure_init()
    app = FastAPI(
        title=photon.name,
        description=_class_doc(cls) or "",
        version=__version__,
    )
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
    specs = handler_specs(cls)
    for spec in specs:
        if spec.mount:
            if init:
                app.mount(spec.path, _mounted(photon, spec))
            continue
        _add_route(app, photon, spec)
    if not any(s.path == "/healthz" and s.method == "GET" for s in specs):
        app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    if token is not None or max_body_bytes is not None:
        app.add_middleware(Guard, token=token, max_body_bytes=max_body_bytes)
    return app


async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


def describe(photon_cls: type[Photon]) -> dict[str, Any]:
    """The handler contract of ``photon_cls``, as the manifest records it (runs no ``init()``)."""
    photon = photon_cls()
    openapi: dict[str, Any] | None
    try:
        openapi = build_app(photon, init=False, max_body_bytes=None).openapi()
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
        },
    }


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
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and not spec.use_raw_args:
            raise PhotonDefinitionError(
                f"{where}: *args/**kwargs cannot become request fields; "
                "name each parameter, or pass use_raw_args=True"
            )
    return params, hints


def _add_route(app: FastAPI, photon: Photon, spec: HandlerSpec) -> None:
    cls = type(photon)
    params, hints = _parameters(cls, spec)
    call = caller(photon, spec)
    endpoint_params: list[inspect.Parameter]
    if spec.use_raw_args:
        endpoint_params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params]

        async def endpoint(**kwargs: Any) -> Response:
            return await call(kwargs)

    elif spec.method == "GET":
        endpoint_params = [_query_param(spec, p, hints) for p in params]

        async def endpoint(**kwargs: Any) -> Response:
            return await call(kwargs)

    else:
        endpoint_params, names = _body_param(cls, spec, params, hints)

        async def endpoint(**kwargs: Any) -> Response:
            body = kwargs.get("body")
            return await call({n: getattr(body, n) for n in names} if body is not None else {})

    endpoint.__signature__ = inspect.Signature(endpoint_params)  # type: ignore[attr-defined]
    app.add_api_route(
        spec.path,
        endpoint,
        methods=[spec.method],
        name=spec.name,
        summary=spec.name,
        description=_doc(spec.func) or "",
        response_model=_response_model(hints.get("return")),
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
    fields: dict[str, Any] = {
        p.name: (hints.get(p.name, Any), ... if p.default is inspect.Parameter.empty else p.default)
        for p in params
    }
    model_name = f"{cls.__name__}_{spec.name}_Input"
    model: type[BaseModel] = create_model(
        model_name, __config__=ConfigDict(extra="forbid"), **fields
    )
    required = any(p.default is inspect.Parameter.empty for p in params)
    body_kwargs: dict[str, Any] = {}
    if spec.example is not None:
        body_kwargs["openapi_examples"] = {"example": {"value": spec.example}}
    default = Body(**body_kwargs) if required else Body(None, **body_kwargs)
    annotation: Any = model if required else model | None
    body = inspect.Parameter(
        "body", inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )
    # With every field optional an absent body means "all defaults": the
    # endpoint then receives None and calls the handler with no arguments.
    return [body], [p.name for p in params]


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


def _mounted(photon: Photon, spec: HandlerSpec) -> Any:
    target = spec.func(photon)
    if is_photon(target):
        return build_app(target, max_body_bytes=None)
    if not callable(target):
        raise PhotonDefinitionError(
            f"{type(photon).__name__}.{spec.name} is a mount handler and must return an ASGI app "
            f"(a FastAPI app, StaticFiles) or a Photon, got {target!r}"
        )
    return target


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
