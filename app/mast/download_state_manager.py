"""Download job state on disk: the single source of truth for every proxy worker (contract 5.4).

Each job is one JSON file ``<MAST_DOWNLOAD_DIR>/.download_state/<job_id>.json`` written
atomically (temporary file + ``os.replace``). A job that succeeds, or that has nothing to
resume, moves to ``.download_state/finished/`` so that progress polls on any worker still see
its outcome while resume, the resumable list and dismiss no longer do.

Ownership: the worker that runs a job holds an exclusive ``flock`` on ``<job_id>.lock`` for the
whole run. The kernel drops the lock when that process dies (even on ``kill -9``), so "is the
job running somewhere" is a non-blocking lock attempt, and a job whose owner died is simply
paused. Other workers ask the owner to pause or cancel by writing ``<job_id>.control``; the
owner checks it between chunks.

Everything here is blocking file I/O: async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

logger = logging.getLogger("app.mast.state")

JOB_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
STATE_DIR_NAME = ".download_state"
FINISHED_DIR_NAME = "finished"
MAX_AGE_SECONDS = 7 * 24 * 3600.0

JobKind = Literal["chunked", "s3", "legacy"]
ControlAction = Literal["pause", "cancel"]
#: Statuses from which a job can be resumed.
RESUMABLE_STATUSES = frozenset({"paused", "failed", "downloading", "pending"})
#: File statuses that still need work.
OPEN_FILE_STATUSES = frozenset({"pending", "paused", "downloading"})


def utc_now() -> str:
    """The current time as ISO-8601 UTC."""
    return datetime.now(UTC).isoformat()


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
        return self.end - self.start - self.done


class FileState(BaseModel):
    """One file of a job (contract 5.4 plus the source of its bytes)."""

    filename: str
    url: str = ""
    local_path: str
    total_bytes: int = 0
    downloaded_bytes: int = 0
    status: str = "pending"
    error: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    uri: str | None = None
    s3_key: str | None = None
    segments: list[Segment] = Field(default_factory=list)

    def segments_bytes(self) -> int:
        """Bytes on disk of a ranged S3 download: each segment's contiguous prefix."""
        return sum(segment.done for segment in self.segments)


class JobState(BaseModel):
    """A download job as persisted (contract 5.4 top level plus the live progress fields)."""

    job_id: str
    obs_id: str
    download_dir: str
    files: list[FileState] = Field(default_factory=list)
    total_bytes: int = 0
    downloaded_bytes: int = 0
    status: str = "pending"
    started_at: str = ""
    completed_at: str | None = None
    error: str | None = None
    saved_at: str | None = None
    kind: JobKind = "chunked"
    stage: str = "queued"
    message: str = ""
    current_file: str | None = None
    speed_bytes_per_sec: float = 0.0
    eta_seconds: float | None = None
    product_type: str = "SCIENCE"
    calib_level: list[int] | None = None
    owner_pid: int | None = None

    def recount(self) -> None:
        """Recompute the job totals from its files."""
        self.total_bytes = sum(f.total_bytes for f in self.files)
        self.downloaded_bytes = sum(min(f.downloaded_bytes, f.total_bytes or f.downloaded_bytes) for f in self.files)


def valid_job_id(job_id: str) -> bool:
    """Whether ``job_id`` may name a state file (other ids behave as not found)."""
    return bool(JOB_ID_RE.match(job_id)) and len(job_id) <= 128


class StateStore:
    """Job state files, ownership locks and control requests under ``MAST_DOWNLOAD_DIR``.

    Parameters
    ----------
    download_dir
        ``MAST_DOWNLOAD_DIR``.
    """

    def __init__(self, download_dir: Path) -> None:
        self.download_dir = Path(download_dir).resolve()
        self.state_dir = self.download_dir / STATE_DIR_NAME
        self.finished_dir = self.state_dir / FINISHED_DIR_NAME
        self.finished_dir.mkdir(parents=True, exist_ok=True)

    # --- paths ---------------------------------------------------------------------------------

    def state_path(self, job_id: str) -> Path:
        return self.state_dir / f"{job_id}.json"

    def finished_path(self, job_id: str) -> Path:
        return self.finished_dir / f"{job_id}.json"

    def lock_path(self, job_id: str) -> Path:
        return self.state_dir / f"{job_id}.lock"

    def control_path(self, job_id: str) -> Path:
        return self.state_dir / f"{job_id}.control"

    # --- reading and writing -----------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> JobState | None:
        try:
            return JobState.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (ValidationError, ValueError, OSError) as error:
            logger.warning("state_file_unreadable", extra={"path": str(path), "error": type(error).__name__})
            return None

    @staticmethod
    def _write(path: Path, state: JobState) -> None:
        state.saved_at = utc_now()
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(state.model_dump_json())
        os.replace(tmp, path)

    def load(self, job_id: str) -> JobState | None:
        """The active (resumable or running) state of a job, or ``None``."""
        if not valid_job_id(job_id):
            return None
        return self._read(self.state_path(job_id))

    def load_any(self, job_id: str) -> tuple[JobState, bool] | None:
        """The state of a job and whether it is finished, looking in both places."""
        if not valid_job_id(job_id):
            return None
        state = self._read(self.state_path(job_id))
        if state is not None:
            return state, False
        state = self._read(self.finished_path(job_id))
        return (state, True) if state is not None else None

    def save(self, state: JobState) -> None:
        """Write the active state of a job atomically."""
        self._write(self.state_path(state.job_id), state)

    def finish(self, state: JobState) -> None:
        """Move a job to the finished area (its active state file disappears)."""
        self._write(self.finished_path(state.job_id), state)
        with contextlib.suppress(FileNotFoundError):
            self.state_path(state.job_id).unlink()

    def delete(self, job_id: str) -> bool:
        """Remove every file of a job; return whether an active state file existed."""
        existed = False
        for path in (self.state_path(job_id), self.finished_path(job_id), self.control_path(job_id)):
            try:
                path.unlink()
                existed = existed or (path.parent == self.state_dir and path.suffix == ".json")
            except FileNotFoundError:
                pass
        return existed

    def list_active(self) -> list[JobState]:
        """Every active state file."""
        states = []
        for path in sorted(self.state_dir.glob("*.json")):
            state = self._read(path)
            if state is not None:
                states.append(state)
        return states

    # --- ownership -------------------------------------------------------------------------------

    def try_lock(self, job_id: str) -> int | None:
        """Take the job's ownership lock; the descriptor, or ``None`` if a live process holds it."""
        fd = os.open(self.lock_path(job_id), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def release(fd: int) -> None:
        """Drop an ownership lock."""
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(fd)

    def is_owned(self, job_id: str) -> bool:
        """Whether a live process currently runs the job."""
        if not self.lock_path(job_id).exists():
            return False
        fd = self.try_lock(job_id)
        if fd is None:
            return True
        self.release(fd)
        return False

    # --- control requests ---------------------------------------------------------------------

    def request_control(self, job_id: str, action: ControlAction) -> None:
        """Ask the owner of a job to pause or cancel it."""
        path = self.control_path(job_id)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(action)
        os.replace(tmp, path)

    def pending_control(self, job_id: str) -> ControlAction | None:
        """The control request waiting for a job, if any."""
        try:
            text = self.control_path(job_id).read_text().strip()
        except FileNotFoundError:
            return None
        if text == "cancel":
            return "cancel"
        if text == "pause":
            return "pause"
        return None

    def clear_control(self, job_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.control_path(job_id).unlink()

    # --- disk checks and cleanup ------------------------------------------------------------------

    @staticmethod
    def refresh_from_disk(state: JobState) -> JobState:
        """Re-check every unfinished file against the disk (contract 5.4)."""
        for file in state.files:
            if file.status in {"complete", "failed"}:
                continue
            final = Path(file.local_path)
            part = final.with_name(final.name + ".part")
            if final.exists() and (not file.total_bytes or final.stat().st_size == file.total_bytes):
                file.status = "complete"
                file.downloaded_bytes = final.stat().st_size
            elif part.exists():
                size = part.stat().st_size
                if file.s3_key and file.segments and size == file.total_bytes:
                    file.downloaded_bytes = file.segments_bytes()
                else:
                    file.downloaded_bytes = size
                    file.segments = []
                file.status = "paused"
            else:
                file.status = "pending"
                file.downloaded_bytes = 0
                file.segments = []
            file.error = None
        state.recount()
        return state

    def cleanup(self, max_age: float = MAX_AGE_SECONDS) -> dict[str, int]:
        """Delete orphan ``.part`` files and finished state files older than ``max_age`` seconds."""
        cutoff = time.time() - max_age
        removed = {"parts": 0, "states": 0}
        referenced: set[str] = set()
        for state in self.list_active():
            if state.status in {"complete", "cancelled", "failed"} and self._older(
                self.state_path(state.job_id), cutoff
            ):
                with contextlib.suppress(FileNotFoundError):
                    self.state_path(state.job_id).unlink()
                    removed["states"] += 1
                continue
            referenced.update(f.local_path + ".part" for f in state.files)
        for path in self.finished_dir.glob("*.json"):
            if self._older(path, cutoff):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed["states"] += 1
        for path in self.download_dir.rglob("*.part"):
            if str(path) not in referenced and self._older(path, cutoff):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed["parts"] += 1
        for path in self.state_dir.glob("*.lock"):
            # Lock files of jobs that no longer have an active state, once nobody holds them.
            if not self.state_path(path.stem).exists() and self._older(path, time.time() - 86400):
                fd = self.try_lock(path.stem)
                if fd is not None:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    self.release(fd)
        for path in self.state_dir.glob("*.tmp"):
            if self._older(path, time.time() - 3600):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        return removed

    @staticmethod
    def _older(path: Path, cutoff: float) -> bool:
        try:
            return path.stat().st_mtime < cutoff
        except FileNotFoundError:
            return False
