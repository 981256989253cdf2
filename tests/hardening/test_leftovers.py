"""Download jobs leave bounded leftovers: a burst of failing jobs on the live proxy.

MAST is unreachable for this proxy, so every job fails before any transfer starts (as most of a
fuzzing run's jobs do). Each must leave no lock, control or temporary file behind, the finished
area must keep only the newest ``MAST_MAX_FINISHED_JOBS`` states, and the newest jobs must still
answer their progress poll with their failure.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.hardening.conftest import GUARDED_MAX_FINISHED, SERVICE_TOKEN
from tests.support.live_server import LiveServer

AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
JOBS = 40


def _wait_ended(client: httpx.Client, job_id: str, timeout: float = 60.0) -> dict[str, object] | None:
    """Return the progress of a failed job, or ``None`` once it has been pruned from the finished area."""
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        reply = client.get(f"/mast/download/progress-chunked/{job_id}")
        if reply.status_code == 404:
            return None
        body = reply.json()
        if body.get("stage") == "failed":
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end in {timeout}s: {body}")


def test_failed_jobs_leave_no_locks_and_bounded_finished_states(
    guarded_proxy: LiveServer, hardening_root: Path
) -> None:
    state_dir = hardening_root / "mast-dl-guarded" / ".download_state"
    job_ids: list[str] = []
    with httpx.Client(base_url=guarded_proxy.url, headers=AUTH, timeout=30) as client:
        for index in range(JOBS):
            kind = ("start-chunked", "start-s3", "start")[index % 3]
            reply = client.post(f"/mast/download/{kind}", json={"obs_id": f"jw0{index:04d}-o001"})
            assert reply.status_code == 200, reply.text
            job_ids.append(reply.json()["job_id"])
        ended = [_wait_ended(client, job_id) for job_id in job_ids]
        # one more, after the burst: the newest finished job always answers its poll
        last = client.post("/mast/download/start-chunked", json={"obs_id": "jw09999-o001"}).json()["job_id"]
        body = _wait_ended(client, last)
        assert body is not None, "the newest job was pruned"
        assert body["error"] == "Could not get the product list: MAST is unreachable"
        assert any(body is None for body in ended)  # the oldest were pruned: their polls answer 404
        deadline = time.monotonic() + 30
        while list(state_dir.glob("*.lock")) and time.monotonic() < deadline:
            time.sleep(0.1)  # the owner drops its lock file right after writing the final state
        assert list(state_dir.glob("*.lock")) == []
        assert list(state_dir.glob("*.control")) == []
        assert list(state_dir.glob("*.tmp")) == []
        assert list(state_dir.glob("*.json")) == []  # nothing resumable: every job ended before a file
        finished = sorted(p.stem for p in (state_dir / "finished").glob("*.json"))
        assert len(finished) <= GUARDED_MAX_FINISHED
        assert last in finished
