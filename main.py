"""Processing engine entrypoint: build the app and mount the engine's routers.

Run with ``uvicorn main:app``. Heavy work runs on the job executor created in the lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread
from fastapi import FastAPI

from app.analysis.routes import router as analysis_router
from app.async_jobs.routes import router as async_jobs_router
from app.async_jobs.service import AsyncJobService
from app.composite.routes import router as composite_router
from app.core.app_factory import build_app
from app.core.dask_backend import DaskBackend
from app.core.executor import JobBackend, JobExecutor
from app.core.operations import executor_check, storage_check
from app.core.settings import Settings, get_settings
from app.discovery.routes import router as discovery_router
from app.mosaic.routes import router as mosaic_router
from app.semantic.encoder import ModelIntegrityError, verify_packaged_model
from app.semantic.routes import router as semantic_router
from app.semantic.service import SemanticService
from app.storage.factory import create_storage
from app.storage.startup import check_startup_storage
from app.viewer.routes import router as viewer_router
from app.worker.context import run_in_context

logger = logging.getLogger("app.engine")

ENGINE_TAGS = [
    {"name": "viewer", "description": "Thumbnails, previews, histograms, pixel data and cube info."},
    {"name": "composite", "description": "N-channel colour composites."},
    {"name": "mosaic", "description": "WCS mosaics and footprints."},
    {"name": "analysis", "description": "Region statistics, source detection, tables and spectra."},
    {"name": "discovery", "description": "Composite recipe suggestions."},
    {"name": "semantic", "description": "Semantic search over file metadata."},
    {"name": "jobs", "description": "Composites and mosaics as asynchronous jobs: submit, progress, cancel, result."},
]


def build_executor(settings: Settings) -> JobExecutor:
    """Return the job executor: the local pool, or the Dask cluster when ``DASK_SCHEDULER_ADDRESS`` is set.

    Every job runs with the engine's storage (:func:`app.worker.context.run_in_context`), so it can
    open storage keys wherever it runs.
    """
    backend: JobBackend | None = None
    if settings.dask_scheduler_address:
        backend = DaskBackend(
            settings.dask_scheduler_address,
            connect_timeout=settings.dask_connect_timeout,
            retry_after=settings.engine_retry_after_seconds,
            max_jobs=settings.dask_max_jobs or settings.engine_workers + settings.engine_queue_size,
        )
    return JobExecutor(
        workers=settings.engine_workers,
        queue_size=settings.engine_queue_size,
        kind=settings.engine_executor,
        retry_after=settings.engine_retry_after_seconds,
        worker_nice=settings.engine_worker_nice,
        deadline_seconds=settings.engine_job_deadline_seconds,
        backend=backend,
        context=partial(run_in_context, settings),
    )


async def check_semantic_model() -> None:
    """Check the packaged embedding model's files at startup (a mismatch is logged; semantic calls then fail)."""
    try:
        await anyio.to_thread.run_sync(verify_packaged_model)
    except (ModelIntegrityError, OSError, ImportError) as error:
        logger.error("semantic_model_unusable", extra={"error": str(error)})


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the processing engine app."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.storage = create_storage(settings)
        await check_semantic_model()
        await asyncio.to_thread(
            check_startup_storage,
            app.state.storage,
            directories=[settings.semantic_data_dir],
            create_bucket=settings.s3_create_bucket,
        )
        executor = build_executor(settings)
        executor.start()
        app.state.executor = executor
        app.state.async_jobs = AsyncJobService(app.state.storage, executor, settings)
        app.state.semantic = SemanticService(
            settings.semantic_data_dir, retry_after=settings.engine_retry_after_seconds
        )
        try:
            yield
        finally:
            await app.state.async_jobs.shutdown()
            app.state.semantic.shutdown()
            if isinstance(executor.backend, DaskBackend):
                await executor.backend.aclose()
            executor.shutdown()

    return build_app(
        settings=settings,
        title="JWST Data Processing Engine",
        description="Viewer reads, colour composites, mosaics, analysis, discovery and semantic "
        "search over JWST FITS files, for the JWST data application's .NET backend.",
        root_message="JWST Data Processing Engine",
        service_name="jwst-processing-engine",
        routers=[
            viewer_router,
            composite_router,
            mosaic_router,
            analysis_router,
            discovery_router,
            semantic_router,
            async_jobs_router,
        ],
        lifespan=lifespan,
        openapi_tags=ENGINE_TAGS,
        readiness=[storage_check(), executor_check()],
    )


app = create_app()
