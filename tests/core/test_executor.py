"""The job executor and its gate: bounded, refuses with 429, survives crashes, keeps /health fast."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.core.exceptions import BusyError
from app.core.executor import JobExecutor
from tests.support.busy_app import burn
from tests.support.live_server import LiveServer
from tests.support.probe import HealthProbe, p99


def test_gate_refuses_when_full() -> None:
    release = threading.Event()
    executor = JobExecutor(workers=1, queue_size=1, kind="thread", retry_after=7)

    async def scenario() -> list[object]:
        first = asyncio.create_task(executor.run(release.wait, 10))
        second = asyncio.create_task(executor.run(release.wait, 10))
        await asyncio.sleep(0.05)
        assert executor.in_flight == 2
        with pytest.raises(BusyError) as refused:
            await executor.run(release.wait, 10)
        assert refused.value.headers == {"Retry-After": "7"}
        release.set()
        return list(await asyncio.gather(first, second))

    try:
        assert asyncio.run(scenario()) == [True, True]
        assert executor.in_flight == 0
    finally:
        executor.shutdown()


def test_invalid_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="workers"):
        JobExecutor(workers=0, queue_size=1)
    with pytest.raises(ValueError, match="queue_size"):
        JobExecutor(workers=1, queue_size=-1)


def test_process_pool_runs_jobs_in_other_processes() -> None:
    import os

    executor = JobExecutor(workers=1, queue_size=0, kind="process")
    try:
        pid = asyncio.run(executor.run(burn, 0.01))
    finally:
        executor.shutdown()
    assert pid != os.getpid()


@pytest.fixture(scope="module")
def busy_server() -> LiveServer:
    env = {
        "ENGINE_WORKERS": "2",
        "ENGINE_QUEUE_SIZE": "1",
        "ENGINE_EXECUTOR": "process",
        "ENGINE_RETRY_AFTER_SECONDS": "3",
    }
    with LiveServer("tests.support.busy_app", env=env) as server:
        yield server


def test_health_stays_fast_and_overflow_gets_429(busy_server: LiveServer) -> None:
    url = busy_server.url
    httpx.post(f"{url}/burn", params={"seconds": 0.05}, timeout=30).raise_for_status()  # warm workers

    statuses: list[int] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(httpx.post, f"{url}/burn", params={"seconds": 2.5}, timeout=60) for _ in range(3)]
        time.sleep(0.4)  # the three jobs now fill both workers and the one queue slot
        overflow = httpx.post(f"{url}/burn", params={"seconds": 0.1}, timeout=30)
        latencies = HealthProbe(url, 1.5).latencies()
        statuses = [f.result().status_code for f in futures]

    assert statuses == [200, 200, 200]
    assert overflow.status_code == 429
    assert overflow.headers["retry-after"] == "3"
    # a blocked event loop shows as seconds; 100 ms leaves room for a busy 2-core CI machine
    assert p99(latencies) < 100, f"/health p99 {p99(latencies):.1f} ms under load"


def test_crashed_worker_gives_503_then_recovers(busy_server: LiveServer) -> None:
    reply = httpx.post(f"{busy_server.url}/crash", timeout=60)
    assert reply.status_code == 503
    assert "retry-after" in reply.headers
    assert "137" not in reply.text
    assert httpx.post(f"{busy_server.url}/burn", params={"seconds": 0.01}, timeout=60).status_code == 200
