"""HTTP routes of the MAST proxy (thin: parse, call the service, return a model)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.api.deps import DownloadsDep, MastDep
from app.api.responses import errors
from app.mast.schemas import (
    ChunkedDownloadRequest,
    CoordinateSearchRequest,
    DismissResponse,
    JobActionResponse,
    JobProgress,
    JobStartedResponse,
    MastDownloadRequest,
    MastDownloadResponse,
    MastSearchResponse,
    ObservationSearchRequest,
    ProductsRequest,
    ProductsResponse,
    ProgramSearchRequest,
    RecentSearchRequest,
    ResumableJobsResponse,
    S3DownloadRequest,
    TargetSearchRequest,
)

router = APIRouter(prefix="/mast", tags=["mast"])

JobId = Annotated[str, Path(description="The `job_id` a start answered.")]
#: What a search can answer besides 200.
SEARCH_ERRORS = errors(413, 422, 502, 504)
#: How a job-start answer leads to the job's other operations (OpenAPI links, followed by clients and fuzzers).
JOB_LINKS = {
    name: {"operationId": operation, "parameters": {"job_id": "$response.body#/job_id"}, "description": text}
    for name, operation, text in (
        ("progress", "chunked_progress_mast_download_progress_chunked__job_id__get", "Progress of the job."),
        ("legacyProgress", "legacy_progress_mast_download_progress__job_id__get", "Progress of the job (legacy)."),
        ("pause", "pause_download_mast_download_pause__job_id__post", "Pause the job."),
        ("resume", "resume_download_mast_download_resume__job_id__post", "Resume the job once paused or failed."),
        ("cancel", "cancel_download_mast_download_cancel__job_id__post", "Cancel the job."),
        ("dismiss", "dismiss_resumable_mast_download_resumable__job_id__delete", "Forget the job's state."),
    )
}
STARTED: dict[int | str, dict[str, Any]] = {200: {"description": "The job was started.", "links": JOB_LINKS}}
START_ERRORS = errors(413, 422, meanings={400: "`Invalid obs_id`: it names no directory inside `MAST_DOWNLOAD_DIR`."})
NO_JOB = errors(meanings={404: "`Job <id> not found`."})


SEARCH_NOTE = (
    " JWST, public data only. Rows are raw CAOM columns; NaN becomes null and `mast:` links become"
    " download URLs on `MAST_BASE_URL`. 504 when MAST is slower than `MAST_SEARCH_TIMEOUT`, 502 when"
    " MAST is down or answers with an error."
)


@router.post(
    "/search/target",
    response_model=MastSearchResponse,
    responses={**SEARCH_ERRORS, **errors(meanings={404: "The target name cannot be resolved."})},
    summary="Search by target name",
    description="Resolves the name with MAST's name lookup (trying spelling variants), then a cone search of"
    " `radius` degrees. `calib_level: null` means every level. 404 when the name cannot be resolved." + SEARCH_NOTE,
)
async def search_target(body: TargetSearchRequest, mast: MastDep) -> MastSearchResponse:
    return await mast.search_target(body.target_name, body.radius, body.calib_level)


@router.post(
    "/search/coordinates",
    response_model=MastSearchResponse,
    responses=SEARCH_ERRORS,
    summary="Cone search around coordinates",
    description="Observations within `radius` degrees (great circle) of `(ra, dec)`." + SEARCH_NOTE,
)
async def search_coordinates(body: CoordinateSearchRequest, mast: MastDep) -> MastSearchResponse:
    return await mast.search_coordinates(body.ra, body.dec, body.radius, body.calib_level)


@router.post(
    "/search/observation",
    response_model=MastSearchResponse,
    responses=SEARCH_ERRORS,
    summary="Search by observation id",
    description="Observations whose `obs_id` matches; `calib_level` defaults to every level." + SEARCH_NOTE,
)
async def search_observation(body: ObservationSearchRequest, mast: MastDep) -> MastSearchResponse:
    return await mast.search_observation(body.obs_id, body.calib_level)


@router.post(
    "/search/program",
    response_model=MastSearchResponse,
    responses=SEARCH_ERRORS,
    summary="Search by program id",
    description="Observations of a JWST proposal." + SEARCH_NOTE,
)
async def search_program(body: ProgramSearchRequest, mast: MastDep) -> MastSearchResponse:
    return await mast.search_program(body.program_id, body.calib_level)


@router.post(
    "/search/recent",
    response_model=MastSearchResponse,
    responses=SEARCH_ERRORS,
    summary="Recent public releases",
    description="Observations released in the last `days_back` days (1-365), optionally of one instrument,"
    " newest first, then `offset` and `limit` (1-200)." + SEARCH_NOTE,
)
async def search_recent(body: RecentSearchRequest, mast: MastDep) -> MastSearchResponse:
    return await mast.search_recent(body.days_back, body.instrument, body.limit, body.offset)


@router.post(
    "/products",
    response_model=ProductsResponse,
    responses=SEARCH_ERRORS,
    summary="Science FITS products of an observation",
    description="Raw MAST product rows with `productType=SCIENCE` and a `.fits` filename. An unknown"
    " observation gives an empty list. 504 on timeout, 502 when MAST fails.",
)
async def list_products(body: ProductsRequest, mast: MastDep) -> ProductsResponse:
    return await mast.products(body.obs_id)


@router.post(
    "/download",
    response_model=MastDownloadResponse,
    responses=errors(
        413,
        422,
        meanings={
            400: "`Invalid obs_id`: it names no directory inside `MAST_DOWNLOAD_DIR`.",
            504: "The download took longer than `MAST_DOWNLOAD_TIMEOUT`.",
        },
    ),
    summary="Download an observation synchronously (legacy)",
    description="Downloads the products into `<MAST_DOWNLOAD_DIR>/<obs_id>/mastDownload/...` and returns"
    ' absolute paths. A failed download is HTTP 200 with `status: "failed"` and `error`, and so is an'
    " observation MAST does not know (an observation without FITS products is `completed`, empty). 504"
    " after `MAST_DOWNLOAD_TIMEOUT`.",
)
async def download_sync(body: MastDownloadRequest, jobs: DownloadsDep) -> MastDownloadResponse:
    return await jobs.download_now(body.obs_id, body.product_type, body.product_id)


@router.post(
    "/download/start",
    response_model=JobStartedResponse,
    responses={**STARTED, **START_ERRORS},
    summary="Start a background download (legacy)",
    description="Starts a job that writes astroquery's nested layout; poll `/mast/download/progress/{job_id}`.",
)
async def start_download(body: MastDownloadRequest, jobs: DownloadsDep) -> JobStartedResponse:
    return await jobs.start_legacy(body.obs_id, body.product_type)


@router.get(
    "/download/progress/{job_id}",
    response_model=JobProgress,
    responses=NO_JOB,
    summary="Progress of a background download",
    description="The progress object of any job. 404 `Job <id> not found`.",
)
async def legacy_progress(job_id: JobId, jobs: DownloadsDep) -> JobProgress:
    return await jobs.progress(job_id)


@router.post(
    "/download/start-chunked",
    response_model=JobStartedResponse,
    response_model_exclude_unset=True,
    responses={
        **STARTED,
        **START_ERRORS,
        **errors(
            meanings={
                400: "`Invalid obs_id`, or `resume_job_id` names a job that is not resumable.",
                409: "The job of `resume_job_id` is already being resumed.",
            }
        ),
    },
    summary="Start a resumable chunked HTTP download",
    description="Streams every science FITS product (buffered writes, 3 files in parallel, retries with"
    " backoff) into `<MAST_DOWNLOAD_DIR>/<obs_id>/`. With `resume_job_id` naming a paused or failed"
    ' job, resumes it instead and answers exactly `{job_id, obs_id, message: "Download resumed",'
    " is_resume: true}`. 409 if that job is already running.",
)
async def start_chunked(body: ChunkedDownloadRequest, jobs: DownloadsDep) -> JobStartedResponse:
    return await jobs.start_chunked(body.obs_id, body.product_type, body.calib_level, body.resume_job_id)


@router.post(
    "/download/resume/{job_id}",
    response_model=JobActionResponse,
    responses=errors(
        meanings={
            400: "The job is not resumable (cancelled, complete, or a legacy job).",
            404: "`No resumable state found for job <id>`.",
            409: "The job is already being resumed or running.",
        }
    ),
    summary="Resume a paused or failed download",
    description="Continues from the saved state, keeping every byte already on disk. 404 without"
    " state, 400 for a cancelled job, 409 if it is already running. Works on any worker.",
)
async def resume_download(job_id: JobId, jobs: DownloadsDep) -> JobActionResponse:
    return await jobs.resume(job_id)


@router.post(
    "/download/pause/{job_id}",
    response_model=JobActionResponse,
    responses=errors(meanings={404: "`No active download for job <id>`."}),
    summary="Pause a download",
    description="Stops a running job (whichever worker runs it) and keeps it resumable. 404 `No active"
    " download for job <id>`.",
)
async def pause_download(job_id: JobId, jobs: DownloadsDep) -> JobActionResponse:
    return await jobs.pause(job_id)


@router.post(
    "/download/cancel/{job_id}",
    response_model=JobActionResponse,
    responses=errors(meanings={404: "`No download found for job <id>`."}),
    summary="Cancel a download",
    description="Stops a job for good; its state becomes `cancelled`. 404 `No download found for job <id>`.",
)
async def cancel_download(job_id: JobId, jobs: DownloadsDep) -> JobActionResponse:
    return await jobs.cancel(job_id)


@router.get(
    "/download/resumable",
    response_model=ResumableJobsResponse,
    summary="List resumable downloads",
    description="Paused, failed or interrupted jobs with files left to fetch. When several jobs share"
    " an obs_id only the most advanced is kept; the others' state is deleted.",
)
async def list_resumable(jobs: DownloadsDep) -> ResumableJobsResponse:
    return await jobs.resumable()


@router.delete(
    "/download/resumable/{job_id}",
    response_model=DismissResponse,
    responses={**NO_JOB, **errors(422)},
    summary="Dismiss a resumable download",
    description="Removes the job's state; with `delete_files=true` also its files inside"
    " `MAST_DOWNLOAD_DIR`. 404 `Job <id> not found`.",
)
async def dismiss_resumable(
    job_id: JobId,
    jobs: DownloadsDep,
    delete_files: Annotated[bool, Query(description="Also delete the downloaded files.")] = False,
) -> DismissResponse:
    return await jobs.dismiss(job_id, delete_files)


@router.get(
    "/download/progress-chunked/{job_id}",
    response_model=JobProgress,
    responses=NO_JOB,
    summary="Progress of a download job",
    description="The progress object, answered by any worker from the shared state."
    " `is_complete` is true for complete and failed jobs. 404 `Job <id> not found`.",
)
async def chunked_progress(job_id: JobId, jobs: DownloadsDep) -> JobProgress:
    return await jobs.progress(job_id)


@router.post(
    "/download/start-s3",
    response_model=JobStartedResponse,
    responses={**STARTED, **START_ERRORS},
    summary="Start a parallel download from the public S3 bucket",
    description="Reads the products from `MAST_S3_BUCKET` (anonymous) with parallel ranged GETs; keys"
    " come from MAST's cloud path lookup. A product without a cloud copy fails the job with"
    " `S3_UNAVAILABLE:` so the caller can fall back to HTTP.",
)
async def start_s3(body: S3DownloadRequest, jobs: DownloadsDep) -> JobStartedResponse:
    return await jobs.start_s3(body.obs_id, body.product_type, body.calib_level)
