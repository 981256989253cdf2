"""Run jobs on a Dask distributed cluster: the backend used when ``DASK_SCHEDULER_ADDRESS`` is set.

The engine connects as an asynchronous ``distributed.Client`` on its own event loop, lazily and
again after a lost connection, and submits the same picklable job functions the local pool runs
(each call wrapped with the engine's job context, so a worker opens storage keys with the engine's
storage settings). The scheduler retries a task whose worker died (``distributed.scheduler.
allowed-failures``); a task that keeps killing workers, or a scheduler that cannot be reached,
answers 503 with ``Retry-After``. Cancelling the await (deadline, client gone) cancels the task on
the cluster. ``distributed`` is imported only here, so neither the proxy nor an engine without a
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

    def __init__(self, address: str, *, connect_timeout: float = 10.0, retry_after: int = 5) -> None:
        self.name = "dask"
        self.address = address
        self.connect_timeout = connect_timeout
        self.retry_after = retry_after
        self._client: Any | None = None
        self._connecting: asyncio.Lock | None = None

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
