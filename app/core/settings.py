"""The one settings object of both services, read once from the environment.

Environment names follow ``api-contract.md`` sections 0 and 4 exactly. Nothing else in the
code base reads ``os.environ``: code receives a :class:`Settings` instance (usually through
:func:`get_settings`).
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


def _default_download_dir() -> Path:
    return Path.cwd() / "data" / "mast"


def _default_temp_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "jwst-cache"


def _default_composite_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "jwst-composite-cache"


class Settings(BaseSettings):
    """Typed configuration for the MAST proxy and the processing engine."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", populate_by_name=True)

    # --- upstreams (contract section 0) ---
    mast_base_url: str = Field(default="https://mast.stsci.edu", alias="MAST_BASE_URL")
    mast_s3_endpoint_url: str | None = Field(default=None, alias="MAST_S3_ENDPOINT_URL")
    mast_s3_bucket: str = Field(default="stpubdata", alias="MAST_S3_BUCKET")

    # --- MAST proxy (contract 4.1) ---
    mast_download_dir: Path = Field(default_factory=_default_download_dir, alias="MAST_DOWNLOAD_DIR")
    mast_search_timeout: float = Field(default=120.0, alias="MAST_SEARCH_TIMEOUT", gt=0)
    mast_download_timeout: float = Field(default=600.0, alias="MAST_DOWNLOAD_TIMEOUT", gt=0)
    mast_download_chunk_bytes: int = Field(default=MIB, alias="MAST_DOWNLOAD_CHUNK_BYTES", ge=1024)
    mast_download_concurrency: int = Field(default=3, alias="MAST_DOWNLOAD_CONCURRENCY", ge=1, le=16)
    mast_download_retries: int = Field(default=3, alias="MAST_DOWNLOAD_RETRIES", ge=0, le=20)
    mast_download_backoff_seconds: float = Field(default=1.0, alias="MAST_DOWNLOAD_BACKOFF_SECONDS", ge=0)
    mast_download_connect_timeout: float = Field(default=30.0, alias="MAST_DOWNLOAD_CONNECT_TIMEOUT", gt=0)
    mast_download_read_timeout: float = Field(default=300.0, alias="MAST_DOWNLOAD_READ_TIMEOUT", gt=0)
    mast_s3_part_bytes: int = Field(default=8 * MIB, alias="MAST_S3_PART_BYTES", ge=1024)
    mast_s3_part_concurrency: int = Field(default=8, alias="MAST_S3_PART_CONCURRENCY", ge=1, le=64)
    mast_s3_split_after_seconds: float = Field(default=0.5, alias="MAST_S3_SPLIT_AFTER_SECONDS", ge=0)
    mast_search_cache_ttl: float = Field(default=300.0, alias="MAST_SEARCH_CACHE_TTL", ge=0)
    mast_search_cache_size: int = Field(default=256, alias="MAST_SEARCH_CACHE_SIZE", ge=1)
    mast_max_finished_jobs: int = Field(default=500, alias="MAST_MAX_FINISHED_JOBS", ge=1)

    # --- storage (contract 4.1 / 4.2) ---
    storage_provider: Literal["local", "s3"] = Field(default="local", alias="STORAGE_PROVIDER")
    storage_base_path: Path = Field(default=Path("/app/data"), alias="STORAGE_BASE_PATH")
    s3_bucket_name: str = Field(default="jwst-data", alias="S3_BUCKET_NAME")
    s3_endpoint: str | None = Field(default=None, alias="S3_ENDPOINT")
    s3_access_key: str | None = Field(default=None, alias="S3_ACCESS_KEY")
    s3_secret_key: str | None = Field(default=None, alias="S3_SECRET_KEY")
    s3_force_path_style: bool = Field(default=True, alias="S3_FORCE_PATH_STYLE")
    s3_public_endpoint: str | None = Field(default=None, alias="S3_PUBLIC_ENDPOINT")
    s3_region: str = Field(default="us-east-1", alias="S3_REGION")
    storage_temp_cache_max_bytes: int = Field(default=2 * 1024 * MIB, alias="STORAGE_TEMP_CACHE_MAX_BYTES", gt=0)
    storage_temp_cache_dir: Path = Field(default_factory=_default_temp_cache_dir, alias="STORAGE_TEMP_CACHE_DIR")

    # --- engine limits (contract 4.2) ---
    max_fits_array_elements: int = Field(default=200_000_000, alias="MAX_FITS_ARRAY_ELEMENTS", gt=0)
    max_fits_file_size_mb: int = Field(default=2048, alias="MAX_FITS_FILE_SIZE_MB", gt=0)
    max_mosaic_output_pixels: int = Field(default=64_000_000, alias="MAX_MOSAIC_OUTPUT_PIXELS", gt=0)
    max_composite_reproject_pixels: int = Field(default=64_000_000, alias="MAX_COMPOSITE_REPROJECT_PIXELS", gt=0)
    max_composite_input_pixels: int = Field(default=16_000_000, alias="MAX_COMPOSITE_INPUT_PIXELS", gt=0)
    composite_cache_ttl_seconds: float = Field(default=600.0, alias="COMPOSITE_CACHE_TTL_SECONDS", ge=0)
    composite_cache_max_entries: int = Field(default=3, alias="COMPOSITE_CACHE_MAX_ENTRIES", ge=0)
    composite_cache_max_bytes: int = Field(default=512 * MIB, alias="COMPOSITE_CACHE_MAX_BYTES", ge=0)
    composite_cache_dir: Path = Field(default_factory=_default_composite_cache_dir, alias="COMPOSITE_CACHE_DIR")
    semantic_data_dir: Path = Field(default=Path("/app/data/semantic"), alias="SEMANTIC_DATA_DIR")

    # --- executor and gate (design section 2) ---
    engine_workers: int = Field(default=2, alias="ENGINE_WORKERS", ge=1, le=64)
    engine_queue_size: int = Field(default=4, alias="ENGINE_QUEUE_SIZE", ge=0, le=1024)
    engine_executor: Literal["process", "thread"] = Field(default="process", alias="ENGINE_EXECUTOR")
    engine_retry_after_seconds: int = Field(default=5, alias="ENGINE_RETRY_AFTER_SECONDS", ge=1)
    engine_worker_nice: int = Field(default=10, alias="ENGINE_WORKER_NICE", ge=0, le=19)
    engine_job_memory_mb: int = Field(default=3072, alias="ENGINE_JOB_MEMORY_MB", gt=0)
    engine_job_deadline_seconds: float = Field(default=300.0, alias="ENGINE_JOB_DEADLINE_SECONDS", gt=0)
    dask_scheduler_address: str | None = Field(default=None, alias="DASK_SCHEDULER_ADDRESS")
    dask_connect_timeout: float = Field(default=10.0, alias="DASK_CONNECT_TIMEOUT", gt=0)
    dask_max_jobs: int | None = Field(default=None, alias="DASK_MAX_JOBS", gt=0)
    engine_async_job_ttl_seconds: float = Field(default=3600.0, alias="ENGINE_ASYNC_JOB_TTL_SECONDS", gt=0)
    engine_async_job_heartbeat_seconds: float = Field(
        default=2.0, alias="ENGINE_ASYNC_JOB_HEARTBEAT_SECONDS", gt=0, le=60
    )
    max_request_body_bytes: int = Field(default=32 * MIB, alias="MAX_REQUEST_BODY_BYTES", gt=0)

    # --- connections and service authentication (both services) ---
    request_head_timeout_seconds: float = Field(default=30.0, alias="REQUEST_HEAD_TIMEOUT_SECONDS", gt=0)
    request_body_timeout_seconds: float = Field(default=120.0, alias="REQUEST_BODY_TIMEOUT_SECONDS", gt=0)
    service_token: SecretStr | None = Field(default=None, alias="SERVICE_TOKEN")
    service_docs_public: bool = Field(default=False, alias="SERVICE_DOCS_PUBLIC")

    # --- logging and operations ---
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    log_format: Literal["json", "text"] = Field(default="json", alias="LOG_FORMAT")
    prometheus_multiproc_dir: Path | None = Field(default=None, alias="PROMETHEUS_MULTIPROC_DIR")
    ready_timeout_seconds: float = Field(default=5.0, alias="READY_TIMEOUT_SECONDS", gt=0)

    @field_validator("storage_provider", mode="before")
    @classmethod
    def _normalise_provider(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in {"local", "s3"}:
                raise ValueError(f"STORAGE_PROVIDER must be 'local' or 's3', got {value!r}")
        return value

    @field_validator("mast_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator(
        "mast_s3_endpoint_url",
        "s3_endpoint",
        "s3_public_endpoint",
        "dask_scheduler_address",
        "service_token",
        "prometheus_multiproc_dir",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def fits_inflate_budget_bytes(self) -> int:
        """Return the bytes one job may inflate from a compressed FITS file: half of ``ENGINE_JOB_MEMORY_MB``.

        The other half is left for what the job makes of the inflated pixels (the float32 plane).
        """
        return self.engine_job_memory_mb * MIB // 2

    @property
    def max_fits_file_size_bytes(self) -> int:
        """Return ``MAX_FITS_FILE_SIZE_MB`` in bytes."""
        return self.max_fits_file_size_mb * MIB


def export_prometheus_multiproc_dir(directory: Path) -> None:
    """Name the metrics directory in this process's environment.

    ``prometheus_client`` reads ``PROMETHEUS_MULTIPROC_DIR`` from the environment (not from
    settings), in this process and in the worker processes it starts afterwards, which inherit it.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # noqa: TID251 - the one write, here in settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment on first use."""
    return Settings()
