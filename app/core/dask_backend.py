"""Run jobs on a Dask distributed cluster: the backend used when ``DASK_SCHEDULER_ADDRESS`` is set.

The engine connects as an asynchronous ``distributed.Client`` on its own event loop, lazily and
again after a lost connection, and submits the same picklable job functions the local pool runs
(each call wrapped with the engine's job context, so a worker opens storage keys with the engine's
storage settings). The scheduler retries a task whose worker died (``distributed.scheduler.
allowed-failures``); a task that keeps killing workers, or a scheduler that cannot be reached,
answers 503 with ``Retry-After``. Cancelling the await (deadline, client gone) cancels the task on
the cluster. With ``max_jobs``, admission is cluster-wide: every engine takes a lease of one
``distributed.Semaphore`` on the scheduler per job, so the 429 counts the jobs of all replicas.
``distributed`` is imported only here, so neither the proxy nor an engine without a
cluster loads it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from app.core.exceptions import ClusterUnavailableError, WorkerCrashedError

logger = logging.getLogger("app.executor.dask")

T = TypeVar("T")

#: Name of the semaphore that counts the jobs in flight on the cluster, whichever engine sent them
#: (with the size in it: engines configured with another ``DASK_MAX_JOBS`` get a gate of their own
#: instead of failing on the scheduler's "inconsistent max leases").
GATE_NAME = "jwst-engine-jobs-{max_jobs}"


class DaskBackend:
    """Jobs as tasks of a Dask distributed scheduler.

    Parameters
    ----------
    address
        Scheduler address, e.g. ``tcp://127.0.0.1:8786``.
    connect_timeout
        Seconds to wait for the scheduler before answering 503.
    retry_after
        Seconds suggested to clients when the cluster is unavailable or a job killed its workers.
    """

    def __init__(
        self, address: str, *, connect_timeout: float = 10.0, retry_after: int = 5, max_jobs: int | None = None
    ) -> None:
        self.name = "dask"
        self.address = address
        self.connect_timeout = connect_timeout
        self.retry_after = retry_after
        self.max_jobs = max_jobs
        self._client: Any | None = None
        self._connecting: asyncio.Lock | None = None
        self._gate: Any | None = None  # the cluster-wide distributed.Semaphore, per client

    def start(self) -> None:
        """Nothing to do before the first job: the client connects on first use."""

    def shutdown(self) -> None:
        """Nothing to stop synchronously: :meth:`aclose` closes the client from the event loop."""

    async def aclose(self) -> None:
        """Close the client's connections (call from the event loop at shutdown)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _connected(self) -> Any:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._client is not None and self._client.status == "running":
                return self._client
            from distributed import Client

            try:
                client = await Client(  # type: ignore[no-untyped-call]
                    self.address,
                    asynchronous=True,
                    timeout=self.connect_timeout,
                    set_as_default=False,
                    name=f"jwst-engine-{uuid.uuid4().hex[:8]}",
                )
            except (OSError, TimeoutError) as error:
                logger.error("cluster_unreachable", extra={"address": self.address, "error": type(error).__name__})
                raise ClusterUnavailableError(retry_after=self.retry_after) from error
            self._client = client
            return client

    async def admit(self) -> bool:
        """Take one of the cluster's ``max_jobs`` leases, shared by every engine on the scheduler (no wait).

        A lease whose engine died is given back by the scheduler after its lease timeout.
        """
        if self.max_jobs is None:
            return True
        client = await self._connected()
        if self._gate is None or self._gate.scheduler is not client.scheduler:
            from distributed import Semaphore

            self._gate = Semaphore(  # type: ignore[no-untyped-call]
                self.max_jobs,
                GATE_NAME.format(max_jobs=self.max_jobs),
                scheduler_rpc=client.scheduler,
                loop=client.loop,
            )
        try:
            return bool(await self._gate.acquire(timeout=0))
        except (OSError, TimeoutError) as error:
            logger.error("cluster_gate_unreachable", extra={"error": type(error).__name__})
            self._client = None
            raise ClusterUnavailableError(retry_after=self.retry_after) from error

    async def leave(self) -> None:
        """Give back a lease taken by :meth:`admit`."""
        if self.max_jobs is None or self._gate is None:
            return
        try:
            await self._gate.release()
        except Exception as error:  # the scheduler frees a lost lease after its timeout anyway
            logger.warning("cluster_gate_release_failed", extra={"error": type(error).__name__})

    async def run(self, call: Callable[[], T], *, label: str) -> T:
        """Submit ``call`` to the cluster and await its result."""
        from distributed import KilledWorker
        from distributed.comm.core import CommClosedError

        client = await self._connected()
        future = client.submit(call, pure=False, key=f"{label}-{uuid.uuid4().hex}")
        try:
            result: T = await future
            return result
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(client, future))
            raise
        except KilledWorker as error:
            logger.error("cluster_task_killed_workers", extra={"job": label})
            raise WorkerCrashedError(retry_after=self.retry_after) from error
        except (CommClosedError, OSError) as error:
            logger.error("cluster_connection_lost", extra={"job": label, "error": type(error).__name__})
            self._client = None
            raise ClusterUnavailableError(retry_after=self.retry_after) from error

    async def _cancel(self, client: Any, future: Any) -> None:
        try:
            await client.cancel([future], force=True)
        except Exception as error:  # best effort: the scheduler may be gone already
            logger.info("cluster_cancel_failed", extra={"error": type(error).__name__})
