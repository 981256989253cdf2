"""Optional service authentication: only a caller holding ``SERVICE_TOKEN`` gets in.

With ``SERVICE_TOKEN`` set, every request must carry ``Authorization: Bearer <token>``, except
the probes (``/health``, ``/ready``, ``/metrics``), which orchestrators call without it, and the
API manuals (``/docs``, ``/redoc``, ``/openapi.json``) when ``SERVICE_DOCS_PUBLIC`` is true. The
manuals need the token by default: they list every route, and a caller without the token has
nothing to call. A missing or wrong token gets 401 with ``WWW-Authenticate: Bearer`` before the
request reaches any route. Tokens are compared with :func:`hmac.compare_digest` (in constant
time), and neither the expected nor the presented token is ever logged. Without ``SERVICE_TOKEN``
nothing changes.

This is a plain ASGI middleware (not a FastAPI dependency) so that it guards every route of both
apps, including the docs and any route added later, without each router having to opt in.
"""

from __future__ import annotations

import copy
import hmac
import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.core.logging import ASGIApp, Receive, Scope, Send

#: Paths answered without a token: liveness, readiness and metrics probes.
PROBE_PATHS = frozenset({"/health", "/ready", "/metrics"})
#: Paths of the API manuals, answered without a token only when ``SERVICE_DOCS_PUBLIC`` is true.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
SCHEME_NAME = "serviceToken"
UNAUTHORIZED_DETAIL = "Missing or invalid service token"
_BEARER = b"bearer "


def presented_token(scope: Scope) -> bytes | None:
    """Return the token of the request's ``Authorization: Bearer`` header, or ``None``."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            if value[: len(_BEARER)].lower() == _BEARER:
                return bytes(value[len(_BEARER) :].strip())
            return None
    return None


class ServiceAuthMiddleware:
    """Refuse HTTP requests whose bearer token is not ``token`` (401), outside the open paths.

    Parameters
    ----------
    app
        The application to guard.
    token
        The expected token (non-empty).
    open_paths
        Paths served without a token.
    """

    def __init__(self, app: ASGIApp, *, token: str, open_paths: frozenset[str]) -> None:
        if not token:
            raise ValueError("the service token must not be empty")
        self.app = app
        self._expected = token.encode()
        self.open_paths = open_paths

    def allowed(self, scope: Scope) -> bool:
        """Return whether the request may go through."""
        if scope.get("path") in self.open_paths:
            return True
        given = presented_token(scope)
        return given is not None and hmac.compare_digest(given, self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass allowed requests (and lifespan events) on; answer 401 to the others."""
        if scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": UNAUTHORIZED_DETAIL}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="jwst-engine"'),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


#: The documented 401: the error body and the challenge header.
UNAUTHORIZED_RESPONSE: dict[str, Any] = {
    "description": UNAUTHORIZED_DETAIL,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string", "description": "Always `" + UNAUTHORIZED_DETAIL + "`."}},
                "required": ["detail"],
            }
        }
    },
    "headers": {
        "WWW-Authenticate": {
            "description": '`Bearer realm="jwst-engine"`: the scheme to authenticate with.',
            "required": True,
            "schema": {"type": "string"},
        }
    },
}


def open_paths(*, docs_public: bool) -> frozenset[str]:
    """Return the paths served without a token."""
    return PROBE_PATHS | DOCS_PATHS if docs_public else PROBE_PATHS


def document_security(app: FastAPI, exempt: frozenset[str]) -> None:
    """Declare the bearer scheme in the app's OpenAPI: required everywhere but on ``exempt`` paths."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SCHEME_NAME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The value of `SERVICE_TOKEN`, sent as `Authorization: Bearer <token>`.",
        }
        schema["security"] = [{SCHEME_NAME: []}]
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if path in exempt:
                    operation["security"] = []
                else:
                    operation.setdefault("responses", {})["401"] = copy.deepcopy(UNAUTHORIZED_RESPONSE)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_service_auth(app: FastAPI, *, token: str, docs_public: bool) -> None:
    """Guard ``app`` with :class:`ServiceAuthMiddleware` and document the scheme in its OpenAPI."""
    exempt = open_paths(docs_public=docs_public)
    app.add_middleware(ServiceAuthMiddleware, token=token, open_paths=exempt)
    document_security(app, exempt)
