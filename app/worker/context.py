"""The storage a job opens its files through, in whichever process runs it.

Jobs carry storage keys, not paths: a worker of the local pool, a thread, or a Dask worker on
another machine turns a key into a local file with :func:`local_path`, through the same storage
layer the engine uses (a shared local volume, or S3 with the temp cache). The engine's executor
wraps every job with :func:`run_in_context`, which sends the engine's settings along (a few
hundred bytes) so a worker needs no configuration of its own; the storage provider built from
them is kept per process, so the S3 client and temp cache are made once. The temp cache's files a
job was handed are leased to it until it returns, so another worker's eviction cannot delete them.
The same settings give the job its inflation budget for compressed FITS
(:func:`app.processing.fits_io.inflate_budget`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from app.core.settings import Settings
from app.processing.fits_io import inflate_budget
from app.storage.factory import create_storage
from app.storage.provider import LocalFile, StorageProvider
from app.storage.temp_cache import held_leases

T = TypeVar("T")

_current: ContextVar[StorageProvider | None] = ContextVar("job_storage", default=None)
_providers: dict[str, StorageProvider] = {}
_providers_lock = threading.Lock()


def _provider(settings: Settings) -> StorageProvider:
    """Return this process's storage provider for ``settings`` (built on first use)."""
    key = settings.model_dump_json()
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = create_storage(settings)
        return provider


@contextmanager
def job_storage(settings: Settings) -> Iterator[StorageProvider]:
    """Make the storage of ``settings`` the running job's storage inside the ``with`` block."""
    provider = _provider(settings)
    token = _current.set(provider)
    try:
        yield provider
    finally:
        _current.reset(token)


def run_in_context(settings: Settings, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` with the storage and inflation budget of ``settings``.

    Files the job gets from the S3 temp cache stay on disk until it returns (their leases end with it).
    """
    with job_storage(settings), held_leases(), inflate_budget(settings.fits_inflate_budget_bytes):
        return fn(*args, **kwargs)


def storage() -> StorageProvider:
    """Return the storage of the running job."""
    provider = _current.get()
    if provider is None:
        raise RuntimeError("no job storage: run the job through the engine's executor (run_in_context)")
    return provider


def local_path(key: str) -> Path:
    """Return a local file for storage ``key`` (403, 404 or 400 for a bad key, as the storage layer says)."""
    return storage().local_path(key)


def local_file(key: str) -> LocalFile:
    """Return a local file for storage ``key`` and the stored object's version (``StorageProvider.local_file``)."""
    return storage().local_file(key)
