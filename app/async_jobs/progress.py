"""What a running job reports: stage, share done, blocks, estimated time left.

The replica that runs a job keeps its record in memory and writes it to storage when the stage
changes, when a block finishes (at most every ``MIN_WRITE_SECONDS``) and on a heartbeat, so a
replica that reads the record sees progress that only moves forward, and can tell a job whose
engine died (no heartbeat for a while) from a slow one.
"""

from __future__ import annotations

import asyncio
import time

from app.async_jobs.schemas import JobRecord, JobStatus
from app.async_jobs.store import JobStore, utcnow

MIN_WRITE_SECONDS = 0.5
#: Share of the work at the start of each stage (blocks spread between their start and the next stage).
STAGE_START = {
    "queued": 0.0,
    "rendering": 0.05,
    "planning": 0.02,
    "blocks": 0.05,
    "assembling": 0.9,
    "storing": 0.95,
    "done": 1.0,
}


class Tracker:
    """The live record of one job, written to storage as it changes."""

    def __init__(self, record: JobRecord, store: JobStore) -> None:
        self.record = record
        self.store = store
        self._written_at = 0.0
        self._writing: asyncio.Task[None] | None = None
        self._dirty = False
        self._blocks_started: float | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        """Take a progress report (``done`` of ``total`` blocks, when the stage has blocks)."""
        record = self.record
        changed_stage = stage != record.stage
        record.status = JobStatus.RUNNING
        record.stage = stage
        fraction = STAGE_START.get(stage, record.fraction)
        if stage == "blocks" and total > 0:
            record.blocks_done, record.blocks_total = done, total
            fraction = STAGE_START["blocks"] + (STAGE_START["assembling"] - STAGE_START["blocks"]) * done / total
            record.eta_seconds = self._blocks_eta(done, total)
        elif stage in ("assembling", "storing"):
            record.eta_seconds = None
        record.fraction = max(record.fraction, round(fraction, 4))
        self._dirty = True
        if changed_stage or time.monotonic() - self._written_at >= MIN_WRITE_SECONDS:
            self.flush_soon()

    def _blocks_eta(self, done: int, total: int) -> float | None:
        now = time.monotonic()
        if self._blocks_started is None:
            self._blocks_started = now
        if done <= 0:
            return None
        per_block = (now - self._blocks_started) / done
        return round(per_block * (total - done + 1), 1)  # the assembly costs about one block

    def flush_soon(self) -> None:
        """Write the record in the background unless a write is already under way."""
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self.flush())

    async def flush(self) -> None:
        """Write the record now (also a heartbeat: ``updated_at`` moves)."""
        self._dirty = False
        self._written_at = time.monotonic()
        self.record.updated_at = utcnow()
        await self.store.save(self.record.model_copy())

    async def finish(self, **fields: object) -> None:
        """Write the final record (after any write in flight, so the final one lands last)."""
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
        for name, value in fields.items():
            setattr(self.record, name, value)
        self.record.eta_seconds = None
        await self.flush()
