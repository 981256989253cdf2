"""Job state files on disk: the single source of truth for every proxy worker.

Each job is one JSON file ``<MAST_DOWNLOAD_DIR>/.download_state/<job_id>.json`` written
atomically (temporary file + ``os.replace``). A job that succeeds, or that has nothing to
resume, moves to ``.download_state/finished/`` so that progress polls on any worker still see
its outcome while resume, the resumable list and dismiss no longer do.

Ownership: the worker that runs a job holds an exclusive ``flock`` on ``<job_id>.lock`` for the
whole run. The kernel drops the lock when that process dies (even on ``kill -9``), so "is the
job running somewhere" is a non-blocking lock attempt, and a job whose owner died is simply
paused. Other workers ask the owner to pause or cancel by writing ``<job_id>.control``; the
owner checks it between chunks. The owner deletes the lock file when its run ends, still holding
the lock; a lock is only taken once the locked descriptor is checked to be the file at the path,
so a process that opened the file just before it was deleted never believes it owns the job.

What a job leaves behind is bounded: its lock and control files go with its run, and the
finished area keeps the newest ``max_finished`` states (``MAST_MAX_FINISHED_JOBS``) as well as
dropping those older than a week.

Everything here is blocking file I/O: async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from app.mast.jobs.state import FINAL_STATUSES, ControlAction, FileState, FileStatus, JobState, utc_now

logger = logging.getLogger("app.mast.state")

JOB_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
STATE_DIR_NAME = ".download_state"
FINISHED_DIR_NAME = "finished"
MAX_AGE_SECONDS = 7 * 24 * 3600.0
#: Finished states kept by default (``MAST_MAX_FINISHED_JOBS``); older ones are deleted first.
MAX_FINISHED_JOBS = 500
#: Attempts at taking a lock whose file is deleted and re-created meanwhile.
LOCK_ATTEMPTS = 5
#: Age after which an unheld lock file without an active state is removed.
LOCK_MAX_AGE_SECONDS = 86400.0
#: Age after which a temporary file left by an interrupted write is removed.
TMP_MAX_AGE_SECONDS = 3600.0


def valid_job_id(job_id: str) -> bool:
    """Return whether ``job_id`` may name a state file (other ids behave as not found)."""
    return bool(JOB_ID_RE.match(job_id)) and len(job_id) <= 128


def _refresh_file(file: FileState) -> None:
    """Re-check one unfinished file against the disk."""
    final = Path(file.local_path)
    part = final.with_name(final.name + ".part")
    if final.exists() and (not file.total_bytes or final.stat().st_size == file.total_bytes):
        file.found_complete(final.stat().st_size)
    elif part.exists():
        file.found_partial(part.stat().st_size)
    else:
        file.found_missing()


def _is_file_at(fd: int, path: Path) -> bool:
    """Return whether the open descriptor ``fd`` is the file now at ``path``."""
    try:
        at_path = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)


class StateStore:
    """Job state files, ownership locks and control requests under ``MAST_DOWNLOAD_DIR``.

    Parameters
    ----------
    download_dir
        ``MAST_DOWNLOAD_DIR``.
    max_finished
        How many finished states are kept (the newest).
    """

    def __init__(self, download_dir: Path, *, max_finished: int = MAX_FINISHED_JOBS) -> None:
        if max_finished < 1:
            raise ValueError(f"max_finished must be at least 1, got {max_finished}")
        self.max_finished = max_finished
        self.download_dir = Path(download_dir).resolve()
        self.state_dir = self.download_dir / STATE_DIR_NAME
        self.finished_dir = self.state_dir / FINISHED_DIR_NAME
        self.finished_dir.mkdir(parents=True, exist_ok=True)

    # --- paths ---------------------------------------------------------------------------------

    def state_path(self, job_id: str) -> Path:
        """Return the path of a job's active state file."""
        return self.state_dir / f"{job_id}.json"

    def finished_path(self, job_id: str) -> Path:
        """Return the path of a job's state file in the finished area."""
        return self.finished_dir / f"{job_id}.json"

    def lock_path(self, job_id: str) -> Path:
        """Return the path of a job's ownership lock file."""
        return self.state_dir / f"{job_id}.lock"

    def control_path(self, job_id: str) -> Path:
        """Return the path of a job's control request file."""
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
        """Return the active (resumable or running) state of a job, or ``None``."""
        if not valid_job_id(job_id):
            return None
        return self._read(self.state_path(job_id))

    def load_any(self, job_id: str) -> tuple[JobState, bool] | None:
        """Return the state of a job and whether it is finished, looking in both places."""
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
        """Move a job to the finished area (its active state file disappears); keep that area bounded."""
        self._write(self.finished_path(state.job_id), state)
        with contextlib.suppress(FileNotFoundError):
            self.state_path(state.job_id).unlink()
        self.prune_finished()

    def prune_finished(self) -> int:
        """Delete the oldest finished states beyond ``max_finished``; return how many went."""
        dated: list[tuple[float, Path]] = []
        for path in self.finished_dir.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                dated.append((path.stat().st_mtime, path))
        if len(dated) <= self.max_finished:
            return 0
        dated.sort()
        removed = 0
        for _, path in dated[: len(dated) - self.max_finished]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed

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
        """Return every active state."""
        states = []
        for path in sorted(self.state_dir.glob("*.json")):
            state = self._read(path)
            if state is not None:
                states.append(state)
        return states

    # --- ownership -------------------------------------------------------------------------------

    def try_lock(self, job_id: str) -> int | None:
        """Take the job's ownership lock; return its descriptor, or ``None`` if a live process holds it."""
        path = self.lock_path(job_id)
        for _ in range(LOCK_ATTEMPTS):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return None
            if _is_file_at(fd, path):
                return fd
            # the previous owner deleted the file between our open and our lock: take the new one
            self.release(fd)
        return None

    @staticmethod
    def release(fd: int) -> None:
        """Drop an ownership lock."""
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(fd)

    def release_and_remove(self, job_id: str, fd: int) -> None:
        """Delete the job's lock file, then drop the lock (the run that held it has ended)."""
        with contextlib.suppress(FileNotFoundError):
            self.lock_path(job_id).unlink()
        self.release(fd)

    def is_owned(self, job_id: str) -> bool:
        """Return whether a live process currently runs the job (never creates a lock file)."""
        try:
            fd = os.open(self.lock_path(job_id), os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            held = True
        else:
            held = False
        finally:
            os.close(fd)  # closing drops a lock this probe took
        return held

    # --- control requests ---------------------------------------------------------------------

    def request_control(self, job_id: str, action: ControlAction) -> None:
        """Ask the owner of a job to pause or cancel it."""
        path = self.control_path(job_id)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(action)
        os.replace(tmp, path)

    def pending_control(self, job_id: str) -> ControlAction | None:
        """Return the control request waiting for a job, if any."""
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
        """Remove a job's control request, if any."""
        with contextlib.suppress(FileNotFoundError):
            self.control_path(job_id).unlink()

    # --- disk checks and cleanup ------------------------------------------------------------------

    @staticmethod
    def refresh_from_disk(state: JobState) -> JobState:
        """Re-check every unfinished file against the disk and return the state."""
        for file in state.files:
            if file.is_complete or file.status == FileStatus.FAILED:
                continue
            _refresh_file(file)
        state.recount()
        return state

    def cleanup(self, max_age: float = MAX_AGE_SECONDS) -> dict[str, int]:
        """Delete orphan ``.part`` files and finished state files older than ``max_age`` seconds.

        Returns
        -------
        dict of str to int
            How many ``parts`` and ``states`` were removed.
        """
        cutoff = time.time() - max_age
        states, referenced = self._drop_old_active(cutoff)
        states += self._drop_old_finished(cutoff)
        states += self.prune_finished()
        parts = self._drop_orphan_parts(referenced, cutoff)
        self._drop_stale_locks()
        self._drop_stale_tmp()
        return {"parts": parts, "states": states}

    def _drop_old_active(self, cutoff: float) -> tuple[int, set[str]]:
        """Remove old active states of ended jobs; return the count and the ``.part`` paths still in use."""
        removed = 0
        referenced: set[str] = set()
        for state in self.list_active():
            if state.status in FINAL_STATUSES and self._older(self.state_path(state.job_id), cutoff):
                with contextlib.suppress(FileNotFoundError):
                    self.state_path(state.job_id).unlink()
                    removed += 1
                continue
            referenced.update(f.local_path + ".part" for f in state.files)
        return removed, referenced

    def _drop_old_finished(self, cutoff: float) -> int:
        return self._unlink_older(self.finished_dir.glob("*.json"), cutoff)

    def _drop_orphan_parts(self, referenced: set[str], cutoff: float) -> int:
        orphans = (path for path in self.download_dir.rglob("*.part") if str(path) not in referenced)
        return self._unlink_older(orphans, cutoff)

    def _drop_stale_locks(self) -> None:
        """Remove lock files of jobs that no longer have an active state, once nobody holds them."""
        cutoff = time.time() - LOCK_MAX_AGE_SECONDS
        for path in self.state_dir.glob("*.lock"):
            if not self.state_path(path.stem).exists() and self._older(path, cutoff):
                fd = self.try_lock(path.stem)
                if fd is not None:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    self.release(fd)

    def _drop_stale_tmp(self) -> None:
        self._unlink_older(self.state_dir.glob("*.tmp"), time.time() - TMP_MAX_AGE_SECONDS)

    def _unlink_older(self, paths: Iterable[Path], cutoff: float) -> int:
        removed = 0
        for path in paths:
            if self._older(path, cutoff):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    @staticmethod
    def _older(path: Path, cutoff: float) -> bool:
        try:
            return path.stat().st_mtime < cutoff
        except FileNotFoundError:
            return False
