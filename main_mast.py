"""MAST proxy entrypoint: build the app and mount the MAST router only.

Run with ``uvicorn main_mast:app``. This module and :mod:`app.mast` never import scipy,
reproject, photutils or the engine's modules, so the proxy stays light and starts fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aioboto3
import httpx
from fastapi import FastAPI

from app.core.app_factory import build_app
from app.core.operations import directory_check, storage_check
from app.core.settings import Settings, get_settings
from app.mast.jobs.manager import DownloadManager
from app.mast.routes import router as mast_router
from app.mast.search import MastService
from app.storage.factory import create_storage
from app.storage.startup import check_startup_storage

MAST_TAGS = [{"name": "mast", "description": "MAST searches, product lists and download jobs."}]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the MAST proxy app."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.storage = create_storage(settings)
        await asyncio.to_thread(
            check_startup_storage,
            app.state.storage,
            directories=[settings.mast_download_dir],
            create_bucket=settings.s3_create_bucket,
        )
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.mast_download_read_timeout, connect=settings.mast_download_connect_timeout),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        app.state.mast_service = MastService(settings, http)
        app.state.download_manager = DownloadManager(
            settings, app.state.mast_service, http, aioboto3.Session(), app.state.storage
        )
        await app.state.download_manager.startup()
        try:
            yield
        finally:
            await app.state.download_manager.shutdown()
            app.state.mast_service.close()
            await http.aclose()

    return build_app(
        settings=settings,
        title="JWST MAST Proxy",
        description="Searches the MAST archive for JWST observations and downloads their "
        "products (resumable HTTP and parallel S3) into the shared data volume.",
        root_message="JWST MAST Proxy Service",
        service_name="jwst-mast-proxy",
        routers=[mast_router],
        lifespan=lifespan,
        openapi_tags=MAST_TAGS,
        readiness=[storage_check(), directory_check("downloads", settings.mast_download_dir)],
    )


app = create_app()
