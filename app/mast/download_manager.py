"""Download jobs: start, run, pause, resume, cancel, list and dismiss (contract 5.3-5.5).

The worker that starts or resumes a job runs it as an asyncio task and owns it (see
:mod:`app.mast.download_state_manager`); every other operation works from the state files, so
any uvicorn worker answers for any job. Product filenames from MAST are reduced to a safe
basename and every destination is checked to lie inside ``MAST_DOWNLOAD_DIR``.
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
from app.core.settings import Settings
from app.mast.chunked_downloader import DownloadOptions, download_files
from app.mast.download_state_manager import (
    OPEN_FILE_STATUSES,
    RESUMABLE_STATUSES,
    FileState,
    JobKind,
    JobState,
    StateStore,
    utc_now,
    valid_job_id,
)
from app.mast.download_tracker import JobInterruptedError, JobTracker, build_progress, human_bytes
from app.mast.mast_service import MastService, download_url
from app.mast.s3_downloader import S3Options, S3UnavailableError, download_objects
from app.storage.provider import StorageProvider

logger = logging.getLogger("app.mast.jobs")

NO_PRODUCTS = "NO_PRODUCTS: No downloadable FITS products found for this observation"
CANCELLED = "Download cancelled by user"
SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
OWNER_WAIT_SECONDS = 10.0
LISTED_FILE_STATUSES = OPEN_FILE_STATUSES | {"failed"}


class NoProductsError(Exception):
    """Nothing to download for the observation."""


def safe_filename(name: object) -> str | None:
    """The basename of a product filename, or ``None`` when it is not a plain safe name."""
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
        self.store = StateStore(settings.mast_download_dir)
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

    # --- lifecycle ---------------------------------------------------------------------------------

    async def startup(self) -> None:
        """Startup cleanup: orphan ``.part`` files and finished state files older than 7 days."""
        removed = await asyncio.to_thread(self.store.cleanup)
        logger.info("download_cleanup", extra=removed)

    async def shutdown(self) -> None:
        """Pause the jobs this process runs, so that they stay resumable."""
        running = list(self._running.values())
        for job in running:
            job.tracker.local_control = "pause"
        if running:
            await asyncio.wait([job.task for job in running], timeout=5.0)

    # --- helpers -----------------------------------------------------------------------------------

    def obs_dir(self, obs_id: str) -> Path:
        path = self.root / obs_id
        if not _inside(path, self.root) or path.resolve() == self.root:
            raise InvalidRequestError("Invalid obs_id")
        return path

    def _file_states(self, obs_id: str, products: list[dict[str, Any]], *, nested: bool) -> list[FileState]:
        files: list[FileState] = []
        seen: set[str] = set()
        base = self.obs_dir(obs_id)
        for row in products:
            name = safe_filename(row.get("productFilename"))
            uri = row.get("dataURI")
            if name is None or not isinstance(uri, str) or not uri.startswith("mast:"):
                logger.warning("product_refused", extra={"obs_id": obs_id, "product": repr(row.get("productFilename"))})
                continue
            directory = base
            if nested:
                collection = safe_filename(row.get("obs_collection")) or "JWST"
                row_obs = safe_filename(row.get("obs_id")) or obs_id
                directory = base / "mastDownload" / collection / row_obs
            dest = directory / name
            if name in seen or not _inside(dest, self.root):
                continue
            seen.add(name)
            try:
                size = max(0, int(row.get("size") or 0))
            except (TypeError, ValueError):
                size = 0
            files.append(
                FileState(
                    filename=name,
                    url=download_url(self.settings.mast_base_url, uri),
                    local_path=str(dest),
                    total_bytes=size,
                    uri=uri,
                )
            )
        return files

    def _new_state(self, kind: JobKind, obs_id: str, product_type: str, calib_level: list[int] | None) -> JobState:
        return JobState(
            job_id=uuid.uuid4().hex[:12],
            obs_id=obs_id,
            download_dir=str(self.obs_dir(obs_id)),
            status="pending",
            stage="queued",
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

    # --- the job itself ----------------------------------------------------------------------------

    async def _prepare(self, tracker: JobTracker) -> None:
        state = tracker.state
        tracker.set_stage("fetching_products", "Fetching product list...", status="pending")
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
            keys = await self.mast.cloud_keys([f.uri for f in files if f.uri])
            missing = [f.filename for f in files if not keys.get(f.uri or "")]
            if missing:
                raise S3UnavailableError(f"{len(missing)} product(s) have no copy in the bucket, e.g. {missing[0]}")
            for file in files:
                file.s3_key = keys[file.uri or ""]
        state.files = files
        state.recount()

    async def _run(self, tracker: JobTracker, fd: int, *, fetch: bool) -> None:
        state = tracker.state
        finished = False
        try:
            if fetch or not state.files:
                await self._prepare(tracker)
            tracker.check_control()
            count = len(state.files)
            tracker.set_stage(
                "downloading", f"Downloading {count} files ({human_bytes(state.total_bytes)})...", status="downloading"
            )
            await tracker.flush()
            if state.kind == "s3":
                errors = await download_objects(self.s3_session, self.s3_options, state.files, tracker)
            else:
                errors = await download_files(self.http, state.files, tracker, self.http_options)
            if errors:
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                self._fail(state, errors[0] + more)
            else:
                await self._persist(state)
                state.status = "complete"
                state.stage = "complete"
                state.message = f"Downloaded {count} files"
                state.completed_at = utc_now()
                state.current_file = None
                state.eta_seconds = 0.0
                finished = True
        except JobInterruptedError as interrupt:
            self._interrupted(state, interrupt.action)
        except NoProductsError:
            self._fail(state, NO_PRODUCTS)
            finished = True
        except S3UnavailableError as error:
            self._fail(state, error.detail)
            finished = not any(f.s3_key for f in state.files)
        except DomainError as error:
            self._fail(state, f"Could not get the product list: {error.detail}")
            finished = not state.files
        except asyncio.CancelledError:
            self._interrupted(state, "pause")
        except Exception:
            logger.exception("download_job_crashed", extra={"job_id": state.job_id})
            self._fail(state, "Unexpected error during download")
        finally:
            await tracker.stop()
            finished = finished or state.kind == "legacy"
            try:
                await asyncio.to_thread(self._write_final, state, finished)
            finally:
                self.store.release(fd)
                self._running.pop(state.job_id, None)

    def _write_final(self, state: JobState, finished: bool) -> None:
        state.recount()
        self.store.clear_control(state.job_id)
        if finished:
            self.store.finish(state)
            if state.status == "complete" and state.kind != "s3":
                self.store.cleanup()
        else:
            self.store.save(state)

    @staticmethod
    def _fail(state: JobState, error: str) -> None:
        state.status = "failed"
        state.stage = "failed"
        state.error = error
        state.message = f"Failed: {error}"
        state.completed_at = utc_now()
        state.current_file = None
        state.speed_bytes_per_sec = 0.0
        state.eta_seconds = None
        for file in state.files:
            if file.status == "downloading":
                file.status = "paused"

    @staticmethod
    def _interrupted(state: JobState, action: str) -> None:
        for file in state.files:
            if file.status == "downloading":
                file.status = "paused"
        state.current_file = None
        state.speed_bytes_per_sec = 0.0
        state.eta_seconds = None
        if action == "cancel":
            state.status = "cancelled"
            state.stage = "failed"
            state.error = CANCELLED
            state.message = "Download cancelled"
            state.completed_at = utc_now()
        else:
            state.status = "paused"
            state.stage = "paused"
            state.message = "Download paused"

    async def _persist(self, state: JobState) -> None:
        """With ``STORAGE_PROVIDER=s3``, copy finished files to ``mast/<obs_id>/<filename>``."""
        if self.settings.storage_provider != "s3":
            return
        for file in state.files:
            if file.status == "complete":
                await asyncio.to_thread(
                    self.storage.upload_file, f"mast/{state.obs_id}/{file.filename}", Path(file.local_path)
                )

    # --- endpoints -----------------------------------------------------------------------------------

    async def start_chunked(
        self, obs_id: str, product_type: str, calib_level: list[int] | None, resume_job_id: str | None
    ) -> dict[str, Any]:
        """P12."""
        if resume_job_id:
            existing = await asyncio.to_thread(self.store.load, resume_job_id)
            if existing is not None and existing.status in {"paused", "failed", "downloading"}:
                await self.resume(resume_job_id)
                return {
                    "job_id": resume_job_id,
                    "obs_id": existing.obs_id,
                    "message": "Download resumed",
                    "is_resume": True,
                }
        state = await self._start("chunked", obs_id, product_type, calib_level)
        return {"job_id": state.job_id, "obs_id": obs_id, "message": "Chunked download started", "is_resume": False}

    async def start_s3(self, obs_id: str, product_type: str, calib_level: list[int] | None) -> dict[str, Any]:
        """P19."""
        state = await self._start("s3", obs_id, product_type, calib_level)
        return {"job_id": state.job_id, "obs_id": obs_id, "message": "S3 download started", "download_source": "s3"}

    async def start_legacy(self, obs_id: str, product_type: str) -> dict[str, Any]:
        """P10: astroquery-style nested layout, one job like the others."""
        state = await self._start("legacy", obs_id, product_type, None)
        return {"job_id": state.job_id, "obs_id": obs_id, "message": "Download started"}

    async def resume(self, job_id: str) -> dict[str, Any]:
        """P13: continue a paused, failed or orphaned job from its state file."""
        not_found = NotFoundError(f"No resumable state found for job {job_id}")
        if not valid_job_id(job_id):
            raise not_found
        if await asyncio.to_thread(self.store.load, job_id) is None:
            raise not_found
        fd = await asyncio.to_thread(self.store.try_lock, job_id)
        if fd is None:
            raise ConflictError(f"Job {job_id} is already being resumed")
        try:
            state = await asyncio.to_thread(self.store.load, job_id)
            if state is None:
                raise not_found
            if state.status not in RESUMABLE_STATUSES or state.kind == "legacy":
                raise InvalidRequestError(f"Job {job_id} is not resumable (status: {state.status})")
            for file in state.files:
                if file.status == "failed":
                    file.status = "pending"
            state = await asyncio.to_thread(self.store.refresh_from_disk, state)
            state.error = None
            state.completed_at = None
            state.product_type = "SCIENCE"
            state.status = "pending"
            state.stage = "queued"
            state.message = "Resuming download"
        except BaseException:
            self.store.release(fd)
            raise
        await self._launch(state, fd, fetch=not state.files)
        return {"job_id": job_id, "status": "resuming", "message": "Download resumed"}

    async def _wait_owner(self, job_id: str) -> None:
        running = self._running.get(job_id)
        if running is not None:
            await asyncio.wait([running.task], timeout=OWNER_WAIT_SECONDS)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + OWNER_WAIT_SECONDS
        while loop.time() < deadline and await asyncio.to_thread(self.store.is_owned, job_id):
            await asyncio.sleep(0.05)

    async def _signal(self, job_id: str, action: str) -> bool:
        """Ask the running owner (here or in another worker) to stop; whether one was running."""
        running = self._running.get(job_id)
        if running is not None:
            running.tracker.local_control = "cancel" if action == "cancel" else "pause"
        elif await asyncio.to_thread(self.store.is_owned, job_id):
            await asyncio.to_thread(self.store.request_control, job_id, "cancel" if action == "cancel" else "pause")
        else:
            return False
        await self._wait_owner(job_id)
        return True

    async def pause(self, job_id: str) -> dict[str, Any]:
        """P14: stop a running job and keep it resumable."""
        if not valid_job_id(job_id):
            raise NotFoundError(f"No active download for job {job_id}")
        state = await asyncio.to_thread(self.store.load, job_id)
        running = await self._signal(job_id, "pause")
        if not running:
            if state is None or state.status not in {"pending", "downloading"}:
                raise NotFoundError(f"No active download for job {job_id}")
            self._interrupted(state, "pause")
            await asyncio.to_thread(self.store.save, state)
        kind = state.kind if state is not None else "chunked"
        message = "S3 download paused" if kind == "s3" else "Download paused"
        return {"job_id": job_id, "status": "paused", "message": message}

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """P15: stop a job for good (state status ``cancelled``)."""
        if not valid_job_id(job_id):
            raise NotFoundError(f"No download found for job {job_id}")
        state = await asyncio.to_thread(self.store.load, job_id)
        if await self._signal(job_id, "cancel"):
            kind = state.kind if state is not None else "chunked"
            message = "S3 download cancelled" if kind == "s3" else "Download cancelled"
            return {"job_id": job_id, "status": "cancelled", "message": message}
        if state is None:
            raise NotFoundError(f"No download found for job {job_id}")
        self._interrupted(state, "cancel")
        await asyncio.to_thread(self.store.save, state)
        return {"job_id": job_id, "status": "cancelled", "message": "Download marked as cancelled"}

    async def progress(self, job_id: str) -> dict[str, Any]:
        """P11/P18: the progress object, from this process or from the state files."""
        running = self._running.get(job_id)
        if running is not None:
            return build_progress(running.tracker.state, live=True, owned=True)
        found = await asyncio.to_thread(self.store.load_any, job_id)
        if found is None:
            raise NotFoundError(f"Job {job_id} not found")
        state, finished = found
        owned = False if finished else await asyncio.to_thread(self.store.is_owned, job_id)
        return build_progress(state, live=False, owned=owned)

    def _resumable_sync(self) -> list[dict[str, Any]]:
        candidates: list[tuple[JobState, bool]] = []
        for state in self.store.list_active():
            if state.kind == "legacy" or state.status not in {"paused", "failed", "downloading", "pending"}:
                continue
            if not any(f.status in LISTED_FILE_STATUSES for f in state.files):
                continue
            candidates.append((state, self.store.is_owned(state.job_id)))
        best: dict[str, tuple[JobState, bool]] = {}
        for state, owned in candidates:
            kept = best.get(state.obs_id)
            if kept is None or state.downloaded_bytes > kept[0].downloaded_bytes:
                best[state.obs_id] = (state, owned)
        jobs = []
        for state, owned in candidates:
            if best[state.obs_id][0] is not state:
                if not owned:  # quirk 15: duplicates of an obs_id are dropped
                    self.store.delete(state.job_id)
                continue
            status = state.status
            if status in {"pending", "downloading"} and not owned:
                status = "paused"
            jobs.append(
                {
                    "job_id": state.job_id,
                    "obs_id": state.obs_id,
                    "total_bytes": int(state.total_bytes),
                    "downloaded_bytes": int(state.downloaded_bytes),
                    "progress_percent": round(100.0 * state.downloaded_bytes / state.total_bytes, 2)
                    if state.total_bytes
                    else 0.0,
                    "status": status,
                    "total_files": len(state.files),
                    "completed_files": sum(1 for f in state.files if f.status == "complete"),
                    "started_at": state.started_at or None,
                }
            )
        return jobs

    async def resumable(self) -> dict[str, Any]:
        """P16."""
        try:
            jobs = await asyncio.to_thread(self._resumable_sync)
        except OSError:
            logger.exception("resumable_listing_failed")
            jobs = []
        return {"jobs": jobs, "count": len(jobs)}

    async def dismiss(self, job_id: str, delete_files: bool) -> dict[str, Any]:
        """P17: forget a job, optionally deleting its finished files."""
        state = await asyncio.to_thread(self.store.load, job_id)
        if state is None:
            raise NotFoundError(f"Job {job_id} not found")
        await self._signal(job_id, "cancel")
        deleted = 0
        if delete_files:
            deleted = await asyncio.to_thread(self._delete_files, state)
        await asyncio.to_thread(self.store.delete, job_id)
        return {"job_id": job_id, "dismissed": True, "deleted_files": deleted}

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

    # --- synchronous legacy download (P9) ---------------------------------------------------------------

    async def download_now(self, obs_id: str, product_type: str, product_id: str | None) -> dict[str, Any]:
        """P9: download into the nested layout and report; failures are ``status: "failed"``."""
        timeout = self.settings.mast_download_timeout
        try:
            return await asyncio.wait_for(self._download_now(obs_id, product_type, product_id), timeout)
        except TimeoutError as error:
            raise UpstreamTimeoutError(f"Download timed out after {timeout:g} seconds") from error

    async def _download_now(self, obs_id: str, product_type: str, product_id: str | None) -> dict[str, Any]:
        download_dir = self.obs_dir(obs_id)
        result: dict[str, Any] = {
            "status": "completed",
            "obs_id": obs_id,
            "files": [],
            "file_count": 0,
            "download_dir": str(download_dir),
            "error": None,
            "timestamp": datetime.now(UTC).isoformat(),
        }
        try:
            products = await self.mast.download_products(
                obs_id, product_type=product_type, calib_level=None, exclude_spectral=False
            )
        except DomainError as error:
            result.update(status="failed", error=f"Could not get the product list: {error.detail}", download_dir=None)
            return result
        if product_id:
            products = [p for p in products if product_id in str(p.get("productFilename") or "")]
        files = self._file_states(obs_id, products, nested=True)
        state = JobState(job_id="sync", obs_id=obs_id, download_dir=str(download_dir), files=files, kind="legacy")
        state.recount()
        tracker = JobTracker(state, self.store)
        errors = await download_files(self.http, files, tracker, self.http_options)
        if not errors:
            try:
                await self._persist(state)
            except Exception:
                logger.exception("persist_failed", extra={"obs_id": obs_id})
                errors = ["Could not store the downloaded files"]
        done = [f.local_path for f in files if f.status == "complete"]
        result.update(files=done, file_count=len(done), timestamp=datetime.now(UTC).isoformat())
        if errors:
            result.update(status="failed", error=errors[0])
        return result
