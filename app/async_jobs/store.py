"""Job records in storage, so that every engine replica answers for every job.

One prefix per job under ``.jobs/``: ``record.json`` (written only by the replica that runs the
job, whole and atomically: a local rename or one S3 PUT), ``cancel`` (a marker any replica may
write; the running replica polls for it) and ``result`` (the encoded image or the FITS file).
The storage calls block, so the async methods run them in threads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import anyio.to_thread
from pydantic import ValidationError

from app.async_jobs.schemas import JobRecord
from app.storage.provider import StorageProvider

PREFIX = ".jobs"
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def valid_job_id(job_id: str) -> bool:
    """Tell whether ``job_id`` has the shape of an id this service hands out."""
    return bool(_JOB_ID.match(job_id))


def record_key(job_id: str) -> str:
    """Return the key of the job's record."""
    return f"{PREFIX}/{job_id}/record.json"


def cancel_key(job_id: str) -> str:
    """Return the key of the job's cancel marker."""
    return f"{PREFIX}/{job_id}/cancel"


def result_key(job_id: str) -> str:
    """Return the key of the job's result."""
    return f"{PREFIX}/{job_id}/result"


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class JobStore:
    """Read and write job records, markers and results through a :class:`StorageProvider`."""

    def __init__(self, storage: StorageProvider) -> None:
        self.storage = storage

    async def save(self, record: JobRecord) -> None:
        """Write ``record`` whole."""
        data = record.model_dump_json().encode()
        await anyio.to_thread.run_sync(self.storage.write_bytes, record_key(record.job_id), data)

    async def load(self, job_id: str) -> JobRecord | None:
        """Return the record of ``job_id``, or None when there is none (or it cannot be read)."""
        return await anyio.to_thread.run_sync(self._load, job_id)

    def _load(self, job_id: str) -> JobRecord | None:
        if not valid_job_id(job_id) or not self.storage.exists(record_key(job_id)):
            return None
        try:
            return JobRecord.model_validate_json(self.storage.read_bytes(record_key(job_id)))
        except ValidationError:
            return None

    async def request_cancel(self, job_id: str) -> None:
        """Leave the cancel marker for the replica running the job."""
        await anyio.to_thread.run_sync(self.storage.write_bytes, cancel_key(job_id), b"cancel")

    async def cancel_requested(self, job_id: str) -> bool:
        """Tell whether someone asked to cancel the job."""
        return await anyio.to_thread.run_sync(self.storage.exists, cancel_key(job_id))

    async def write_result(self, job_id: str, content: bytes) -> None:
        """Store an encoded result."""
        await anyio.to_thread.run_sync(self.storage.write_bytes, result_key(job_id), content)

    async def delete(self, job_id: str) -> None:
        """Remove everything of the job."""
        await anyio.to_thread.run_sync(self._delete, job_id)

    def _delete(self, job_id: str) -> None:
        for key in self.storage.list_keys(f"{PREFIX}/{job_id}"):
            self.storage.delete(key)

    async def job_ids(self) -> list[str]:
        """Return the ids of every stored job."""
        keys = await anyio.to_thread.run_sync(self.storage.list_keys, PREFIX)
        ids = {key.split("/")[1] for key in keys if key.count("/") >= 2}
        return sorted(job_id for job_id in ids if valid_job_id(job_id))
