"""Build the storage provider chosen by ``STORAGE_PROVIDER``."""

from __future__ import annotations

from collections.abc import Callable

from app.core.settings import Settings
from app.storage.local_storage import LocalStorage
from app.storage.provider import StorageProvider


def _local(settings: Settings) -> StorageProvider:
    return LocalStorage(settings.storage_base_path)


def _s3(settings: Settings) -> StorageProvider:
    from app.storage.s3_storage import S3Storage
    from app.storage.temp_cache import TempFileCache

    cache = TempFileCache(settings.storage_temp_cache_dir, max_bytes=settings.storage_temp_cache_max_bytes)
    return S3Storage(
        bucket=settings.s3_bucket_name,
        cache=cache,
        endpoint_url=settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        region=settings.s3_region,
        force_path_style=settings.s3_force_path_style,
    )


PROVIDERS: dict[str, Callable[[Settings], StorageProvider]] = {"local": _local, "s3": _s3}


def create_storage(settings: Settings) -> StorageProvider:
    """Return the provider named by ``settings.storage_provider``."""
    try:
        build = PROVIDERS[settings.storage_provider]
    except KeyError as error:
        raise ValueError(f"unknown STORAGE_PROVIDER {settings.storage_provider!r}") from error
    return build(settings)
