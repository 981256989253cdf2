"""HTTP routes of the asynchronous jobs (thin: parse, call the service, return a model or a stream)."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse

from app.api.deps import AsyncJobsDep
from app.async_jobs.schemas import JobAccepted, JobRecord
from app.composite.schemas import NChannelCompositeRequest
from app.mosaic.schemas import MosaicRequest

router = APIRouter(prefix="/jobs", tags=["jobs"])

_ACCEPTED = "Checked as the synchronous endpoint checks it (same 400/413/422), admitted by the same gate (429)."


@router.post(
    "/composite",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    summary="Submit a composite as a job",
    description="The body of `POST /composite/generate-nchannel`; answers 202 with the job id. " + _ACCEPTED,
)
async def submit_composite(request: NChannelCompositeRequest, jobs: AsyncJobsDep) -> JobAccepted:
    return await jobs.submit_composite(request)


@router.post(
    "/mosaic",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    summary="Submit a mosaic as a job",
    description="The body of `POST /mosaic/generate`; answers 202 with the job id. " + _ACCEPTED,
)
async def submit_mosaic(request: MosaicRequest, jobs: AsyncJobsDep) -> JobAccepted:
    return await jobs.submit_mosaic(request)


@router.get(
    "/{job_id}",
    response_model=JobRecord,
    summary="Status of a job",
    description="Stage, share done, blocks done / total and estimated seconds left; any engine replica "
    "answers. A job whose engine stopped answering is reported `failed`.",
)
async def job_status(job_id: str, jobs: AsyncJobsDep) -> JobRecord:
    return await jobs.status(job_id)


@router.post(
    "/{job_id}/cancel",
    response_model=JobRecord,
    summary="Cancel a job",
    description="Stops the job (its worker is freed). Answers the record: `cancelled`, or still `running` for a "
    "moment when another replica runs it. 409 when the job has already ended.",
)
async def cancel_job(job_id: str, jobs: AsyncJobsDep) -> JobRecord:
    return await jobs.cancel(job_id)


@router.get(
    "/{job_id}/result",
    summary="Result of a job",
    description="The bytes the synchronous endpoint would have sent, with the same media type and X-Composite-* / "
    "X-Mosaic-* headers. 409 until the job has completed (and for a failed or cancelled job).",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "application/fits": {}}}},
)
async def job_result(job_id: str, jobs: AsyncJobsDep) -> StreamingResponse:
    result = await jobs.result(job_id)
    return StreamingResponse(result.stream, media_type=result.media_type, headers=result.headers)
