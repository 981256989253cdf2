"""Asynchronous composites and mosaics: the same work as the synchronous endpoints, watched.

A submit checks the request as the synchronous endpoint does (400/422 at once, and every storage
key: 403 for one that leaves the root, 404 for a missing file) and takes a slot of the executor's
gate (429 with ``Retry-After`` when full), then answers 202 while the job runs as a task of this
replica. The job's record lives in storage (:mod:`app.async_jobs.store`), so
any replica answers status, cancel and result:

- status is always read from storage, never from memory, so it only moves forward whichever
  replica answers; a job whose record has had no heartbeat for ``stale_after`` seconds is reported
  ``failed`` (its engine stopped);
- cancel leaves a marker that the running replica polls every heartbeat (and, when the job runs
  here, cancels it at once: the worker process is killed, or the cluster task cancelled);
- the result is the stored file, streamed; 409 until the job has completed.

Finished jobs are deleted ``ttl`` seconds after their last change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio.to_thread

from app.async_jobs.progress import Tracker
from app.async_jobs.schemas import FINAL_STATUSES, JobAccepted, JobKind, JobRecord, JobStatus
from app.async_jobs.store import JobStore, result_key, utcnow
from app.composite import service as composite_service
from app.composite.jobs import render_composite
from app.composite.schemas import NChannelCompositeRequest
from app.core.errors import status_for
from app.core.exceptions import ConflictError, DomainError, NotFoundError
from app.core.executor import JobExecutor, JobSession
from app.core.settings import Settings
from app.mosaic import service as mosaic_service
from app.mosaic.schemas import MosaicRequest
from app.storage.helpers import file_not_found
from app.storage.provider import StorageProvider

logger = logging.getLogger("app.async_jobs")

STREAM_CHUNK_BYTES = 1024 * 1024
SWEEP_EVERY_SECONDS = 60.0


@dataclass
class Output:
    """A finished job's result: bytes to store, or already in storage at the job's result key."""

    media_type: str
    headers: dict[str, str]
    content: bytes | None


Work = Callable[[JobSession, Tracker], Awaitable[Output]]


@dataclass
class JobResult:
    """What the result route streams."""

    media_type: str
    headers: dict[str, str]
    stream: AsyncIterator[bytes]


class AsyncJobService:
    """Submit, watch, cancel and fetch asynchronous jobs.

    Parameters
    ----------
    storage
        Where records and results live (shared by every replica).
    executor
        The engine's executor: its gate admits a job at submit time.
    settings
        The engine's settings (budgets of the jobs, ``ENGINE_ASYNC_JOB_*``).
    """

    def __init__(self, storage: StorageProvider, executor: JobExecutor, settings: Settings) -> None:
        self.storage = storage
        self.store = JobStore(storage)
        self.executor = executor
        self.settings = settings
        self.heartbeat_seconds = settings.engine_async_job_heartbeat_seconds
        self.stale_after = timedelta(seconds=max(3 * self.heartbeat_seconds, 30.0))
        self.ttl = timedelta(seconds=settings.engine_async_job_ttl_seconds)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._last_sweep = 0.0

    # --- submit -------------------------------------------------------------------------------------

    async def submit_composite(self, request: NChannelCompositeRequest) -> JobAccepted:
        """Check ``request`` as the synchronous endpoint does, then start it."""
        composite_service.validate_request(request)
        await self._check_keys([key for channel in request.channels for key in channel.file_paths])
        job = composite_service.build_job(request, self.settings)

        async def work(session: JobSession, tracker: Tracker) -> Output:
            tracker.progress("rendering", 0, 0)
            output = await session.run(render_composite, job)
            return Output(output.media_type, dict(output.headers), output.content)

        return await self._submit(JobKind.COMPOSITE, uuid.uuid4().hex, work)

    async def submit_mosaic(self, request: MosaicRequest) -> JobAccepted:
        """Check ``request`` as the synchronous endpoint does, then start it (FITS goes straight to storage)."""
        mosaic_service.validate_request(request)
        await self._check_keys([item.file_path for item in request.files])
        job_id = uuid.uuid4().hex
        job = mosaic_service.build_job(request, self.settings, output_key=result_key(job_id))

        async def work(session: JobSession, tracker: Tracker) -> Output:
            output = await mosaic_service.run_mosaic(session, self.storage, request, job, tracker.progress)
            headers = dict(output.headers)
            if output.fits_key is not None:
                headers["Content-Disposition"] = 'attachment; filename="mosaic_i2d.fits"'
            return Output(output.media_type, headers, output.content)

        return await self._submit(JobKind.MOSAIC, job_id, work)

    async def _check_keys(self, keys: list[str]) -> None:
        """403 for a key that leaves the storage root, 404 for a missing file: at submit, as synchronously."""

        def check() -> None:
            for key in keys:
                if not self.storage.exists(key):
                    raise file_not_found(key)

        await anyio.to_thread.run_sync(check)

    async def _submit(self, kind: JobKind, job_id: str, work: Work) -> JobAccepted:
        stack = contextlib.AsyncExitStack()
        session = await stack.enter_async_context(self.executor.admitted())  # 429 when the gate is full
        now = utcnow()
        record = JobRecord(
            job_id=job_id, kind=kind, status=JobStatus.QUEUED, stage="queued", fraction=0.0,
            created_at=now, updated_at=now,
        )  # fmt: skip
        try:
            await self.store.save(record)
        except BaseException:
            await stack.aclose()
            raise
        tracker = Tracker(record, self.store)
        self._tasks[job_id] = asyncio.create_task(self._run(tracker, stack, session, work))
        logger.info("async_job_submitted", extra={"job_id": job_id, "kind": kind.value})
        self._sweep_soon()
        base = f"/jobs/{job_id}"
        return JobAccepted(
            job_id=job_id, kind=kind, status=JobStatus.QUEUED,
            status_url=base, result_url=f"{base}/result", cancel_url=f"{base}/cancel",
        )  # fmt: skip

    # --- running ------------------------------------------------------------------------------------

    async def _run(self, tracker: Tracker, stack: contextlib.AsyncExitStack, session: JobSession, work: Work) -> None:
        job_id = tracker.record.job_id
        watcher = asyncio.create_task(self._watch(tracker, asyncio.current_task()))
        try:
            async with stack:
                output = await work(session, tracker)
            tracker.progress("storing", 0, 0)
            if output.content is not None:
                await self.store.write_result(job_id, output.content)
            size = await asyncio.to_thread(self.storage.size, result_key(job_id))
            await tracker.finish(
                status=JobStatus.COMPLETED, stage="done", fraction=1.0,
                media_type=output.media_type, headers=output.headers, result_bytes=size,
            )  # fmt: skip
            logger.info("async_job_completed", extra={"job_id": job_id, "bytes": size})
        except asyncio.CancelledError:
            await asyncio.shield(tracker.finish(status=JobStatus.CANCELLED, stage="cancelled"))
            logger.info("async_job_cancelled", extra={"job_id": job_id})
        except DomainError as error:
            await tracker.finish(
                status=JobStatus.FAILED, stage="failed", error=error.detail, error_status=status_for(error)
            )
            logger.info("async_job_failed", extra={"job_id": job_id, "status": status_for(error)})
        except Exception:
            logger.exception("async_job_crashed", extra={"job_id": job_id})
            await tracker.finish(
                status=JobStatus.FAILED, stage="failed", error="Internal server error", error_status=500
            )
        finally:
            watcher.cancel()
            self._tasks.pop(job_id, None)

    async def _watch(self, tracker: Tracker, task: asyncio.Task[object] | None) -> None:
        """Heartbeat the record and cancel the job when a replica left the cancel marker."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                if await self.store.cancel_requested(tracker.record.job_id):
                    if task is not None:
                        task.cancel()
                    return
                tracker.flush_soon()
            except DomainError:  # storage hiccup: try again at the next beat
                logger.warning("async_job_heartbeat_failed", extra={"job_id": tracker.record.job_id})

    # --- status, cancel, result -----------------------------------------------------------------------

    async def status(self, job_id: str) -> JobRecord:
        """Return the stored record (404 for an unknown job; a job whose engine stopped is failed)."""
        record = await self.store.load(job_id)
        if record is None:
            raise NotFoundError(f"Job not found: {job_id}")
        if record.status not in FINAL_STATUSES and utcnow() - record.updated_at > self.stale_after:
            record.status, record.stage = JobStatus.FAILED, "failed"
            record.error, record.error_status = "The engine running this job stopped before it finished", 503
            record.eta_seconds = None
        return record

    async def cancel(self, job_id: str) -> JobRecord:
        """Ask for the job to stop (409 when it has already ended); return its record."""
        record = await self.status(job_id)
        if record.status in FINAL_STATUSES:
            raise ConflictError(f"Job already {record.status.value}")
        await self.store.request_cancel(job_id)
        task = self._tasks.get(job_id)
        if task is not None:  # running here: stop it now and answer with the final record
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return await self.status(job_id)
        return record

    async def result(self, job_id: str) -> JobResult:
        """Return the stored result as a stream (409 until the job has completed)."""
        record = await self.status(job_id)
        if record.status is not JobStatus.COMPLETED:
            reason = f": {record.error}" if record.error else ""
            raise ConflictError(f"Job is {record.status.value}{reason}")
        path = await self.storage.resolve(result_key(job_id))
        headers = {**record.headers, "X-Job-Id": job_id}
        return JobResult(record.media_type or "application/octet-stream", headers, _read_chunks(path))

    # --- housekeeping -------------------------------------------------------------------------------

    def _sweep_soon(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_sweep >= SWEEP_EVERY_SECONDS:
            self._last_sweep = now
            task = asyncio.create_task(self.sweep())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def sweep(self) -> int:
        """Delete the jobs that ended (or whose engine stopped) more than ``ttl`` ago; return how many."""
        removed = 0
        for job_id in await self.store.job_ids():
            if job_id in self._tasks:
                continue
            record = await self.store.load(job_id)
            if record is None or utcnow() - record.updated_at > self.ttl:
                await self.store.delete(job_id)
                removed += 1
        return removed

    async def shutdown(self) -> None:
        """Cancel the jobs running here (their records say cancelled)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _fail(tracker: Tracker, detail: str, status: int) -> None:
    await tracker.finish(status=JobStatus.FAILED, stage="failed", error=detail, error_status=status)
    logger.info("async_job_failed", extra={"job_id": tracker.record.job_id, "status": status})


async def _read_chunks(path: Path) -> AsyncIterator[bytes]:
    """Yield the file at ``path`` in chunks, reading in a thread."""
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, STREAM_CHUNK_BYTES):
            yield chunk
    finally:
        handle.close()
