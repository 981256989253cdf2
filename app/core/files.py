"""Resolve storage keys to local files off the event loop (contract section 2.5)."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from app.storage.provider import StorageProvider


async def resolve_local_path(storage: StorageProvider, key: str) -> Path:
    """Return a local path for ``key`` (403/404/400 per the contract), without blocking the loop.

    With S3 storage the object is first copied into the LRU temp cache.
    """
    return await anyio.to_thread.run_sync(storage.local_path, key)


async def resolve_local_paths(storage: StorageProvider, keys: list[str]) -> list[Path]:
    """Resolve several keys in order; the first failing key raises."""
    return [await resolve_local_path(storage, key) for key in keys]
