"""Download jobs: start, run, pause, resume, cancel, list and dismiss.

The worker that starts or resumes a job runs it as an asyncio task and owns it (see
:mod:`app.mast.jobs.store`); every other operation works from the state files, so any uvicorn
worker answers for any job. Product filenames from MAST are reduced to a safe basename and every
destination is checked to lie inside ``MAST_DOWNLOAD_DIR``. Every public method returns the reply
model of its endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.core.exceptions import (
    ConflictError,
    DomainError,
    InvalidRequestError,
    NotFoundError,
    UpstreamTimeoutError,
)
from app.core.metrics import DOWNLOAD_JOBS_ACTIVE
from app.core.settings import Settings
from app.mast.jobs.progress import JobInterruptedError, JobTracker, build_progress, human_bytes
from app.mast.jobs.state import ControlAction, FileState, JobKind, JobStage, JobState, JobStatus, utc_now
from app.mast.jobs.store import StateStore, valid_job_id
from app.mast.jobs.transfer.http import DownloadOptions, download_files
from app.mast.jobs.transfer.s3 import S3Options, S3UnavailableError, download_objects
from app.mast.schemas import (
    ActionStatus,
    DismissResponse,
    JobActionResponse,
    JobProgress,
    JobStartedResponse,
    MastDownloadResponse,
    ResumableJob,
    ResumableJobsResponse,
    SyncDownloadStatus,
)
from app.mast.search import MastService, ObservationNotFoundError, download_url
from app.storage.provider import StorageProvider

logger = logging.getLogger("app.mast.jobs")

NO_PRODUCTS = "NO_PRODUCTS: No downloadable FITS products found for this observation"
SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
OWNER_WAIT_SECONDS = 10.0
OWNER_POLL_SECONDS = 0.05
SHUTDOWN_WAIT_SECONDS = 5.0
#: Job statuses that ``resume_job_id`` of a chunked start resumes rather than starting anew.
RESTARTABLE_STATUSES = frozenset({JobStatus.PAUSED, JobStatus.FAILED, JobStatus.DOWNLOADING})


class NoProductsError(Exception):
    """Nothing to download for the observation."""


def safe_filename(name: object) -> str | None:
    """Return the basename of a product filename, or ``None`` when it is not a plain safe name."""
    if not isinstance(name, str) or "\x00" in name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base != name or not SAFE_NAME_RE.match(base) or set(base) <= {"."} or len(base) > 255:
        return None
    return base


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _product_size(row: dict[str, Any]) -> int:
    try:
        return max(0, int(row.get("size") or 0))
    except (TypeError, ValueError):
        return 0


def _failure_of(state: JobState, error: Exception) -> bool:
    """Record on ``state`` why its run failed; return whether the job is finished (nothing to resume)."""
    if isinstance(error, NoProductsError):
        state.fail(NO_PRODUCTS)
        return True
    if isinstance(error, S3UnavailableError):
        state.fail(error.detail)
        return not any(f.s3_key for f in state.files)
    if isinstance(error, DomainError):
        state.fail(f"Could not get the product list: {error.detail}")
        return not state.files
    logger.exception("download_job_crashed", extra={"job_id": state.job_id})
    state.fail("Unexpected error during download")
    return False


def _sync_failure(obs_id: str, error: str, started: str) -> MastDownloadResponse:
    """Return the synchronous download's reply when nothing could be downloaded."""
    return MastDownloadResponse(
        status=SyncDownloadStatus.FAILED,
        obs_id=obs_id,
        files=[],
        file_count=0,
        download_dir=None,
        error=error,
        timestamp=started,
    )


def _resumable_entry(state: JobState, owned: bool) -> ResumableJob:
    """Return the listing entry of a job; a job marked running without a live owner is listed as paused."""
    status = JobStatus.PAUSED if state.marked_running and not owned else state.status
    return ResumableJob(
        job_id=state.job_id,
        obs_id=state.obs_id,
        total_bytes=int(state.total_bytes),
        downloaded_bytes=int(state.downloaded_bytes),
        progress_percent=round(100.0 * state.downloaded_bytes / state.total_bytes, 2) if state.total_bytes else 0.0,
        status=status,
        total_files=len(state.files),
        completed_files=sum(1 for f in state.files if f.is_complete),
        started_at=state.started_at or None,
    )


@dataclass
class RunningJob:
    """A job this process runs."""

    tracker: JobTracker
    task: asyncio.Task[None]


class DownloadManager:
    """Every download job operation of the proxy.

    Parameters
    ----------
    settings
        Proxy settings (download dir, chunk sizes, S3 endpoint).
    mast
        Product lists and cloud path lookups.
    http
        The httpx client for file downloads.
    s3_session
        An aioboto3 session for the public bucket.
    storage
        The application storage; with ``STORAGE_PROVIDER=s3`` finished files are copied there.
    """

    def __init__(
        self,
        settings: Settings,
        mast: MastService,
        http: httpx.AsyncClient,
        s3_session: Any,
        storage: StorageProvider,
    ) -> None:
        self.settings = settings
        self.mast = mast
        self.http = http
        self.s3_session = s3_session
        self.storage = storage
        self.store = StateStore(settings.mast_download_dir, max_finished=settings.mast_max_finished_jobs)
        self.root = self.store.download_dir
        self._running: dict[str, RunningJob] = {}
        self.http_options = DownloadOptions(
            chunk_bytes=settings.mast_download_chunk_bytes,
            concurrency=settings.mast_download_concurrency,
            retries=settings.mast_download_retries,
            backoff_seconds=settings.mast_download_backoff_seconds,
        )
        self.s3_options = S3Options(
            bucket=settings.mast_s3_bucket,
            endpoint_url=settings.mast_s3_endpoint_url,
            part_bytes=settings.mast_s3_part_bytes,
            part_concurrency=settings.mast_s3_part_concurrency,
            split_after_seconds=settings.mast_s3_split_after_seconds,
            file_concurrency=settings.mast_download_concurrency,
            retries=settings.mast_download_retries,
            backoff_seconds=settings.mast_download_backoff_seconds,
            connect_timeout=settings.mast_download_connect_timeout,
            read_timeout=settings.mast_download_read_timeout,
        )

    # --- lifecycle ------------------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Clean up at startup: orphan ``.part`` files and finished state files older than 7 days."""
        removed = await asyncio.to_thread(self.store.cleanup)
        logger.info("download_cleanup", extra=removed)

    async def shutdown(self) -> None:
        """Pause the jobs this process runs, so that they stay resumable."""
        running = list(self._running.values())
        for job in running:
            job.tracker.local_control = "pause"
        if running:
            await asyncio.wait([job.task for job in running], timeout=SHUTDOWN_WAIT_SECONDS)

    # --- helpers --------------------------------------------------------------------------------------------

    def obs_dir(self, obs_id: str) -> Path:
        """Return the download directory of an observation, refusing one outside ``MAST_DOWNLOAD_DIR``."""
        path = self.root / obs_id
        if not _inside(path, self.root) or path.resolve() == self.root:
            raise InvalidRequestError("Invalid obs_id")
        return path

    def _file_state(self, row: dict[str, Any], base: Path, obs_id: str, *, nested: bool) -> FileState | None:
        """Return the file of one product row, or ``None`` when its name or URI is refused."""
        name = safe_filename(row.get("productFilename"))
        uri = row.get("dataURI")
        if name is None or not isinstance(uri, str) or not uri.startswith("mast:"):
            logger.warning("product_refused", extra={"obs_id": obs_id, "product": repr(row.get("productFilename"))})
            return None
        directory = base
        if nested:
            collection = safe_filename(row.get("obs_collection")) or "JWST"
            row_obs = safe_filename(row.get("obs_id")) or obs_id
            directory = base / "mastDownload" / collection / row_obs
        return FileState(
            filename=name,
            url=download_url(self.settings.mast_base_url, uri),
            local_path=str(directory / name),
            total_bytes=_product_size(row),
            uri=uri,
        )

    def _file_states(self, obs_id: str, products: list[dict[str, Any]], *, nested: bool) -> list[FileState]:
        files: list[FileState] = []
        seen: set[str] = set()
        base = self.obs_dir(obs_id)
        for row in products:
            file = self._file_state(row, base, obs_id, nested=nested)
            if file is None or file.filename in seen or not _inside(Path(file.local_path), self.root):
                continue
            seen.add(file.filename)
            files.append(file)
        return files

    def _new_state(self, kind: JobKind, obs_id: str, product_type: str, calib_level: list[int] | None) -> JobState:
        return JobState(
            job_id=uuid.uuid4().hex[:12],
            obs_id=obs_id,
            download_dir=str(self.obs_dir(obs_id)),
            status=JobStatus.PENDING,
            stage=JobStage.QUEUED,
            message="Download queued",
            started_at=utc_now(),
            kind=kind,
            product_type=product_type,
            calib_level=calib_level,
        )

    async def _launch(self, state: JobState, fd: int, *, fetch: bool) -> None:
        state.owner_pid = os.getpid()
        await asyncio.to_thread(self.store.clear_control, state.job_id)
        tracker = JobTracker(state, self.store)
        await tracker.flush()
        tracker.start()
        task = asyncio.create_task(self._run(tracker, fd, fetch=fetch))
        self._running[state.job_id] = RunningJob(tracker=tracker, task=task)

    async def _start(self, kind: JobKind, obs_id: str, product_type: str, calib_level: list[int] | None) -> JobState:
        state = self._new_state(kind, obs_id, product_type, calib_level)
        fd = await asyncio.to_thread(self.store.try_lock, state.job_id)
        if fd is None:  # pragma: no cover - a fresh random id
            raise ConflictError(f"Job {state.job_id} is already being resumed")
        await self._launch(state, fd, fetch=True)
        return state

    # --- the job itself -------------------------------------------------------------------------------------

    async def _prepare(self, tracker: JobTracker) -> None:
        state = tracker.state
        state.begin_fetch()
        tracker.mark_dirty()
        products = await self.mast.download_products(
            state.obs_id,
            product_type=state.product_type,
            calib_level=state.calib_level,
            exclude_spectral=state.kind == "chunked",
        )
        files = self._file_states(state.obs_id, products, nested=state.kind == "legacy")
        if not files:
            raise NoProductsError
        if state.kind == "s3":
            await self._add_s3_keys(files)
        state.files = files
        state.recount()

    async def _add_s3_keys(self, files: list[FileState]) -> None:
        keys = await self.mast.cloud_keys([f.uri for f in files if f.uri])
        missing = [f.filename for f in files if not keys.get(f.uri or "")]
        if missing:
            raise S3UnavailableError(f"{len(missing)} product(s) have no copy in the bucket, e.g. {missing[0]}")
        for file in files:
            file.s3_key = keys[file.uri or ""]

    async def _download(self, tracker: JobTracker, *, fetch: bool) -> bool:
        """Fetch the product list if needed, then every file; return whether the job is finished."""
        state = tracker.state
        if fetch or not state.files:
            await self._prepare(tracker)
        tracker.check_control()
        count = len(state.files)
        state.begin_download(f"Downloading {count} files ({human_bytes(state.total_bytes)})...")
        await tracker.flush()
        if state.kind == "s3":
            errors = await download_objects(self.s3_session, self.s3_options, state.files, tracker)
        else:
            errors = await download_files(self.http, state.files, tracker, self.http_options)
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            state.fail(errors[0] + more)
            return False
        await self._persist(state)
        state.complete(f"Downloaded {count} files")
        return True

    async def _run(self, tracker: JobTracker, fd: int, *, fetch: bool) -> None:
        state = tracker.state
        finished = False
        DOWNLOAD_JOBS_ACTIVE.labels(kind=state.kind).inc()
        try:
            finished = await self._download(tracker, fetch=fetch)
        except JobInterruptedError as interrupt:
            state.interrupt(interrupt.action)
        except asyncio.CancelledError:
            state.pause()
        except Exception as error:
            finished = _failure_of(state, error)
        finally:
            await tracker.stop()
            finished = finished or state.kind == "legacy"
            try:
                await asyncio.to_thread(self._write_final, state, finished)
            finally:
                self.store.release_and_remove(state.job_id, fd)
                self._running.pop(state.job_id, None)
                DOWNLOAD_JOBS_ACTIVE.labels(kind=state.kind).dec()

    def _write_final(self, state: JobState, finished: bool) -> None:
        state.recount()
        self.store.clear_control(state.job_id)
        if finished:
            self.store.finish(state)
            if state.status == JobStatus.COMPLETE and state.kind != "s3":
                self.store.cleanup()
        else:
            self.store.save(state)

    async def _persist(self, state: JobState) -> None:
        """With ``STORAGE_PROVIDER=s3``, copy finished files to ``mast/<obs_id>/<filename>``."""
        if self.settings.storage_provider != "s3":
            return
        for file in state.files:
            if file.is_complete:
                await asyncio.to_thread(
                    self.storage.upload_file, f"mast/{state.obs_id}/{file.filename}", Path(file.local_path)
                )

    # --- endpoints ------------------------------------------------------------------------------------------

    async def start_chunked(
        self, obs_id: str, product_type: str, calib_level: list[int] | None, resume_job_id: str | None
    ) -> JobStartedResponse:
        """Start a chunked HTTP job, or resume the paused or failed job ``resume_job_id`` (``start-chunked``)."""
        if resume_job_id:
            existing = await asyncio.to_thread(self.store.load, resume_job_id)
            if existing is not None and existing.status in RESTARTABLE_STATUSES:
                await self.resume(resume_job_id)
                # Exactly these four fields: the route sends only the fields set here.
                return JobStartedResponse(
                    job_id=resume_job_id, obs_id=existing.obs_id, message="Download resumed", is_resume=True
                )
        state = await self._start("chunked", obs_id, product_type, calib_level)
        return JobStartedResponse(
            job_id=state.job_id,
            obs_id=obs_id,
            message="Chunked download started",
            is_resume=False,
            download_source=None,
        )

    async def start_s3(self, obs_id: str, product_type: str, calib_level: list[int] | None) -> JobStartedResponse:
        """Start a parallel download job from the public bucket (``POST /mast/download/start-s3``)."""
        state = await self._start("s3", obs_id, product_type, calib_level)
        return JobStartedResponse(
            job_id=state.job_id, obs_id=obs_id, message="S3 download started", download_source="s3"
        )

    async def start_legacy(self, obs_id: str, product_type: str) -> JobStartedResponse:
        """Start a job that writes astroquery's nested layout, run like the others (``POST /mast/download/start``)."""
        state = await self._start("legacy", obs_id, product_type, None)
        return JobStartedResponse(job_id=state.job_id, obs_id=obs_id, message="Download started")

    async def _load_for_resume(self, job_id: str, not_found: NotFoundError) -> JobState:
        """Return the state of a job made ready to resume (the caller holds its lock)."""
        state = await asyncio.to_thread(self.store.load, job_id)
        if state is None:
            raise not_found
        if not state.resumable_status or state.kind == "legacy":
            raise InvalidRequestError(f"Job {job_id} is not resumable (status: {state.status})")
        state.requeue_failed_files()
        state = await asyncio.to_thread(self.store.refresh_from_disk, state)
        state.reset_for_resume()
        return state

    async def resume(self, job_id: str) -> JobActionResponse:
        """Continue a paused, failed or orphaned job from its state file (``POST /mast/download/resume/{job_id}``)."""
        not_found = NotFoundError(f"No resumable state found for job {job_id}")
        if not valid_job_id(job_id) or await asyncio.to_thread(self.store.load, job_id) is None:
            raise not_found
        fd = await asyncio.to_thread(self.store.try_lock, job_id)
        if fd is None:
            raise ConflictError(f"Job {job_id} is already being resumed")
        try:
            state = await self._load_for_resume(job_id, not_found)
        except BaseException:
            self.store.release_and_remove(job_id, fd)
            raise
        await self._launch(state, fd, fetch=not state.files)
        return JobActionResponse(job_id=job_id, status=ActionStatus.RESUMING, message="Download resumed")

    async def _wait_owner(self, job_id: str) -> None:
        running = self._running.get(job_id)
        if running is not None:
            await asyncio.wait([running.task], timeout=OWNER_WAIT_SECONDS)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OWNER_WAIT_SECONDS
        while loop.time() < deadline:
            if not await asyncio.to_thread(self.store.is_owned, job_id):
                return
            await asyncio.sleep(OWNER_POLL_SECONDS)

    async def _signal(self, job_id: str, action: ControlAction) -> bool:
        """Ask the running owner (here or in another worker) to stop; return whether one was running."""
        running = self._running.get(job_id)
        if running is not None:
            running.tracker.local_control = action
        elif await asyncio.to_thread(self.store.is_owned, job_id):
            await asyncio.to_thread(self.store.request_control, job_id, action)
        else:
            return False
        await self._wait_owner(job_id)
        return True

    async def pause(self, job_id: str) -> JobActionResponse:
        """Stop a running job and keep it resumable (``POST /mast/download/pause/{job_id}``)."""
        if not valid_job_id(job_id):
            raise NotFoundError(f"No active download for job {job_id}")
        state = await asyncio.to_thread(self.store.load, job_id)
        running = await self._signal(job_id, "pause")
        if not running:
            if state is None or not state.marked_running:
                raise NotFoundError(f"No active download for job {job_id}")
            state.pause()
            await asyncio.to_thread(self.store.save, state)
        kind = state.kind if state is not None else "chunked"
        message = "S3 download paused" if kind == "s3" else "Download paused"
        return JobActionResponse(job_id=job_id, status=ActionStatus.PAUSED, message=message)

    async def cancel(self, job_id: str) -> JobActionResponse:
        """Stop a job for good: its state becomes ``cancelled`` (``POST /mast/download/cancel/{job_id}``)."""
        if not valid_job_id(job_id):
            raise NotFoundError(f"No download found for job {job_id}")
        state = await asyncio.to_thread(self.store.load, job_id)
        if await self._signal(job_id, "cancel"):
            kind = state.kind if state is not None else "chunked"
            message = "S3 download cancelled" if kind == "s3" else "Download cancelled"
            return JobActionResponse(job_id=job_id, status=ActionStatus.CANCELLED, message=message)
        if state is None:
            raise NotFoundError(f"No download found for job {job_id}")
        state.cancel()
        await asyncio.to_thread(self.store.save, state)
        return JobActionResponse(job_id=job_id, status=ActionStatus.CANCELLED, message="Download marked as cancelled")

    async def progress(self, job_id: str) -> JobProgress:
        """Return the progress object of a job from a persisted snapshot.

        Every answer is a state that is on disk: the owner writes its live state and answers from
        what it wrote, the other workers read the file. A later poll on any worker therefore sees
        the same snapshot or a newer one, never an older one (an owner answering from memory
        without writing would be ahead of the file the other worker reads).
        """
        running = self._running.get(job_id)
        snapshot = await running.tracker.flush() if running is not None else None
        if snapshot is not None:
            return build_progress(snapshot, live=True, owned=True)
        found = await asyncio.to_thread(self.store.load_any, job_id)
        if found is None:
            raise NotFoundError(f"Job {job_id} not found")
        state, finished = found
        owned = not finished and (job_id in self._running or await asyncio.to_thread(self.store.is_owned, job_id))
        return build_progress(state, live=False, owned=owned)

    def _resumable_candidates(self) -> list[tuple[JobState, bool]]:
        """Return the active jobs that may be listed, each with whether a live process runs it."""
        candidates: list[tuple[JobState, bool]] = []
        for state in self.store.list_active():
            if state.kind == "legacy" or not state.resumable_status:
                continue
            if not any(f.has_work_left for f in state.files):
                continue
            candidates.append((state, self.store.is_owned(state.job_id)))
        return candidates

    def _resumable_sync(self) -> list[ResumableJob]:
        candidates = self._resumable_candidates()
        best: dict[str, JobState] = {}
        for state, _ in candidates:
            kept = best.get(state.obs_id)
            if kept is None or state.downloaded_bytes > kept.downloaded_bytes:
                best[state.obs_id] = state
        jobs = []
        for state, owned in candidates:
            if best[state.obs_id] is not state:
                if not owned:  # kept on purpose: duplicates of an obs_id are dropped
                    self.store.delete(state.job_id)
                continue
            jobs.append(_resumable_entry(state, owned))
        return jobs

    async def resumable(self) -> ResumableJobsResponse:
        """List the paused, failed or interrupted jobs, the most advanced one per obs_id (``GET .../resumable``)."""
        try:
            jobs = await asyncio.to_thread(self._resumable_sync)
        except OSError:
            logger.exception("resumable_listing_failed")
            jobs = []
        return ResumableJobsResponse(jobs=jobs, count=len(jobs))

    async def dismiss(self, job_id: str, delete_files: bool) -> DismissResponse:
        """Forget a job, optionally deleting its finished files (``DELETE /mast/download/resumable/{job_id}``)."""
        state = await asyncio.to_thread(self.store.load, job_id)
        if state is None:
            raise NotFoundError(f"Job {job_id} not found")
        await self._signal(job_id, "cancel")
        deleted = 0
        if delete_files:
            deleted = await asyncio.to_thread(self._delete_files, state)
        await asyncio.to_thread(self.store.delete, job_id)
        return DismissResponse(job_id=job_id, dismissed=True, deleted_files=deleted)

    def _delete_files(self, state: JobState) -> int:
        deleted = 0
        for file in state.files:
            final = Path(file.local_path)
            part = final.with_name(final.name + ".part")
            if part.exists() and _inside(part, self.root):
                part.unlink()
            if final.is_file() and _inside(final, self.root):
                final.unlink()
                deleted += 1
        return deleted

    # --- synchronous legacy download (``POST /mast/download``) ----------------------------------------------

    async def download_now(self, obs_id: str, product_type: str, product_id: str | None) -> MastDownloadResponse:
        """Download into the nested layout and report; a failure is ``status: "failed"`` (``POST /mast/download``)."""
        time_limit = self.settings.mast_download_timeout
        try:
            return await asyncio.wait_for(self._download_now(obs_id, product_type, product_id), time_limit)
        except TimeoutError as error:
            raise UpstreamTimeoutError(f"Download timed out after {time_limit:g} seconds") from error

    async def _download_now(self, obs_id: str, product_type: str, product_id: str | None) -> MastDownloadResponse:
        download_dir = self.obs_dir(obs_id)
        started = datetime.now(UTC).isoformat()
        try:
            products = await self.mast.download_products(
                obs_id, product_type=product_type, calib_level=None, exclude_spectral=False, require_observation=True
            )
        except ObservationNotFoundError as error:
            return _sync_failure(obs_id, error.detail, started)
        except DomainError as error:
            return _sync_failure(obs_id, f"Could not get the product list: {error.detail}", started)
        if product_id:
            products = [p for p in products if product_id in str(p.get("productFilename") or "")]
        files = self._file_states(obs_id, products, nested=True)
        errors = await self._download_sync(obs_id, download_dir, files)
        done = [f.local_path for f in files if f.is_complete]
        return MastDownloadResponse(
            status=SyncDownloadStatus.FAILED if errors else SyncDownloadStatus.COMPLETED,
            obs_id=obs_id,
            files=done,
            file_count=len(done),
            download_dir=str(download_dir),
            error=errors[0] if errors else None,
            timestamp=datetime.now(UTC).isoformat(),
        )

    async def _download_sync(self, obs_id: str, download_dir: Path, files: list[FileState]) -> list[str]:
        """Download ``files`` in this request and store them; return the errors."""
        state = JobState(job_id="sync", obs_id=obs_id, download_dir=str(download_dir), files=files, kind="legacy")
        state.recount()
        errors = await download_files(self.http, files, JobTracker(state, self.store), self.http_options)
        if errors:
            return errors
        try:
            await self._persist(state)
        except Exception:
            logger.exception("persist_failed", extra={"obs_id": obs_id})
            return ["Could not store the downloaded files"]
        return []
