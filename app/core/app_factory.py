"""Build a FastAPI app with the pieces both services share.

Both entrypoints call :func:`build_app`: root and health routes with the exact bodies
the backend expects, readiness and metrics (:mod:`app.core.operations`), the self-hosted manuals
(:mod:`app.core.docs`), error handlers, the finishing pass over the OpenAPI document
(:mod:`app.core.openapi`), the request-context middleware (outermost: request id, body
limit), the strict-JSON check of request bodies inside it, the optional service token
(:mod:`app.core.auth`) and OpenAPI metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from app import __version__
from app.core.auth import install_service_auth
from app.core.docs import install_docs
from app.core.errors import install_error_handlers
from app.core.json_guard import StrictJsonMiddleware
from app.core.logging import RequestContextMiddleware, configure_logging
from app.core.metrics import prepare_metrics_dir
from app.core.openapi import finish_document
from app.core.operations import ReadinessCheck, install_operations
from app.core.settings import Settings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class RootResponse(BaseModel):
    """Body of ``GET /``."""

    message: str = Field(description="Name of the service.")
    status: str = Field(description="Always `running`.")


class HealthResponse(BaseModel):
    """Body of ``GET /health``."""

    status: str = Field(description="Always `healthy`.")
    service: str = Field(description="`jwst-processing-engine` or `jwst-mast-proxy`.")


def service_router(*, root_message: str, service_name: str) -> APIRouter:
    """Routes ``GET /`` and ``GET /health`` with the fixed bodies the backend checks."""
    router = APIRouter(tags=["service"])
    root = RootResponse(message=root_message, status="running")
    health = HealthResponse(status="healthy", service=service_name)

    @router.get(
        "/",
        response_model=RootResponse,
        summary="Service banner",
        description="Name of the service and `running`. Never touches storage or workers.",
    )
    async def read_root() -> RootResponse:
        return root

    @router.get(
        "/health",
        response_model=HealthResponse,
        summary="Liveness check",
        description="Answers from the event loop without touching storage or the job "
        "executor, so it stays fast while heavy work runs. Used by compose healthchecks "
        "and the backend's health checks.",
    )
    async def read_health() -> HealthResponse:
        return health

    return router


def build_app(
    *,
    settings: Settings,
    title: str,
    description: str,
    root_message: str,
    service_name: str,
    routers: Sequence[APIRouter],
    lifespan: Lifespan | None,
    openapi_tags: list[dict[str, str]],
    readiness: Sequence[ReadinessCheck] = (),
) -> FastAPI:
    """Create an app with shared middleware, error handling, docs and root/health/ready/metrics routes."""
    configure_logging(settings.log_level, settings.log_format)
    prepare_metrics_dir(settings, service_name)
    app = FastAPI(
        title=title,
        description=description,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_tags=[{"name": "service", "description": "Banner, liveness, readiness and metrics."}, *openapi_tags],
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(StrictJsonMiddleware)
    if settings.service_token is not None:
        # added first, so it runs inside the request-context middleware: refusals are logged too
        install_service_auth(
            app, token=settings.service_token.get_secret_value(), docs_public=settings.service_docs_public
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_body_bytes)
    install_operations(app, checks=readiness, timeout=settings.ready_timeout_seconds)
    install_docs(app)
    app.include_router(service_router(root_message=root_message, service_name=service_name))
    for router in routers:
        app.include_router(router)
    finish_document(app)
    return app
