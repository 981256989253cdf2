"""A tiny app built with the real factory and executor, whose one route burns CPU in a worker.

Used to prove that ``/health`` stays fast while every worker process is busy, over real HTTP, and
that a job's log records and an unexpected error in a job reach the service's log format.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from app.api.deps import ExecutorDep
from app.core.app_factory import build_app
from app.core.executor import JobExecutor
from app.core.settings import get_settings


def burn(seconds: float) -> int:
    """Spin the CPU for ``seconds`` in the worker; return the worker's pid."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += sum(i * i for i in range(1000))
    return os.getpid()


def fail() -> None:
    """Log from the worker, then fail with an error no handler knows (a bug in a job)."""
    logging.getLogger("tests.busy").warning("job_about_to_fail", extra={"worker_pid": os.getpid()})
    raise RuntimeError("a bug in a job")


def crash() -> None:
    """Kill the worker process abruptly, as the OOM killer would."""
    os._exit(137)


router = APIRouter()


@router.post("/burn")
async def burn_route(executor: ExecutorDep, seconds: float = 1.0) -> dict[str, int]:
    return {"pid": await executor.run(burn, seconds)}


@router.post("/fail")
async def fail_route(executor: ExecutorDep) -> dict[str, bool]:
    await executor.run(fail)
    return {"failed": False}


@router.post("/crash")
async def crash_route(executor: ExecutorDep) -> dict[str, bool]:
    await executor.run(crash)
    return {"crashed": False}


settings = get_settings()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    executor = JobExecutor(
        workers=settings.engine_workers,
        queue_size=settings.engine_queue_size,
        kind=settings.engine_executor,
        retry_after=settings.engine_retry_after_seconds,
        worker_nice=settings.engine_worker_nice,
    )
    executor.start()
    app.state.executor = executor
    yield
    executor.shutdown()


app = build_app(
    settings=settings,
    title="busy",
    description="test app",
    root_message="busy",
    service_name="busy",
    routers=[router],
    lifespan=lifespan,
    openapi_tags=[],
)
