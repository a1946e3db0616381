"""The photon's API pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with no network.

FastAPI's own pages load their JavaScript, CSS and favicon from public CDNs, and
ReDoc's fonts from Google, so on an air-gapped machine they stay blank. These
are the same pages (FastAPI's HTML and options) pointing at the bundles the
``fastapi-offline`` package ships: a wheel of the serving stack, locked and
hashed with the rest of the photon's environment. Every asset is served from
``/docs/assets/``, behind the same guard (the bearer token) as every other route.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from photonpack.serving.errors import ServeError
from photonpack.serving.requirements import SERVING_REQUIREMENTS

__all__ = ["ASSETS", "ASSETS_PATH", "DOCS_PATH", "REDOC_PATH", "add_docs"]

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
# Under /docs, beside FastAPI's /docs/oauth2-redirect: no new top-level path a
# photon's handler could have wanted.
ASSETS_PATH = "/docs/assets"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")

# ReDoc's side menu shows Redocly's logo from Redocly's CDN (and drops it when it
# fails to load). The page takes images from its own server only, so the browser
# never asks the network for it: the menu looks as it does offline, without the logo.
_REDOC_POLICY = "img-src 'self' data: blob:"

_ASSETS_REQUIREMENT = next(r for r in SERVING_REQUIREMENTS if r.startswith("fastapi-offline"))


def add_docs(app: FastAPI) -> None:
    """Add ``/docs``, its OAuth2 redirect, ``/redoc`` and their assets to ``app``.

    ``app`` is made with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,  # ReDoc falls back to the browser's sans-serif
        )
        page.headers["content-security-policy"] = _REDOC_POLICY
        return page

    app.add_route(DOCS_PATH, swagger_ui, include_in_schema=False)
    if redirect_url:
        app.add_route(redirect_url, oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_PATH, redoc, include_in_schema=False)


def assets_dir() -> Path:
    """The folder of Swagger UI's and ReDoc's bundles in this environment."""
    try:
        import fastapi_offline
    except ImportError as exc:
        raise ServeError(
            "the /docs and /redoc assets are missing: fastapi-offline is not installed in "
            f"the environment {sys.prefix}; install photonpack's serving stack there "
            f"(pip install '{_ASSETS_REQUIREMENT}'), as every photon's lock does"
        ) from exc
    directory = Path(fastapi_offline.__file__).parent / "static"
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        raise ServeError(
            f"the /docs and /redoc assets are incomplete: {', '.join(missing)} not found in "
            f"{directory}; install a fastapi-offline release that ships them"
        )
    return directory


def _root(request: Request) -> str:
    """The prefix a proxy serves the app under (ASGI ``root_path``), as FastAPI's pages use it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
