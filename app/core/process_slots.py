"""Worker processes supervised one by one: a dead or cancelled worker costs its own job only.

A ``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one of its processes dies: every
running and queued job fails, and so does the next unrelated request. loky's reusable executor does
the same (it terminates the pool and fails the pending futures). Neither can stop one running job
either, so a job whose client left, or whose deadline passed, keeps its worker busy to the end.

:class:`SlotPool` keeps ``workers`` independent slots, each a single-process
``ProcessPoolExecutor`` (the standard library does the pickling, the result pipe and the crash
detection). A job waits for a free slot in the API process, so a queued job is in no worker and
survives any crash. When a slot's process dies, only the job on it fails (the caller maps that to
503) and the slot gets a new process; a process that died while idle is replaced on the next
dispatch without failing the job, which never reached it. A cancelled await (deadline, client gone)
kills the slot's process and replaces it, so the worker is free again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

logger = logging.getLogger("app.executor.slots")

T = TypeVar("T")


class WorkerDiedError(Exception):
    """The process running a job died (killed, out of memory, ``os._exit``)."""


class _Slot:
    """One worker process, behind a single-process executor."""

    def __init__(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        self._initializer, self._initargs = initializer, initargs
        self.pool = self._new_pool()
        self.pid: int | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=self._initializer,
            initargs=self._initargs,
        )

    def submit(self, call: Callable[[], T]) -> Future[T]:
        """Submit ``call``; a process found dead before the job reached it is replaced first."""
        try:
            return self.pool.submit(call)
        except BrokenProcessPool:
            logger.warning("worker_replaced", extra={"reason": "died while idle", "pid": self.pid})
            self.renew()
            return self.pool.submit(call)

    def kill(self) -> None:
        """Kill the slot's process (its job is abandoned) and start a new one."""
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.renew()

    def _pids(self) -> list[int]:
        # The executor's process table is not public before Python 3.14 (kill_workers()).
        processes: dict[int, Any] = getattr(self.pool, "_processes", None) or {}
        return list(processes)

    def renew(self) -> None:
        """Drop the current executor (broken or killed) and start a fresh one."""
        old, self.pool = self.pool, self._new_pool()
        old.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the process at once, abandoning what it runs (the engine is going down)."""
        pids = self._pids()
        self.pool.shutdown(wait=False, cancel_futures=True)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


class SlotPool:
    """``workers`` supervised worker processes; jobs wait for a free one in the API process.

    Parameters
    ----------
    workers
        Worker processes (jobs that run at once).
    initializer, initargs
        Run once in every new worker process.
    """

    def __init__(self, workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...] = ()) -> None:
        self.slots = [_Slot(initializer, initargs) for _ in range(workers)]
        self._free: asyncio.Queue[_Slot] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _queue(self) -> asyncio.Queue[_Slot]:
        loop = asyncio.get_running_loop()
        if self._free is None or self._loop is not loop:  # one queue per event loop that uses the pool
            self._free, self._loop = asyncio.Queue(), loop
            for slot in self.slots:
                self._free.put_nowait(slot)
        return self._free

    async def run(self, call: Callable[[], T]) -> T:
        """Run ``call`` in a free worker process; :class:`WorkerDiedError` if that process dies meanwhile."""
        free = self._queue()
        slot = await free.get()
        try:
            future = slot.submit(call)
            try:
                return await asyncio.wrap_future(future)
            except BrokenProcessPool as error:
                slot.renew()
                raise WorkerDiedError() from error
            except asyncio.CancelledError:
                if not future.done():
                    logger.info("worker_killed", extra={"reason": "job cancelled"})
                    slot.kill()
                raise
        finally:
            free.put_nowait(slot)

    def shutdown(self) -> None:
        """Stop every worker process."""
        for slot in self.slots:
            slot.shutdown()
