"""Worker processes supervised one by one, over real HTTP: a dead worker costs its own job only,
a dead idle worker costs nothing, and a client that leaves frees its worker at once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest

from app.core.executor import JobExecutor
from tests.support.busy_app import burn
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    env = {"ENGINE_WORKERS": "2", "ENGINE_QUEUE_SIZE": "4", "ENGINE_EXECUTOR": "process"}
    with LiveServer("tests.support.busy_app", env=env) as live:
        yield live


def workers_of(server: LiveServer) -> list[psutil.Process]:
    """The server's job worker processes (children of its forkserver)."""
    assert server.process is not None
    children = psutil.Process(server.process.pid).children(recursive=True)
    return [p for p in children if p.ppid() != server.process.pid]


def busy_workers(server: LiveServer) -> list[psutil.Process]:
    """Workers that used CPU in the last 0.5 s."""
    workers = workers_of(server)
    before = {p.pid: sum(p.cpu_times()[:2]) for p in workers}
    time.sleep(0.5)
    return [p for p in workers if sum(p.cpu_times()[:2]) - before[p.pid] > 0.05]


def warm(server: LiveServer) -> None:
    with ThreadPoolExecutor(2) as pool:
        replies = list(
            pool.map(lambda _: httpx.post(f"{server.url}/burn", params={"seconds": 0.3}, timeout=60), range(2))
        )
    assert [r.status_code for r in replies] == [200, 200]


def test_a_killed_worker_fails_only_the_job_it_ran(server: LiveServer) -> None:
    warm(server)
    with ThreadPoolExecutor(6) as pool:
        futures = [
            pool.submit(httpx.post, f"{server.url}/burn", params={"seconds": 2.0}, timeout=120) for _ in range(6)
        ]
        time.sleep(0.5)  # two running, four queued
        running = busy_workers(server)
        assert len(running) == 2
        os.kill(running[0].pid, signal.SIGKILL)
        statuses = sorted(f.result().status_code for f in futures)
    assert statuses == [200, 200, 200, 200, 200, 503]


def test_a_worker_killed_while_idle_costs_no_request(server: LiveServer) -> None:
    warm(server)
    for worker in workers_of(server):
        worker.kill()
    time.sleep(0.3)
    for _ in range(4):
        assert httpx.post(f"{server.url}/burn", params={"seconds": 0.01}, timeout=60).status_code == 200


def test_a_client_that_leaves_frees_its_worker(server: LiveServer) -> None:
    warm(server)
    for _ in range(2):  # both workers on 60 s jobs whose clients give up after 1 s
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/burn", params={"seconds": 60}, timeout=1.0)
    started = time.monotonic()
    reply = httpx.post(f"{server.url}/burn", params={"seconds": 0.01}, timeout=60)
    assert reply.status_code == 200
    assert time.monotonic() - started < 20  # not the 59 s the abandoned jobs had left
    assert "path=/burn status=499" in server.logs()


def test_a_cancelled_job_kills_its_process_and_the_next_job_runs_at_once() -> None:
    executor = JobExecutor(workers=1, queue_size=0, kind="process")

    async def scenario() -> tuple[int, int, float]:
        first = await executor.run(burn, 0.01)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(executor.run(burn, 60), 1.0)
        started = time.monotonic()
        second = await executor.run(burn, 0.01)
        return first, second, time.monotonic() - started

    try:
        first, second, waited = asyncio.run(scenario())
    finally:
        executor.shutdown()
    assert second != first
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
    assert waited < 20
