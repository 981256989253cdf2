"""The job executor: one admission gate and one deadline in front of a pluggable backend.

Heavy engine work (numpy, astropy, reproject, Pillow) never runs on the event loop: services hand a
picklable job function to :class:`JobExecutor`, which

- admits at most ``workers + queue_size`` jobs; the next one gets :class:`BusyError` (HTTP 429 with
  ``Retry-After``) instead of piling up;
- gives every job a deadline (:class:`JobTimeoutError`, 504), after which its backend task is
  cancelled;
- runs the job on a :class:`JobBackend`: :class:`PoolBackend` (the embedded default: a bounded pool
  of worker processes, or threads for tests and light work) or, when ``DASK_SCHEDULER_ADDRESS`` is
  set, :class:`app.core.dask_backend.DaskBackend` (a ``distributed.Client``; the same job functions
  run on the cluster's workers).

An optional ``context`` wraps every job as ``context(fn, *args, **kwargs)`` in the process that runs
it; the engine uses it to give jobs their storage (:mod:`app.worker.context`), so a job carries
storage keys and opens them where it runs.
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
from typing import Any, Literal, ParamSpec, Protocol, TypeVar

from app.core.exceptions import BusyError, JobTimeoutError, WorkerCrashedError

logger = logging.getLogger("app.executor")

P = ParamSpec("P")
T = TypeVar("T")

ExecutorKind = Literal["process", "thread"]
#: Wraps a job in the process that runs it: ``context(fn, *args, **kwargs)``.
JobContext = Callable[..., Any]


class JobBackend(Protocol):
    """Where jobs run: a local pool or a cluster."""

    name: str

    def start(self) -> None:
        """Prepare to run jobs (idempotent)."""

    def shutdown(self) -> None:
        """Stop; running jobs are cancelled where possible."""

    async def run(self, call: Callable[[], T], *, label: str) -> T:
        """Run ``call`` and return its result; cancelling the await cancels the job where the backend can."""
        ...


def _init_worker(nice: int) -> None:
    """Lower a worker process's CPU priority and import the numeric stack (once per process).

    A positive ``nice`` lets the API process (event loop, ``/health``) win the CPU whenever heavy
    jobs saturate every core.
    """
    if nice > 0:
        with contextlib.suppress(OSError):
            os.nice(nice)
    import numpy  # noqa: F401


class PoolBackend:
    """A bounded pool of local worker processes (isolated memory) or threads.

    Parameters
    ----------
    workers
        Processes or threads.
    kind
        ``"process"`` or ``"thread"``.
    retry_after
        Seconds suggested to clients when a worker process dies.
    worker_nice
        Niceness added to worker processes.
    """

    def __init__(self, *, workers: int, kind: ExecutorKind = "process", retry_after: int = 5, worker_nice: int = 10):
        self.name = f"{kind}-pool"
        self.workers = workers
        self.kind: ExecutorKind = kind
        self.retry_after = retry_after
        self.worker_nice = worker_nice
        self._pool: Executor | None = None

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
        """Stop the pool; queued jobs are cancelled."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self, call: Callable[[], T], *, label: str) -> T:
        """Run ``call`` on the pool; a dead worker process gives :class:`WorkerCrashedError` (503)."""
        self.start()
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, call)
        except BrokenProcessPool as error:
            logger.error("worker_crashed", extra={"job": label})
            self._replace_broken_pool()
            raise WorkerCrashedError(retry_after=self.retry_after) from error

    def _replace_broken_pool(self) -> None:
        broken, self._pool = self._pool, None
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)
        self.start()


class JobExecutor:
    """Admission gate and deadline in front of a :class:`JobBackend`.

    Parameters
    ----------
    workers
        Jobs that run at once (the pool size; with a cluster, the engine's share of it).
    queue_size
        Jobs allowed to wait for a worker before new ones are refused.
    kind
        ``"process"`` (default, isolated memory) or ``"thread"``; ignored when ``backend`` is given.
    retry_after
        Seconds suggested to refused clients.
    worker_nice
        Niceness added to local worker processes so the API process keeps priority.
    deadline_seconds
        Wall-clock budget of one job (``None``: no deadline).
    backend
        Where jobs run; a :class:`PoolBackend` of ``kind`` by default.
    context
        Wraps every job in the process that runs it (see the module docstring).
    """

    def __init__(
        self,
        *,
        workers: int,
        queue_size: int,
        kind: ExecutorKind = "process",
        retry_after: int = 5,
        worker_nice: int = 10,
        deadline_seconds: float | None = None,
        backend: JobBackend | None = None,
        context: JobContext | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {queue_size}")
        if deadline_seconds is not None and not deadline_seconds > 0:
            raise ValueError(f"deadline_seconds must be positive, got {deadline_seconds}")
        self.workers = workers
        self.queue_size = queue_size
        self.retry_after = retry_after
        self.deadline_seconds = deadline_seconds
        self.backend: JobBackend = backend or PoolBackend(
            workers=workers, kind=kind, retry_after=retry_after, worker_nice=worker_nice
        )
        self.context = context
        self._capacity = workers + queue_size
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Return the number of jobs admitted and not yet finished."""
        return self._in_flight

    @property
    def capacity(self) -> int:
        """Return the number of jobs admitted at most (running plus queued)."""
        return self._capacity

    def start(self) -> None:
        """Prepare the backend (idempotent)."""
        self.backend.start()

    def shutdown(self) -> None:
        """Stop the backend; running jobs are cancelled where possible."""
        self.backend.shutdown()

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
        """Run ``fn(*args, **kwargs)`` on the backend, or raise :class:`BusyError` when the gate is full."""
        label = getattr(fn, "__name__", "job")
        if not self.try_acquire():
            logger.warning("gate_full", extra={"in_flight": self._in_flight, "capacity": self._capacity})
            raise BusyError(retry_after=self.retry_after)
        call: Callable[[], T] = (
            partial(self.context, fn, *args, **kwargs) if self.context is not None else partial(fn, *args, **kwargs)
        )
        try:
            return await self._with_deadline(self.backend.run(call, label=label), label)
        finally:
            self.release()

    async def _with_deadline(self, job: Any, label: str) -> T:
        if self.deadline_seconds is None:
            result: T = await job
            return result
        try:
            async with asyncio.timeout(self.deadline_seconds):
                result = await job
                return result
        except TimeoutError as error:
            logger.warning("job_deadline", extra={"job": label, "seconds": self.deadline_seconds})
            raise JobTimeoutError(f"Processing took longer than {self.deadline_seconds:g} s") from error
