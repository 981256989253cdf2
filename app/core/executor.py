"""The job executor and its concurrency gate.

Heavy engine work (numpy, astropy, reproject, Pillow) never runs on the event loop: routes hand
a picklable function to :class:`JobExecutor`, which runs it in a bounded pool of worker
processes (a crash or OOM of one job cannot take the API down) or, for tests and light jobs, in
threads. The gate admits at most ``workers + queue_size`` jobs; the next one gets
:class:`~app.core.exceptions.BusyError` (HTTP 429 with ``Retry-After``) instead of piling up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Literal, ParamSpec, TypeVar

from app.core.exceptions import BusyError, WorkerCrashedError

logger = logging.getLogger("app.executor")

P = ParamSpec("P")
T = TypeVar("T")

ExecutorKind = Literal["process", "thread"]


def _init_worker(nice: int) -> None:
    """Run once in each worker process: lower its CPU priority and import the numeric stack.

    A positive ``nice`` lets the API process (event loop, ``/health``) win the CPU whenever
    heavy jobs saturate every core.
    """
    if nice > 0:
        with contextlib.suppress(OSError):
            os.nice(nice)
    import numpy  # noqa: F401


class JobExecutor:
    """Bounded pool of workers behind an admission gate.

    Parameters
    ----------
    workers
        Number of worker processes (or threads).
    queue_size
        Jobs allowed to wait for a worker before new ones are refused.
    kind
        ``"process"`` (default, isolated memory) or ``"thread"``.
    retry_after
        Seconds suggested to refused clients.
    worker_nice
        Niceness added to worker processes so the API process keeps priority.
    """

    def __init__(
        self,
        *,
        workers: int,
        queue_size: int,
        kind: ExecutorKind = "process",
        retry_after: int = 5,
        worker_nice: int = 10,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {queue_size}")
        self.workers = workers
        self.queue_size = queue_size
        self.kind: ExecutorKind = kind
        self.retry_after = retry_after
        self.worker_nice = worker_nice
        self._capacity = workers + queue_size
        self._in_flight = 0
        self._lock = threading.Lock()
        self._pool: Executor | None = None

    @property
    def in_flight(self) -> int:
        """Jobs admitted and not yet finished."""
        return self._in_flight

    @property
    def capacity(self) -> int:
        """Jobs admitted at most (running plus queued)."""
        return self._capacity

    def start(self) -> None:
        """Create the pool (idempotent)."""
        if self._pool is None:
            self._pool = self._make_pool()

    def _make_pool(self) -> Executor:
        if self.kind == "thread":
            return ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="job")
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_init_worker, initargs=(self.worker_nice,)
        )

    def shutdown(self) -> None:
        """Stop the pool; running jobs are cancelled where possible."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def try_acquire(self) -> bool:
        """Take a slot of the gate if one is free."""
        with self._lock:
            if self._in_flight >= self._capacity:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the pool, or raise :class:`BusyError` when full."""
        if not self.try_acquire():
            logger.warning("gate_full", extra={"in_flight": self._in_flight, "capacity": self._capacity})
            raise BusyError(retry_after=self.retry_after)
        try:
            self.start()
            assert self._pool is not None
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))
            except BrokenProcessPool as error:
                logger.error("worker_crashed", extra={"job": getattr(fn, "__name__", "?")})
                self._replace_broken_pool()
                raise WorkerCrashedError(retry_after=self.retry_after) from error
        finally:
            self.release()

    def _replace_broken_pool(self) -> None:
        broken, self._pool = self._pool, None
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)
        self.start()
