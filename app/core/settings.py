"""The one settings object of both services, read once from the environment.

Environment names are part of the deployment interface (README, configuration table) and stay
as they are. Nothing else in the code base reads ``os.environ``: code receives a
:class:`Settings` instance (usually through :func:`get_settings`).

Two values are derived here, once: when ``ENGINE_JOB_MEMORY_MB`` is not set, the per-job memory
budget comes from the container's memory limit (cgroup v2 ``memory.max`` or v1
``memory.limit_in_bytes``) less :data:`API_HEADROOM_MB` for the API process, shared by the
``ENGINE_WORKERS`` jobs that can run at once, so the budgets never add up to more than the
container has; when ``ENGINE_JOB_THREADS`` is not set, a job may use as many threads as the
process has CPUs (its affinity, and cgroup v2 ``cpu.max`` when that is lower), at most
:data:`MAX_DEFAULT_JOB_THREADS`.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024
#: Per-job budget when neither ``ENGINE_JOB_MEMORY_MB`` nor a container memory limit says otherwise.
DEFAULT_JOB_MEMORY_MB = 3072
#: Memory kept for the engine's API process (event loop, uvicorn, caches) when deriving job budgets.
API_HEADROOM_MB = 400
#: Where a container's memory limit is read: cgroup v2, then cgroup v1.
CGROUP_MEMORY_LIMIT_FILES = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)
#: cgroup v2 CPU quota of a container: ``"<quota> <period>"`` or ``"max <period>"``.
CGROUP_CPU_MAX_FILE = Path("/sys/fs/cgroup/cpu.max")
#: Threads one job uses by default at most (its per-channel work has few independent parts).
MAX_DEFAULT_JOB_THREADS = 4
#: A cgroup v1 "limit" at or above this is the kernel's way of saying "none".
_NO_LIMIT_BYTES = 1 << 60


def _default_download_dir() -> Path:
    return Path.cwd() / "data" / "mast"


def _default_temp_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "jwst-cache"


def _default_composite_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "jwst-composite-cache"


class Settings(BaseSettings):
    """Typed configuration for the MAST proxy and the processing engine."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", populate_by_name=True)

    # --- upstreams: MAST and its public bucket ---
    mast_base_url: str = Field(default="https://mast.stsci.edu", alias="MAST_BASE_URL")
    mast_s3_endpoint_url: str | None = Field(default=None, alias="MAST_S3_ENDPOINT_URL")
    mast_s3_bucket: str = Field(default="stpubdata", alias="MAST_S3_BUCKET")

    # --- MAST proxy ---
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

    # --- storage (both services) ---
    storage_provider: Literal["local", "s3"] = Field(default="local", alias="STORAGE_PROVIDER")
    storage_base_path: Path = Field(default=Path("/app/data"), alias="STORAGE_BASE_PATH")
    s3_bucket_name: str = Field(default="jwst-data", alias="S3_BUCKET_NAME")
    s3_endpoint: str | None = Field(default=None, alias="S3_ENDPOINT")
    s3_access_key: str | None = Field(default=None, alias="S3_ACCESS_KEY")
    s3_secret_key: str | None = Field(default=None, alias="S3_SECRET_KEY")
    s3_force_path_style: bool = Field(default=True, alias="S3_FORCE_PATH_STYLE")
    s3_public_endpoint: str | None = Field(default=None, alias="S3_PUBLIC_ENDPOINT")
    s3_region: str = Field(default="us-east-1", alias="S3_REGION")
    s3_create_bucket: bool = Field(default=False, alias="S3_CREATE_BUCKET")
    storage_temp_cache_max_bytes: int = Field(default=2 * 1024 * MIB, alias="STORAGE_TEMP_CACHE_MAX_BYTES", gt=0)
    storage_temp_cache_dir: Path = Field(default_factory=_default_temp_cache_dir, alias="STORAGE_TEMP_CACHE_DIR")

    # --- engine limits ---
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
    engine_job_memory_mb: int = Field(default=DEFAULT_JOB_MEMORY_MB, alias="ENGINE_JOB_MEMORY_MB", gt=0)
    engine_job_threads: int = Field(default=1, alias="ENGINE_JOB_THREADS", ge=1, le=64)
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

    @model_validator(mode="after")
    def _derive_job_memory(self) -> Settings:
        if "engine_job_memory_mb" not in self.model_fields_set:
            self.engine_job_memory_mb = job_memory_budget_mb(container_memory_limit_bytes(), self.engine_workers)
        if "engine_job_threads" not in self.model_fields_set:
            self.engine_job_threads = min(MAX_DEFAULT_JOB_THREADS, available_cpus())
        return self

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


def container_memory_limit_bytes(files: tuple[Path, ...] | None = None) -> int | None:
    """Return the memory limit of this process's cgroup in bytes, or ``None`` when there is none.

    ``files`` are tried in turn (default :data:`CGROUP_MEMORY_LIMIT_FILES`); the first readable one
    decides. ``max`` (cgroup v2) and v1's near-2**63 value mean no limit.
    """
    for path in CGROUP_MEMORY_LIMIT_FILES if files is None else files:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        return value if 0 < value < _NO_LIMIT_BYTES else None
    return None


def available_cpus(cpu_max_file: Path | None = None) -> int:
    """Return the CPUs this process may use: its affinity mask, lowered by a cgroup v2 CPU quota (at least 1)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (cpu_max_file or CGROUP_CPU_MAX_FILE).read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // max(1, int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def job_memory_budget_mb(limit_bytes: int | None, workers: int) -> int:
    """Return one job's memory budget (MB) so that ``workers`` jobs plus the API fit in ``limit_bytes``.

    Without a limit it is :data:`DEFAULT_JOB_MEMORY_MB`; with one, it is the limit less
    :data:`API_HEADROOM_MB`, divided by ``workers``, and never more than the default (at least 1).
    """
    if limit_bytes is None:
        return DEFAULT_JOB_MEMORY_MB
    share = (limit_bytes // MIB - API_HEADROOM_MB) // max(workers, 1)
    return max(1, min(DEFAULT_JOB_MEMORY_MB, share))


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
