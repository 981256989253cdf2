"""HTTP routes of the asynchronous jobs (thin: parse, call the service, return a model or a stream)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import StreamingResponse

from app.api.deps import AsyncJobsDep
from app.api.responses import READS_FILES, binary_content, errors, header
from app.async_jobs.schemas import JobAccepted, JobRecord
from app.composite.schemas import COMPOSITE_HEADERS, NChannelCompositeRequest
from app.mosaic.schemas import MOSAIC_HEADERS, MosaicRequest

router = APIRouter(prefix="/jobs", tags=["jobs"])

_ACCEPTED = "Checked as the synchronous endpoint checks it (same 400/413/422), admitted by the same gate (429)."
JobId = Annotated[str, Path(description="The `job_id` of the submit answer.")]

#: How the answer of a submit leads to the job's other operations (OpenAPI links).
JOB_LINKS = {
    name: {"operationId": operation, "parameters": {"job_id": "$response.body#/job_id"}, "description": text}
    for name, operation, text in (
        ("status", "job_status_jobs__job_id__get", "The job's status."),
        ("cancel", "cancel_job_jobs__job_id__cancel_post", "Cancel the job."),
        ("result", "job_result_jobs__job_id__result_get", "The job's result, once completed."),
    )
}
#: What a submit can answer besides 202: the synchronous endpoint's checks and the gate (not its deadline).
SUBMIT_ERRORS = errors(
    READS_FILES,
    429,
    503,
    meanings={
        400: "The synchronous endpoint's 400: a parameter not allowed (cmap, width/height with FITS).",
        413: "Request body larger than `MAX_REQUEST_BODY_BYTES`.",
        422: "Validation failed (a list), or the composite's channels are inconsistent (a sentence).",
    },
    domain_422=True,
)
UNKNOWN_JOB = errors(503, meanings={404: "`Job not found: <job_id>`."})


@router.post(
    "/composite",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={202: {"description": "The job was accepted.", "links": JOB_LINKS}, **SUBMIT_ERRORS},
    summary="Submit a composite as a job",
    description="The body of `POST /composite/generate-nchannel`; answers 202 with the job id. " + _ACCEPTED,
)
async def submit_composite(request: NChannelCompositeRequest, jobs: AsyncJobsDep) -> JobAccepted:
    return await jobs.submit_composite(request)


@router.post(
    "/mosaic",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={202: {"description": "The job was accepted.", "links": JOB_LINKS}, **SUBMIT_ERRORS},
    summary="Submit a mosaic as a job",
    description="The body of `POST /mosaic/generate`; answers 202 with the job id. " + _ACCEPTED,
)
async def submit_mosaic(request: MosaicRequest, jobs: AsyncJobsDep) -> JobAccepted:
    return await jobs.submit_mosaic(request)


@router.get(
    "/{job_id}",
    response_model=JobRecord,
    responses=UNKNOWN_JOB,
    summary="Status of a job",
    description="Stage, share done, blocks done / total and estimated seconds left; any engine replica "
    "answers. A job whose engine stopped answering is reported `failed`.",
)
async def job_status(job_id: JobId, jobs: AsyncJobsDep) -> JobRecord:
    return await jobs.status(job_id)


@router.post(
    "/{job_id}/cancel",
    response_model=JobRecord,
    responses={**UNKNOWN_JOB, **errors(meanings={409: "`Job already <status>`: the job has ended."})},
    summary="Cancel a job",
    description="Stops the job (its worker is freed). Answers the record: `cancelled`, or still `running` for a "
    "moment when another replica runs it. 409 when the job has already ended.",
)
async def cancel_job(job_id: JobId, jobs: AsyncJobsDep) -> JobRecord:
    return await jobs.cancel(job_id)


@router.get(
    "/{job_id}/result",
    summary="Result of a job",
    description="The bytes the synchronous endpoint would have sent, with the same media type and X-Composite-* / "
    "X-Mosaic-* headers. 409 until the job has completed (and for a failed or cancelled job).",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": binary_content("image/png", "image/jpeg", "application/fits", "application/octet-stream"),
            "description": "The result, with the media type and headers the synchronous endpoint would send.",
            "headers": {
                "X-Job-Id": header("The job.", required=True),
                **{name: {**spec, "required": False} for name, spec in {**COMPOSITE_HEADERS, **MOSAIC_HEADERS}.items()},
                "Content-Disposition": header('`attachment; filename="mosaic_i2d.fits"` for a FITS mosaic.'),
            },
        },
        **UNKNOWN_JOB,
        **errors(meanings={409: "`Job is <status>[: <error>]`: the job has not completed."}),
    },
)
async def job_result(job_id: JobId, jobs: AsyncJobsDep) -> StreamingResponse:
    result = await jobs.result(job_id)
    return StreamingResponse(result.stream, media_type=result.media_type, headers=result.headers)
