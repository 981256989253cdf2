"""Models of the asynchronous job endpoints: the submit answer and the job's status."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class JobKind(StrEnum):
    """What a job builds."""

    COMPOSITE = "composite"
    MOSAIC = "mosaic"


class JobStatus(StrEnum):
    """Where a job is: ``queued`` and ``running`` change; the others are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobRecord(BaseModel):
    """A job as stored (``.jobs/<job_id>/record.json``): what any engine replica answers from."""

    job_id: str = Field(description="32 hexadecimal characters.")
    kind: JobKind = Field(description="`composite` or `mosaic`.")
    status: JobStatus = Field(description="queued, running, completed, failed or cancelled.")
    stage: str = Field(
        description="What the job is doing: queued, rendering, planning, blocks, assembling, storing, done."
    )
    fraction: float = Field(ge=0.0, le=1.0, description="Share of the work done, 0 to 1.")
    blocks_done: int | None = Field(default=None, description="Output blocks built (mosaics by blocks), else null.")
    blocks_total: int | None = Field(default=None, description="Output blocks in all (mosaics by blocks), else null.")
    eta_seconds: float | None = Field(default=None, description="Estimated seconds left; null until estimable.")
    error: str | None = Field(default=None, description="Why the job failed (the synchronous endpoint's detail).")
    error_status: int | None = Field(default=None, description="HTTP status the synchronous endpoint would give.")
    created_at: datetime = Field(description="When the job was submitted (UTC).")
    updated_at: datetime = Field(description="Last change or heartbeat of the engine running it (UTC).")
    media_type: str | None = Field(default=None, description="Media type of the result, once completed.")
    result_bytes: int | None = Field(default=None, description="Size of the result, once completed.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="The X-Composite-* / X-Mosaic-* headers of the result."
    )


class JobAccepted(BaseModel):
    """The 202 answer to a submit."""

    job_id: str = Field(description="Identifier of the job, for the other job endpoints.")
    kind: JobKind = Field(description="`composite` or `mosaic`.")
    status: JobStatus = Field(description="Always `queued` in this answer.")
    status_url: str = Field(description="Path of the job's status (`GET`).")
    result_url: str = Field(description="Path of the job's result (`GET`; 409 until completed).")
    cancel_url: str = Field(description="Path that cancels the job (`POST`).")
