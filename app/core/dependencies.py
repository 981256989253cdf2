"""FastAPI dependencies: the clients created in the lifespan, reached through ``Annotated`` types.

Tests swap any of them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.core.executor import JobExecutor
from app.core.settings import Settings
from app.storage.provider import StorageProvider


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


def get_storage(request: Request) -> StorageProvider:
    """The storage provider created in the lifespan."""
    return request.app.state.storage


def get_executor(request: Request) -> JobExecutor:
    """The engine's job executor created in the lifespan."""
    return request.app.state.executor


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StorageDep = Annotated[StorageProvider, Depends(get_storage)]
ExecutorDep = Annotated[JobExecutor, Depends(get_executor)]
