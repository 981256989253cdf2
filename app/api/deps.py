"""Every client a route uses, reached through one ``Annotated`` dependency each.

The lifespans of ``main.py`` (engine) and ``main_mast.py`` (proxy) build the clients once and put
them on ``app.state``; this module is the only place that reads them back. Tests swap any of them
with ``app.dependency_overrides[get_...]``.

This module sits above :mod:`app.core` and :mod:`app.storage`. It names the feature services only
for type checkers, so importing it loads neither the engine's numeric stack nor the proxy's HTTP
clients: each entrypoint pays only for what it mounts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from app.core.executor import JobExecutor
from app.core.settings import Settings
from app.storage.provider import StorageProvider

if TYPE_CHECKING:
    from app.async_jobs.service import AsyncJobService
    from app.mast.jobs.manager import DownloadManager
    from app.mast.search import MastService
    from app.semantic.service import SemanticService


def get_app_settings(request: Request) -> Settings:
    """Return the settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def get_storage(request: Request) -> StorageProvider:
    """Return the storage provider created in the lifespan."""
    storage: StorageProvider = request.app.state.storage
    return storage


def get_executor(request: Request) -> JobExecutor:
    """Return the engine's job executor created in the lifespan."""
    executor: JobExecutor = request.app.state.executor
    return executor


def get_semantic_service(request: Request) -> SemanticService:
    """Return the engine's semantic search service created in the lifespan."""
    service: SemanticService = request.app.state.semantic
    return service


def get_async_jobs(request: Request) -> AsyncJobService:
    """Return the engine's asynchronous job service created in the lifespan."""
    service: AsyncJobService = request.app.state.async_jobs
    return service


def get_mast_service(request: Request) -> MastService:
    """Return the proxy's MAST search service created in the lifespan."""
    service: MastService = request.app.state.mast_service
    return service


def get_download_manager(request: Request) -> DownloadManager:
    """Return the proxy's download job manager created in the lifespan."""
    manager: DownloadManager = request.app.state.download_manager
    return manager


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StorageDep = Annotated[StorageProvider, Depends(get_storage)]
ExecutorDep = Annotated[JobExecutor, Depends(get_executor)]
SemanticDep = Annotated["SemanticService", Depends(get_semantic_service)]
AsyncJobsDep = Annotated["AsyncJobService", Depends(get_async_jobs)]
MastDep = Annotated["MastService", Depends(get_mast_service)]
DownloadsDep = Annotated["DownloadManager", Depends(get_download_manager)]
