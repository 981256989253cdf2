"""Request and response models of the MAST proxy: searches, product lists and download jobs.

Every optional field accepts an explicit ``null``; integer fields stay integers.
Numbers sent on to MAST are finite and in range (422 otherwise): RA in [0, 360), Dec in
[-90, 90], a cone radius in (0, 10] degrees, calibration levels in [-1, 4].
Status words of replies are ``StrEnum`` members; the fields that carry them stay typed ``str`` so
that the published schema keeps plain strings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from app.core.json_types import JsonInt, json_number

OBS_ID_PATTERN = r"^[a-zA-Z0-9._-]+$"
#: Largest cone radius, in degrees.
MAX_RADIUS_DEG = 10.0

RightAscension = Annotated[float, Field(ge=0.0, lt=360.0, allow_inf_nan=False, description="Degrees, [0, 360).")]
Declination = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False, description="Degrees, [-90, 90].")]
Radius = Annotated[
    float, Field(gt=0.0, le=MAX_RADIUS_DEG, allow_inf_nan=False, description="Cone radius in degrees, (0, 10].")
]
CalibLevel = Annotated[int, Field(strict=False, ge=-1, le=4), BeforeValidator(json_number)]
#: Documentation of every ``calib_level`` list.
CALIB_LEVELS = "MAST calibration levels to keep (each -1 to 4)"
OBS_ID = "MAST observation id (letters, digits, `.`, `_`, `-`; not dots only)."
PRODUCT_TYPE = "MAST productType to download, e.g. `SCIENCE`."


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
    """Status word of the synchronous download reply."""

    COMPLETED = "completed"
    FAILED = "failed"


# --- searches --------------------------------------------------------------------------


class TargetSearchRequest(BaseModel):
    """A target name resolved to coordinates, then a cone search."""

    target_name: str = Field(description="Target name, e.g. `NGC 3132` or `M16`.")
    radius: Radius = 0.2
    filters: dict[str, Any] | None = Field(default=None, description="Accepted for compatibility; not used.")
    calib_level: list[CalibLevel] | None = Field(default=[2, 3], description=f"{CALIB_LEVELS}; null for every level.")

    model_config = ConfigDict(
        strict=True, json_schema_extra={"examples": [{"target_name": "NGC 3132", "radius": 0.2, "calib_level": [3]}]}
    )


class CoordinateSearchRequest(BaseModel):
    """A cone search around ``(ra, dec)``."""

    ra: RightAscension
    dec: Declination
    radius: Radius = 0.2
    calib_level: list[CalibLevel] | None = Field(default=[2, 3], description=f"{CALIB_LEVELS}; null for every level.")

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={"examples": [{"ra": 151.7576, "dec": -40.4371, "radius": 0.1, "calib_level": [2, 3]}]},
    )


class ObservationSearchRequest(BaseModel):
    """Observations with the given ``obs_id`` (not pattern-checked)."""

    obs_id: str = Field(description="MAST observation id to look up.")
    calib_level: list[CalibLevel] | None = Field(default=None, description=f"{CALIB_LEVELS}; null for every level.")

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={"examples": [{"obs_id": "jw02733-o001_t001_nircam_clear-f444w", "calib_level": None}]},
    )


class ProgramSearchRequest(BaseModel):
    """Observations of a proposal."""

    program_id: str = Field(description="JWST proposal id, e.g. `2733`.")
    calib_level: list[CalibLevel] | None = Field(default=[2, 3], description=f"{CALIB_LEVELS}; null for every level.")

    model_config = ConfigDict(strict=True, json_schema_extra={"examples": [{"program_id": "2733", "calib_level": [3]}]})


class RecentSearchRequest(BaseModel):
    """Recently released observations."""

    days_back: JsonInt = Field(default=30, ge=1, le=365, description="Releases of the last this many days.")
    instrument: str | None = Field(default=None, description="Keep one instrument, e.g. `NIRCAM`; null for all.")
    limit: JsonInt = Field(default=50, ge=1, le=200, description="Rows returned at most.")
    offset: JsonInt = Field(default=0, ge=0, description="Rows skipped first (newest first).")

    model_config = ConfigDict(
        strict=True, json_schema_extra={"examples": [{"days_back": 14, "instrument": "MIRI", "limit": 50, "offset": 0}]}
    )


class MastSearchResponse(BaseModel):
    """Body of every search endpoint."""

    search_type: str = Field(description="`target`, `coordinates`, `observation`, `program` or `recent`.")
    query_params: dict[str, Any] = Field(description="The search's parameters, echoed.")
    results: list[dict[str, Any]] = Field(
        description="Raw CAOM observation rows (NaN as null, `mast:` links as download URLs)."
    )
    result_count: int = Field(description="Number of rows.")
    timestamp: str = Field(description="When the search ran (ISO 8601).")


# --- products -----------------------------------------------------------------------------


class ProductsRequest(BaseModel):
    """The science FITS products of one observation."""

    obs_id: str = Field(description="MAST observation id.")

    model_config = ConfigDict(
        strict=True, json_schema_extra={"examples": [{"obs_id": "jw02733-o001_t001_nircam_clear-f444w"}]}
    )


class ProductsResponse(BaseModel):
    """Body of ``POST /mast/products``."""

    obs_id: str = Field(description="The observation, echoed.")
    products: list[dict[str, Any]] = Field(description="Raw MAST product rows (science FITS only).")
    product_count: int = Field(description="Number of products.")


# --- downloads ------------------------------------------------------------------------


class MastDownloadRequest(BaseModel):
    """The legacy downloads (synchronous, and the background job in astroquery's layout)."""

    obs_id: str = Field(pattern=OBS_ID_PATTERN, description=OBS_ID)
    product_type: str = Field(default="SCIENCE", description=PRODUCT_TYPE)
    product_id: str | None = Field(default=None, description="Accepted for compatibility; not used.")

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={"examples": [{"obs_id": "jw02733-o001_t001_nircam_clear-f444w", "product_type": "SCIENCE"}]},
    )

    _check_obs_id = field_validator("obs_id")(_no_dot_only)


class MastDownloadResponse(BaseModel):
    """Body of the synchronous ``POST /mast/download``."""

    status: str = Field(description="`completed` or `failed`.", json_schema_extra={"enum": ["completed", "failed"]})
    obs_id: str = Field(description="The observation, echoed.")
    files: list[str] = Field(description="Absolute paths of the files downloaded.")
    file_count: int = Field(description="Number of files.")
    download_dir: str | None = Field(description="Directory of the files, or null when failed.")
    error: str | None = Field(description="Why it failed, or null.")
    timestamp: str = Field(description="When the download ended (ISO 8601).")


class ChunkedDownloadRequest(BaseModel):
    """Start (or resume) a resumable HTTP download job."""

    obs_id: str = Field(pattern=OBS_ID_PATTERN, description=OBS_ID)
    product_type: str = Field(default="SCIENCE", description=PRODUCT_TYPE)
    resume_job_id: str | None = Field(
        default=None, description="A paused or failed job to resume instead of starting one; null to start."
    )
    calib_level: list[CalibLevel] | None = Field(default=None, description=f"{CALIB_LEVELS}; null for every level.")

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "obs_id": "jw02733-o001_t001_nircam_clear-f444w",
                    "product_type": "SCIENCE",
                    "resume_job_id": None,
                    "calib_level": [3],
                }
            ]
        },
    )

    _check_obs_id = field_validator("obs_id")(_no_dot_only)


class S3DownloadRequest(BaseModel):
    """Start a parallel download from the public bucket."""

    obs_id: str = Field(pattern=OBS_ID_PATTERN, description=OBS_ID)
    product_type: str = Field(default="SCIENCE", description=PRODUCT_TYPE)
    calib_level: list[CalibLevel] | None = Field(default=None, description=f"{CALIB_LEVELS}; null for every level.")

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {"obs_id": "jw02733-o001_t001_nircam_clear-f444w", "product_type": "SCIENCE", "calib_level": [3]}
            ]
        },
    )

    _check_obs_id = field_validator("obs_id")(_no_dot_only)


class JobStartedResponse(BaseModel):
    """Reply of the job-starting endpoints."""

    job_id: str = Field(description="Identifier of the job, for progress, pause, resume, cancel and dismiss.")
    obs_id: str = Field(description="The observation, echoed.")
    message: str = Field(description="`Download started`, or `Download resumed` for a resume.")
    is_resume: bool = Field(default=False, description="Whether an existing job was resumed.")
    download_source: str | None = Field(default=None, description="`http` or `s3`, where the job says.")


class JobActionResponse(BaseModel):
    """Reply of resume, pause and cancel."""

    job_id: str = Field(description="The job.")
    status: str = Field(
        description="`resuming`, `paused` or `cancelled`.", json_schema_extra={"enum": [s.value for s in ActionStatus]}
    )
    message: str = Field(description="What was done, in words.")


class FileProgress(BaseModel):
    """Progress of one file of a job."""

    filename: str = Field(description="Name of the file.")
    total_bytes: int = Field(description="Size of the file (0 until known).")
    downloaded_bytes: int = Field(description="Bytes on disk.")
    progress_percent: float = Field(description="Share downloaded, 0-100.")
    status: str = Field(description="`pending`, `downloading`, `paused`, `complete` or `failed`.")


class JobProgress(BaseModel):
    """The progress object of a download job."""

    job_id: str = Field(description="The job.")
    obs_id: str = Field(description="Its observation.")
    stage: str = Field(
        description="`queued`, `fetching_products`, `downloading`, `paused`, `complete` or `failed`.",
        json_schema_extra={"enum": ["queued", "fetching_products", "downloading", "paused", "complete", "failed"]},
    )
    message: str = Field(description="The stage in words.")
    progress: int = Field(description="Overall progress, 0-100.")
    total_files: int = Field(description="Files to download.")
    downloaded_files: int = Field(description="Files done.")
    current_file: str | None = Field(description="File being downloaded, or null.")
    files: list[str] = Field(description="Absolute paths of the files done.")
    error: str | None = Field(description="Why the job failed, or null.")
    started_at: str = Field(description="When the job started (ISO 8601).")
    completed_at: str | None = Field(description="When it ended (ISO 8601), or null.")
    download_dir: str | None = Field(description="Directory of the files, or null.")
    is_complete: bool = Field(description="True for complete and failed jobs.")
    total_bytes: int = Field(description="Bytes to download (0 until known).")
    downloaded_bytes: int = Field(description="Bytes on disk.")
    download_progress_percent: float = Field(description="Share of bytes downloaded, 0-100.")
    speed_bytes_per_sec: float = Field(description="Recent transfer rate.")
    eta_seconds: float | None = Field(description="Estimated seconds left, or null.")
    file_progress: list[FileProgress] = Field(description="Progress of each file.")
    is_resumable: bool = Field(description="Whether the job can be resumed (paused or failed with files left).")


class ResumableJob(BaseModel):
    """One entry of ``GET /mast/download/resumable``."""

    job_id: str = Field(description="The job.")
    obs_id: str = Field(description="Its observation.")
    total_bytes: int = Field(description="Bytes to download.")
    downloaded_bytes: int = Field(description="Bytes on disk.")
    progress_percent: float = Field(description="Share downloaded, 0-100.")
    status: str = Field(
        description="Job status, usually `paused` or `failed` (a job whose worker stopped shows `paused`)."
    )
    total_files: int = Field(description="Files of the job.")
    completed_files: int = Field(description="Files done.")
    started_at: str | None = Field(description="When the job started (ISO 8601), or null.")


class ResumableJobsResponse(BaseModel):
    """Body of ``GET /mast/download/resumable``."""

    jobs: list[ResumableJob] = Field(description="The resumable jobs.")
    count: int = Field(description="Number of jobs.")


class DismissResponse(BaseModel):
    """Body of ``DELETE /mast/download/resumable/{job_id}``."""

    job_id: str = Field(description="The job.")
    dismissed: bool = Field(description="Always true (an unknown job is 404).")
    deleted_files: int = Field(description="Files deleted (0 without `delete_files=true`).")
