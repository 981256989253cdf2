"""The OpenAPI manuals (``/docs``, ``/redoc``) served entirely by the service itself.

FastAPI's default pages load Swagger UI and ReDoc from a CDN at floating versions, fonts from
Google and a favicon from FastAPI's site, so they are blank without internet. Here the assets are
the pinned copies shipped in the ``fastapi-offline`` package (Swagger UI 5 and ReDoc 2.3.9, MIT),
mounted under :data:`ASSETS_PATH`; no font is loaded, so ReDoc falls back to system fonts.

Each page is sent with a Content-Security-Policy that allows the service's own origin only
(``'self'``, plus ``data:`` images and ``blob:`` workers the UIs create in the page), so the
browser makes no request to any other host even where a bundle names one (ReDoc's sidebar logo).
Swagger UI's one inline start-up script is allowed by its SHA-256 hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the pinned Swagger UI and ReDoc files are served.
ASSETS_PATH = "/docs-assets"
DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_POLICY = (
    "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)


def assets_directory() -> str:
    """Return the directory of the packaged Swagger UI and ReDoc files."""
    return str(files("fastapi_offline") / "static")


def content_security_policy(html: str) -> str:
    """Return the same-origin policy of a page, allowing its inline scripts by hash."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return _POLICY.format(hashes=hashes)


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": content_security_policy(html)})


def install_docs(app: FastAPI) -> None:
    """Mount the pinned assets and serve ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` from them.

    The app must be built with ``docs_url=None`` and ``redoc_url=None``. Every URL in the pages is
    a path on the service (under the request's ``root_path`` behind a proxy).
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=assets_directory()), name="docs-assets")
    openapi_path = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_path}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            # no badge image fetched from the public validator
            swagger_ui_parameters={"validatorUrl": None},
        )
        return _with_policy(page)

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return _with_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_path}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
        return _with_policy(page)
