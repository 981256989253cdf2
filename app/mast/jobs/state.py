"""Download job state as persisted: the models, their statuses and every transition.

A :class:`JobState` with its :class:`FileState` items is what a job's state file holds. Statuses
and stages are ``StrEnum`` members, so the JSON keeps the plain strings that state files have
always held (``"pending"``, ``"paused"``, ...) and older files still load. No code outside this
module assigns a status: every change goes through a transition method (``file.mark_complete()``,
``job.pause()``, ``job.fail(error)``, ...), which also keeps the fields that go with it in step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

JobKind = Literal["chunked", "s3", "legacy"]
ControlAction = Literal["pause", "cancel"]

#: The error of a job cancelled by its user.
CANCELLED_ERROR = "Download cancelled by user"


def utc_now() -> str:
    """Return the current time as ISO-8601 UTC."""
    return datetime.now(UTC).isoformat()


class JobStatus(StrEnum):
    """Status of a download job."""

    PENDING = "pending"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FileStatus(StrEnum):
    """Status of one file of a job."""

    PENDING = "pending"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAILED = "failed"


class JobStage(StrEnum):
    """What a job is doing, as its progress object reports it."""

    QUEUED = "queued"
    FETCHING_PRODUCTS = "fetching_products"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAILED = "failed"


#: Job statuses from which a job can be resumed.
RESUMABLE_STATUSES = frozenset({JobStatus.PAUSED, JobStatus.FAILED, JobStatus.DOWNLOADING, JobStatus.PENDING})
#: Job statuses of a job marked as running (its owner may have died since).
RUNNING_STATUSES = frozenset({JobStatus.PENDING, JobStatus.DOWNLOADING})
#: Job statuses after which nothing runs any more.
FINAL_STATUSES = frozenset({JobStatus.COMPLETE, JobStatus.CANCELLED, JobStatus.FAILED})
#: File statuses that still need work.
OPEN_FILE_STATUSES = frozenset({FileStatus.PENDING, FileStatus.PAUSED, FileStatus.DOWNLOADING})


class Segment(BaseModel):
    """A byte range ``[start, end)`` of an S3 object and how many bytes from its start are on disk.

    The segments of a file always tile the whole object; splitting one moves its ``end`` (never
    below what is on disk or in flight) and adds the rest as a new segment.
    """

    start: int
    end: int
    done: int = 0

    @property
    def remaining(self) -> int:
        """Return the bytes of the segment not yet on disk."""
        return self.end - self.start - self.done


class FileState(BaseModel):
    """One file of a job (its persisted fields plus the source of its bytes)."""

    filename: str
    url: str = ""
    local_path: str
    total_bytes: int = 0
    downloaded_bytes: int = 0
    status: FileStatus = FileStatus.PENDING
    error: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    uri: str | None = None
    s3_key: str | None = None
    segments: list[Segment] = Field(default_factory=list)

    @property
    def is_complete(self) -> bool:
        """Return whether the file is complete."""
        return self.status == FileStatus.COMPLETE

    @property
    def has_work_left(self) -> bool:
        """Return whether the file still needs work (open, or failed and retried on resume)."""
        return self.status in OPEN_FILE_STATUSES or self.status == FileStatus.FAILED

    def segments_bytes(self) -> int:
        """Return the bytes on disk of a ranged S3 download: each segment's contiguous prefix."""
        return sum(segment.done for segment in self.segments)

    # --- transitions ---------------------------------------------------------------------------

    def mark_downloading(self) -> None:
        """Mark the file as being downloaded, keeping the time it first started."""
        self.status = FileStatus.DOWNLOADING
        self.started_at = self.started_at or utc_now()

    def mark_complete(self) -> None:
        """Mark the file as complete now."""
        self.status = FileStatus.COMPLETE
        self.error = None
        self.completed_at = utc_now()

    def mark_failed(self, error: str) -> None:
        """Mark the file as failed with ``error`` (safe to show to clients)."""
        self.status = FileStatus.FAILED
        self.error = error

    def interrupt(self) -> None:
        """Mark the file as paused if it was downloading; any other status is kept."""
        if self.status == FileStatus.DOWNLOADING:
            self.status = FileStatus.PAUSED

    def requeue(self) -> None:
        """Queue the file again if it had failed (a resume retries it)."""
        if self.status == FileStatus.FAILED:
            self.status = FileStatus.PENDING

    def found_complete(self, size: int) -> None:
        """Record that the final file is on disk with ``size`` bytes."""
        self.status = FileStatus.COMPLETE
        self.downloaded_bytes = size
        self.error = None

    def found_partial(self, part_size: int) -> None:
        """Record that a ``.part`` file of ``part_size`` bytes is on disk.

        A pre-sized S3 ``.part`` keeps its segment record (the bytes on disk are its prefixes);
        any other ``.part`` counts as a contiguous prefix of ``part_size`` bytes.
        """
        if self.s3_key and self.segments and part_size == self.total_bytes:
            self.downloaded_bytes = self.segments_bytes()
        else:
            self.downloaded_bytes = part_size
            self.segments = []
        self.status = FileStatus.PAUSED
        self.error = None

    def found_missing(self) -> None:
        """Record that nothing of the file is on disk."""
        self.status = FileStatus.PENDING
        self.downloaded_bytes = 0
        self.segments = []
        self.error = None


class JobState(BaseModel):
    """A download job as persisted (the state file's top level plus the live progress fields)."""

    job_id: str
    obs_id: str
    download_dir: str
    files: list[FileState] = Field(default_factory=list)
    total_bytes: int = 0
    downloaded_bytes: int = 0
    status: JobStatus = JobStatus.PENDING
    started_at: str = ""
    completed_at: str | None = None
    error: str | None = None
    saved_at: str | None = None
    kind: JobKind = "chunked"
    stage: JobStage = JobStage.QUEUED
    message: str = ""
    current_file: str | None = None
    speed_bytes_per_sec: float = 0.0
    eta_seconds: float | None = None
    product_type: str = "SCIENCE"
    calib_level: list[int] | None = None
    owner_pid: int | None = None

    @property
    def marked_running(self) -> bool:
        """Return whether the job is marked as running (pending or downloading)."""
        return self.status in RUNNING_STATUSES

    @property
    def resumable_status(self) -> bool:
        """Return whether the job's status allows a resume."""
        return self.status in RESUMABLE_STATUSES

    def recount(self) -> None:
        """Recompute the job totals from its files."""
        self.total_bytes = sum(f.total_bytes for f in self.files)
        self.downloaded_bytes = sum(min(f.downloaded_bytes, f.total_bytes or f.downloaded_bytes) for f in self.files)

    # --- transitions ---------------------------------------------------------------------------

    def begin_fetch(self) -> None:
        """Enter the product list stage."""
        self.status = JobStatus.PENDING
        self.stage = JobStage.FETCHING_PRODUCTS
        self.message = "Fetching product list..."

    def begin_download(self, message: str) -> None:
        """Enter the download stage with ``message``."""
        self.status = JobStatus.DOWNLOADING
        self.stage = JobStage.DOWNLOADING
        self.message = message

    def complete(self, message: str) -> None:
        """Mark the job as complete now with ``message``."""
        self.status = JobStatus.COMPLETE
        self.stage = JobStage.COMPLETE
        self.message = message
        self.completed_at = utc_now()
        self.current_file = None
        self.eta_seconds = 0.0

    def fail(self, error: str) -> None:
        """Mark the job as failed now with ``error``; files that were downloading become paused."""
        self._stop_transfer()
        self.status = JobStatus.FAILED
        self.stage = JobStage.FAILED
        self.error = error
        self.message = f"Failed: {error}"
        self.completed_at = utc_now()

    def pause(self) -> None:
        """Mark the job as paused (resumable); files that were downloading become paused."""
        self._stop_transfer()
        self.status = JobStatus.PAUSED
        self.stage = JobStage.PAUSED
        self.message = "Download paused"

    def cancel(self) -> None:
        """Mark the job as cancelled by its user now; files that were downloading become paused."""
        self._stop_transfer()
        self.status = JobStatus.CANCELLED
        self.stage = JobStage.FAILED
        self.error = CANCELLED_ERROR
        self.message = "Download cancelled"
        self.completed_at = utc_now()

    def interrupt(self, action: ControlAction) -> None:
        """Apply a control request: cancel the job, or pause it."""
        if action == "cancel":
            self.cancel()
        else:
            self.pause()

    def requeue_failed_files(self) -> None:
        """Queue every failed file again (before a resume re-checks the disk)."""
        for file in self.files:
            file.requeue()

    def reset_for_resume(self) -> None:
        """Queue the job again for a resume, forgetting its last outcome."""
        self.error = None
        self.completed_at = None
        self.product_type = "SCIENCE"
        self.status = JobStatus.PENDING
        self.stage = JobStage.QUEUED
        self.message = "Resuming download"

    def _stop_transfer(self) -> None:
        for file in self.files:
            file.interrupt()
        self.current_file = None
        self.speed_bytes_per_sec = 0.0
        self.eta_seconds = None
