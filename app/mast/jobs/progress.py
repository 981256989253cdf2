"""Live progress of a running job, and the progress object the backend polls.

A :class:`JobTracker` belongs to the worker that runs the job. Downloaders report bytes to it;
it keeps the speed and ETA, answers control requests (pause/cancel) between chunks, and writes
the state file at most every ``flush_interval`` seconds from a background task (in a thread,
so the event loop never blocks on disk), and on demand when the owner answers a progress poll:
every answer, whichever worker gives it, is a snapshot that was written to the file first, so
successive answers never go backwards. :func:`build_progress` turns any state, live or read
from disk by another worker, into the wire model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from app.core.metrics import DOWNLOAD_BYTES
from app.mast.jobs.state import ControlAction, FileState, JobStage, JobState, JobStatus
from app.mast.jobs.store import StateStore
from app.mast.schemas import FileProgress, JobProgress

logger = logging.getLogger("app.mast.tracker")

FLUSH_INTERVAL = 0.25
CONTROL_POLL_INTERVAL = 0.1
SPEED_WINDOW = 3.0
#: Seconds after which the state is written even when nothing changed.
HEARTBEAT_SECONDS = 2.0


class JobInterruptedError(Exception):
    """Raised inside a downloader when the job was asked to pause or cancel.

    Parameters
    ----------
    action
        What was asked.
    """

    def __init__(self, action: ControlAction) -> None:
        super().__init__(action)
        self.action = action


def human_bytes(size: float) -> str:
    """Return ``12.3 MB`` style text for a byte count."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GB"


class JobTracker:
    """The in-memory state of a job run by this process, flushed to disk throttled.

    Parameters
    ----------
    state
        The job state (owned by this tracker while the job runs).
    store
        Where the state is persisted.
    flush_interval
        Minimum seconds between two progress writes.
    """

    def __init__(self, state: JobState, store: StateStore, *, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.state = state
        self.store = store
        self.flush_interval = flush_interval
        self.local_control: ControlAction | None = None
        self._dirty = True
        self._samples: list[tuple[float, int]] = []
        self._last_control_check = 0.0
        self._control_cache: ControlAction | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._closed = False

    # --- persistence ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the periodic writer."""
        self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        heartbeat = 0.0
        while True:
            await asyncio.sleep(self.flush_interval)
            now = time.monotonic()
            if self._dirty or now - heartbeat > HEARTBEAT_SECONDS:
                heartbeat = now
                await self.flush()

    async def flush(self) -> JobState | None:
        """Write the state file now (in a thread) and return the snapshot written.

        Returns ``None`` once :meth:`stop` has run: the job's final state is then the caller's to
        write, and no snapshot may land after it.
        """
        async with self._write_lock:
            if self._closed:
                return None
            self._dirty = False
            self._update_speed()
            snapshot = self.state.model_copy(deep=True)
            future = asyncio.get_running_loop().run_in_executor(None, self.store.save, snapshot)
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                # Let the write land before anyone writes a newer state (stop() waits for this).
                await asyncio.wait([future])
                raise
            return snapshot

    async def stop(self) -> None:
        """Stop writing: the periodic writer ends and a write in flight lands (the caller writes the final state)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        async with self._write_lock:
            self._closed = True

    # --- updates from the job and the downloaders ----------------------------------------------------

    def mark_dirty(self) -> None:
        """Note that the state changed, so that the next periodic write saves it."""
        self._dirty = True

    def add_bytes(self, file: FileState, count: int) -> None:
        """Record ``count`` new bytes of ``file``."""
        file.downloaded_bytes += count
        self.state.downloaded_bytes += count
        self.state.current_file = file.filename
        DOWNLOAD_BYTES.labels(kind=self.state.kind).inc(count)
        self._dirty = True

    def set_file_bytes(self, file: FileState, count: int) -> None:
        """Set the bytes of ``file`` (after a restart from zero or a resume)."""
        self.state.downloaded_bytes += count - file.downloaded_bytes
        file.downloaded_bytes = count
        self._dirty = True

    def _update_speed(self) -> None:
        now = time.monotonic()
        self._samples.append((now, self.state.downloaded_bytes))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW:
            self._samples.pop(0)
        first_t, first_b = self._samples[0]
        elapsed = now - first_t
        speed = (self.state.downloaded_bytes - first_b) / elapsed if elapsed > 0 else 0.0
        self.state.speed_bytes_per_sec = max(0.0, speed)
        remaining = max(0, self.state.total_bytes - self.state.downloaded_bytes)
        self.state.eta_seconds = remaining / speed if speed > 0 else None
        if self.state.stage == JobStage.DOWNLOADING and self.state.current_file:
            prefix = "S3: " if self.state.kind == "s3" else "Downloading: "
            self.state.message = f"{prefix}{self.state.current_file} ({human_bytes(speed)}/s)"

    # --- control ---------------------------------------------------------------------------------

    def check_control(self) -> None:
        """Raise :class:`JobInterruptedError` if a pause or cancel was requested (cheap; call per chunk)."""
        if self.local_control is not None:
            raise JobInterruptedError(self.local_control)
        now = time.monotonic()
        if now - self._last_control_check >= CONTROL_POLL_INTERVAL:
            self._last_control_check = now
            self._control_cache = self.store.pending_control(self.state.job_id)
        if self._control_cache is not None:
            raise JobInterruptedError(self._control_cache)


def _percent(done: int, total: int) -> float:
    return round(100.0 * done / total, 2) if total > 0 else 0.0


def _overall(stage: str, state: JobState, complete_files: int) -> int:
    """Return the integer ``progress`` of a job: by bytes, else by files."""
    if stage == JobStage.COMPLETE:
        return 100
    if state.total_bytes > 0:
        return min(100, int(100 * state.downloaded_bytes / state.total_bytes))
    if state.files:
        return int(100 * complete_files / len(state.files))
    return 0


def _is_resumable(state: JobState, stage: str) -> bool:
    resumable_status = state.resumable_status or (stage == JobStage.PAUSED and state.status != JobStatus.CANCELLED)
    has_open = any(f.has_work_left for f in state.files)
    return bool(resumable_status and has_open and state.kind != "legacy" and stage != JobStage.COMPLETE)


def _file_progress(file: FileState) -> FileProgress:
    return FileProgress(
        filename=file.filename,
        total_bytes=int(file.total_bytes),
        downloaded_bytes=int(file.downloaded_bytes),
        progress_percent=100.0 if file.is_complete else _percent(file.downloaded_bytes, file.total_bytes),
        status=file.status,
    )


def build_progress(state: JobState, *, live: bool, owned: bool) -> JobProgress:
    """Return the progress object of a job (see ``docs/api.md``).

    Parameters
    ----------
    state
        The job state, live or read from disk.
    live
        Whether it is the in-memory state of a job this process runs.
    owned
        Whether some live process runs the job. A job marked running whose owner died is
        reported as paused (resumable).

    Returns
    -------
    JobProgress
        What ``GET /mast/download/progress-chunked/{job_id}`` answers.
    """
    stage: str = state.stage
    message, speed, eta, current = state.message, state.speed_bytes_per_sec, state.eta_seconds, state.current_file
    if not live and not owned and state.marked_running:
        stage, message, speed, eta, current = JobStage.PAUSED, "Job paused - can be resumed", 0.0, None, None
    complete_files = [f for f in state.files if f.is_complete]
    return JobProgress(
        job_id=state.job_id,
        obs_id=state.obs_id,
        stage=stage,
        message=message,
        progress=_overall(stage, state, len(complete_files)),
        total_files=len(state.files),
        downloaded_files=len(complete_files),
        current_file=current,
        files=[str(Path(f.local_path)) for f in complete_files],
        error=state.error,
        started_at=state.started_at or "",
        completed_at=state.completed_at,
        download_dir=state.download_dir,
        is_complete=stage in {JobStage.COMPLETE, JobStage.FAILED},
        total_bytes=int(state.total_bytes),
        downloaded_bytes=int(state.downloaded_bytes),
        download_progress_percent=100.0
        if stage == JobStage.COMPLETE
        else _percent(state.downloaded_bytes, state.total_bytes),
        speed_bytes_per_sec=float(speed),
        eta_seconds=eta,
        file_progress=[_file_progress(f) for f in state.files],
        is_resumable=_is_resumable(state, stage),
    )
