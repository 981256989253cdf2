"""The job executor: one admission gate and one deadline in front of a pluggable backend.

Heavy engine work (numpy, astropy, reproject, Pillow) never runs on the event loop: services hand a
picklable job function to :class:`JobExecutor`, which

- admits at most ``workers + queue_size`` jobs; the next one gets :class:`BusyError` (HTTP 429 with
  ``Retry-After``) instead of piling up;
- gives every job a deadline (:class:`JobTimeoutError`, 504), after which its backend task is
  cancelled;
- runs the job on a :class:`JobBackend`: :class:`PoolBackend` (the embedded default: worker
  processes supervised one by one, or threads for tests and light work) or, when ``DASK_SCHEDULER_ADDRESS`` is
  set, :class:`app.core.dask_backend.DaskBackend` (a ``distributed.Client``; the same job functions
  run on the cluster's workers).

Every job's wall-clock time goes to ``jwst_job_duration_seconds`` (by entry point and outcome) and
every refusal to ``jwst_executor_rejected_total``; :attr:`JobExecutor.in_flight` and
:attr:`JobExecutor.calls_in_backend` are read by ``/metrics`` (:mod:`app.core.metrics`). Local
worker processes log through the API process's handler and format (:func:`_init_worker`).

An optional ``context`` wraps every job as ``context(fn, *args, **kwargs)`` in the process that runs
it; the engine uses it to give jobs their storage (:mod:`app.worker.context`), so a job carries
storage keys and opens them where it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, runtime_checkable

from app.core import metrics
from app.core.exceptions import BusyError, JobTimeoutError, WorkerCrashedError
from app.core.logging import worker_logging
from app.core.process_slots import SlotPool, WorkerDiedError

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


@runtime_checkable
class SharedGate(Protocol):
    """A backend whose capacity several engines share: it admits (or refuses) each job as well."""

    async def admit(self) -> bool:
        """Take a lease for one job; False when the shared capacity is used up."""
        ...

    async def leave(self) -> None:
        """Give the lease back."""
        ...


def _init_worker(nice: int, log_setup: Callable[[], object] | None = None) -> None:
    """Set a worker process up: the API process's logging, a lower CPU priority, the numeric stack.

    A positive ``nice`` lets the API process (event loop, ``/health``) win the CPU whenever heavy
    jobs saturate every core. ``log_setup`` gives the worker the same log handler and format as
    the API process, so its records and tracebacks join the same stream in the same format.
    """
    if log_setup is not None:
        log_setup()
    if nice > 0:
        with contextlib.suppress(OSError):
            os.nice(nice)
    import numpy  # noqa: F401


def ping() -> int:
    """Return the pid of the process that runs it: the trivial job of the readiness probe."""
    return os.getpid()


class PoolBackend:
    """A bounded pool of local worker processes (isolated memory, supervised one by one) or threads.

    Processes are a :class:`app.core.process_slots.SlotPool`: a worker that dies costs its own job
    only (503), and a cancelled job (deadline, client gone) has its process killed and replaced.
    Threads cannot be stopped: a cancelled thread job runs to its end.

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
        self._threads: ThreadPoolExecutor | None = None
        self._slots: SlotPool | None = None

    def start(self) -> None:
        """Create the pool (idempotent)."""
        if self.kind == "thread" and self._threads is None:
            self._threads = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="job")
        if self.kind == "process" and self._slots is None:
            self._slots = SlotPool(self.workers, _init_worker, (self.worker_nice, worker_logging()))

    def shutdown(self) -> None:
        """Stop the pool; queued jobs are cancelled."""
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
        if self._slots is not None:
            self._slots.shutdown()
            self._slots = None

    async def run(self, call: Callable[[], T], *, label: str) -> T:
        """Run ``call`` on the pool; a worker process that dies gives :class:`WorkerCrashedError` (503)."""
        self.start()
        if self._threads is not None:
            return await asyncio.get_running_loop().run_in_executor(self._threads, call)
        assert self._slots is not None
        try:
            return await self._slots.run(call)
        except WorkerDiedError as error:
            logger.error("worker_crashed", extra={"job": label})
            raise WorkerCrashedError(retry_after=self.retry_after) from error


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
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        """Return the number of jobs admitted and not yet finished."""
        return self._in_flight

    @property
    def calls_in_backend(self) -> int:
        """Return the number of job calls handed to the backend and not finished (running or queued there)."""
        return self._calls

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

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[JobSession]:
        """Hold one slot of the gate for several calls of one request (:class:`BusyError` when full).

        A backend with a gate of its own (a cluster shared by several engines) must admit the job too.
        """
        if not self.try_acquire():
            logger.warning("gate_full", extra={"in_flight": self._in_flight, "capacity": self._capacity})
            metrics.GATE_REJECTED.labels(reason="busy").inc()
            raise BusyError(retry_after=self.retry_after)
        shared = self.backend if isinstance(self.backend, SharedGate) else None
        try:
            if shared is not None and not await shared.admit():
                logger.warning("cluster_gate_full", extra={"backend": self.backend.name})
                metrics.GATE_REJECTED.labels(reason="cluster").inc()
                raise BusyError(retry_after=self.retry_after)
        except BaseException:
            self.release()
            raise
        try:
            yield JobSession(self)
        finally:
            self.release()
            if shared is not None:
                await asyncio.shield(shared.leave())

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the backend, or raise :class:`BusyError` when the gate is full."""
        async with self.admitted() as session:
            return await session.run(fn, *args, **kwargs)

    async def _backend_call(self, call: Callable[[], T], label: str) -> T:
        """Run one call on the backend, counted in :attr:`calls_in_backend` while it is there."""
        with self._lock:
            self._calls += 1
        try:
            return await self.backend.run(call, label=label)
        finally:
            with self._lock:
                self._calls -= 1

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[], T]:
        if self.context is not None:
            return partial(self.context, fn, *args, **kwargs)
        return partial(fn, *args, **kwargs)

    async def _with_deadline(self, job: Awaitable[T], label: str) -> T:
        """Await ``job`` under the deadline; its duration goes to ``jwst_job_duration_seconds``."""
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self._deadline(job, label)
            outcome = "ok"
            return result
        except JobTimeoutError:
            outcome = "timeout"
            raise
        finally:
            metrics.JOB_DURATION.labels(kind=label, outcome=outcome).observe(time.perf_counter() - started)

    async def _deadline(self, job: Awaitable[T], label: str) -> T:
        if self.deadline_seconds is None:
            return await job
        try:
            async with asyncio.timeout(self.deadline_seconds):
                return await job
        except TimeoutError as error:
            logger.warning("job_deadline", extra={"job": label, "seconds": self.deadline_seconds})
            raise JobTimeoutError(f"Processing took longer than {self.deadline_seconds:g} s") from error


class JobSession:
    """The calls of one admitted request: each runs on the backend under the executor's deadline.

    A request that fans out (a mosaic built by blocks) holds one slot of the gate for all its calls.
    """

    def __init__(self, executor: JobExecutor) -> None:
        self.executor = executor

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the backend."""
        label = getattr(fn, "__name__", "job")
        executor = self.executor
        return await executor._with_deadline(executor._backend_call(executor._call(fn, args, kwargs), label), label)

    async def map(
        self,
        fn: Callable[..., T],
        calls: Sequence[tuple[Any, ...]],
        on_done: Callable[[int], None] | None = None,
    ) -> list[T]:
        """Run ``fn(*args)`` for every ``args`` of ``calls`` at once; the results come back in order.

        ``on_done(count)`` is called each time one more call has finished (progress reporting).
        """
        label = getattr(fn, "__name__", "job")
        executor = self.executor
        tasks = [asyncio.ensure_future(executor._backend_call(executor._call(fn, args, {}), label)) for args in calls]
        if on_done is not None:
            finished = 0

            def count(task: asyncio.Future[T]) -> None:
                nonlocal finished
                if not task.cancelled() and task.exception() is None:
                    finished += 1
                    on_done(finished)

            for task in tasks:
                task.add_done_callback(count)
        try:
            results: list[T] = await executor._with_deadline(asyncio.gather(*tasks), label)
        except BaseException:
            for task in tasks:  # one failure (or the deadline) stops the others
                task.cancel()
            raise
        return results
