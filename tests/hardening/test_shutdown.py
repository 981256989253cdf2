"""Stopping the engine ends every process it started, even with a long job running."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psutil

from tests.support.live_server import LiveServer


def _alive(processes: list[psutil.Process]) -> list[int]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def test_sigterm_with_a_job_running_leaves_no_process_behind() -> None:
    env = {"ENGINE_WORKERS": "1", "ENGINE_EXECUTOR": "process"}
    server = LiveServer("tests.support.busy_app", env=env, args=["--timeout-graceful-shutdown", "2"]).start()
    assert server.process is not None
    try:
        httpx.post(f"{server.url}/burn", params={"seconds": 0.05}, timeout=60).raise_for_status()
        outcome: list[str] = []

        def long_job() -> None:
            try:
                httpx.post(f"{server.url}/burn", params={"seconds": 120}, timeout=180)
                outcome.append("answered")
            except httpx.HTTPError as error:  # the server went down under it, as it should
                outcome.append(type(error).__name__)

        waiter = threading.Thread(target=long_job, daemon=True)
        waiter.start()
        time.sleep(1.0)  # the 120 s job is running
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert len(children) >= 3  # forkserver, worker, resource tracker
        stopped = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=30)
        while _alive(children) and time.monotonic() - stopped < 30:
            time.sleep(0.1)
        assert _alive(children) == []
        assert time.monotonic() - stopped < 15  # not the 119 s the job had left
        waiter.join(timeout=30)
        assert outcome == ["RemoteProtocolError"]
    finally:
        server.stop()
