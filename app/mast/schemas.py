"""Request and response models of the MAST proxy (wire format: ``docs/api.md``).

Every optional field accepts an explicit ``null`` (the backend writes them); integer fields stay integers.
Numbers sent on to MAST are finite and in range (422 otherwise): RA in [0, 360), Dec in
[-90, 90], a cone radius in (0, 10] degrees, calibration levels in [-1, 4].
Status words of replies are ``StrEnum`` members; the fields that carry them stay typed ``str`` so
that the published schema keeps plain strings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

OBS_ID_PATTERN = r"^[a-zA-Z0-9._-]+$"
#: Largest cone radius, in degrees.
MAX_RADIUS_DEG = 10.0

RightAscension = Annotated[float, Field(ge=0.0, lt=360.0, allow_inf_nan=False, description="Degrees, [0, 360).")]
Declination = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False, description="Degrees, [-90, 90].")]
Radius = Annotated[
    float, Field(gt=0.0, le=MAX_RADIUS_DEG, allow_inf_nan=False, description="Cone radius in degrees, (0, 10].")
]
CalibLevel = Annotated[int, Field(ge=-1, le=4)]


def _no_dot_only(value: str) -> str:
    """Refuse ``.`` and ``..`` (they match the safe pattern but name the parent directories)."""
    if set(value) <= {"."}:
        raise ValueError("obs_id must not consist of dots only")
    return value


class ActionStatus(StrEnum):
    """Status word of a resume, pause or cancel reply."""

    RESUMING = "resuming"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class SyncDownloadStatus(StrEnum):
    """Status word of the synchronous download reply (``POST /mast/download``)."""

    COMPLETED = "completed"
    FAILED = "failed"


# --- searches --------------------------------------------------------------------------------------


class TargetSearchRequest(BaseModel):
    """``POST /mast/search/target``: a target name resolved to coordinates, then a cone search."""

    target_name: str
    radius: Radius = 0.2
    filters: dict[str, Any] | None = None
    calib_level: list[CalibLevel] | None = [2, 3]


class CoordinateSearchRequest(BaseModel):
    """``POST /mast/search/coordinates``: a cone search around ``(ra, dec)``."""

    ra: RightAscension
    dec: Declination
    radius: Radius = 0.2
    calib_level: list[CalibLevel] | None = [2, 3]


class ObservationSearchRequest(BaseModel):
    """``POST /mast/search/observation``: observations with the given ``obs_id`` (not pattern-checked)."""

    obs_id: str
    calib_level: list[CalibLevel] | None = None


class ProgramSearchRequest(BaseModel):
    """``POST /mast/search/program``: observations of a proposal."""

    program_id: str
    calib_level: list[CalibLevel] | None = [2, 3]


class RecentSearchRequest(BaseModel):
    """``POST /mast/search/recent``: recently released observations."""

    days_back: int = Field(default=30, ge=1, le=365)
    instrument: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0)


class MastSearchResponse(BaseModel):
    """Body of every search endpoint."""

    search_type: str
    query_params: dict[str, Any]
    results: list[dict[str, Any]]
    result_count: int
    timestamp: str


# --- products (``POST /mast/products``) --------------------------------------------------------------------


class ProductsRequest(BaseModel):
    """``POST /mast/products``: the science FITS products of one observation."""

    obs_id: str


class ProductsResponse(BaseModel):
    """Body of ``POST /mast/products``."""

    obs_id: str
    products: list[dict[str, Any]]
    product_count: int


# --- downloads ------------------------------------------------------------------------------------


class MastDownloadRequest(BaseModel):
    """Body of the legacy downloads (``POST /mast/download`` and ``/mast/download/start``)."""

    obs_id: str = Field(pattern=OBS_ID_PATTERN)
    product_type: str = "SCIENCE"
    product_id: str | None = None

    _check_obs_id = field_validator("obs_id")(_no_dot_only)


class MastDownloadResponse(BaseModel):
    """Body of the synchronous ``POST /mast/download``."""

    status: str
    obs_id: str
    files: list[str]
    file_count: int
    download_dir: str | None
    error: str | None
    timestamp: str


class ChunkedDownloadRequest(BaseModel):
    """``POST /mast/download/start-chunked``: start (or resume) a resumable HTTP download job."""

    obs_id: str = Field(pattern=OBS_ID_PATTERN)
    product_type: str = "SCIENCE"
    resume_job_id: str | None = None
    calib_level: list[CalibLevel] | None = None

    _check_obs_id = field_validator("obs_id")(_no_dot_only)


class S3DownloadRequest(BaseModel):
    """``POST /mast/download/start-s3``: start a parallel download from the public bucket."""

    obs_id: str = Field(pattern=OBS_ID_PATTERN)
    product_type: str = "SCIENCE"
    calib_level: list[CalibLevel] | None = None

    _check_obs_id = field_validator("obs_id")(_no_dot_only)


class JobStartedResponse(BaseModel):
    """Reply of the job-starting endpoints (``start``, ``start-chunked``, ``start-s3``)."""

    job_id: str
    obs_id: str
    message: str
    is_resume: bool = False
    download_source: str | None = None


class JobActionResponse(BaseModel):
    """Reply of resume, pause and cancel ."""

    job_id: str
    status: str
    message: str


class FileProgress(BaseModel):
    """Progress of one file of a job."""

    filename: str
    total_bytes: int
    downloaded_bytes: int
    progress_percent: float
    status: str


class JobProgress(BaseModel):
    """The progress object of a download job (``progress/{job_id}`` and ``progress-chunked/{job_id}``)."""

    job_id: str
    obs_id: str
    stage: str
    message: str
    progress: int
    total_files: int
    downloaded_files: int
    current_file: str | None
    files: list[str]
    error: str | None
    started_at: str
    completed_at: str | None
    download_dir: str | None
    is_complete: bool
    total_bytes: int
    downloaded_bytes: int
    download_progress_percent: float
    speed_bytes_per_sec: float
    eta_seconds: float | None
    file_progress: list[FileProgress]
    is_resumable: bool


class ResumableJob(BaseModel):
    """One entry of ``GET /mast/download/resumable``."""

    job_id: str
    obs_id: str
    total_bytes: int
    downloaded_bytes: int
    progress_percent: float
    status: str
    total_files: int
    completed_files: int
    started_at: str | None


class ResumableJobsResponse(BaseModel):
    """Body of ``GET /mast/download/resumable``."""

    jobs: list[ResumableJob]
    count: int


class DismissResponse(BaseModel):
    """Body of ``DELETE /mast/download/resumable/{job_id}``."""

    job_id: str
    dismissed: bool
    deleted_files: int
