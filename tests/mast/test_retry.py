"""The one retry policy of the HTTP and S3 downloaders: exponential ceilings, full jitter."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import pytest

from app.mast.jobs.progress import JobTracker
from app.mast.jobs.state import JobState
from app.mast.jobs.store import StateStore
from app.mast.jobs.transfer import http, s3
from app.mast.jobs.transfer.common import DownloadError, backoff_delay, retry_with_backoff


def test_both_downloaders_use_the_shared_loop() -> None:
    assert http.retry_with_backoff is retry_with_backoff
    assert s3.retry_with_backoff is retry_with_backoff


def test_delays_are_spread_over_the_whole_window() -> None:
    for retry, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0)):
        delays = [backoff_delay(1.0, retry) for _ in range(400)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # full jitter: uniform on [0, ceiling] has mean ceiling/2 and spans most of the window
        assert 0.35 * ceiling < statistics.fmean(delays) < 0.65 * ceiling
        assert min(delays) < 0.1 * ceiling
        assert max(delays) > 0.9 * ceiling
        assert len(set(delays)) == len(delays)


def test_ceiling_is_capped() -> None:
    assert all(backoff_delay(1.0, 40, cap=5.0) <= 5.0 for _ in range(100))
    assert backoff_delay(0.0, 3) == 0.0


def test_loops_that_fail_together_do_not_retry_in_lockstep(tmp_path: Path) -> None:
    store = StateStore(tmp_path)

    async def one_loop() -> list[float]:
        tracker = JobTracker(JobState(job_id="j", obs_id="o", download_dir=str(tmp_path)), store)
        times: list[float] = []

        async def attempt() -> None:
            times.append(time.monotonic())
            raise ConnectionError("dropped")

        with pytest.raises(DownloadError, match="gave up after 2 retries"):
            await retry_with_backoff(
                attempt, lambda e: "dropped", tracker, retries=2, backoff_seconds=0.3, transport="http"
            )
        return times

    async def all_loops() -> list[list[float]]:
        return await asyncio.gather(*(one_loop() for _ in range(8)))

    runs = asyncio.run(all_loops())
    assert all(len(times) == 3 for times in runs)
    first_gaps = sorted(times[1] - times[0] for times in runs)
    # eight loops failed at the same instant; with full jitter their first retries are spread over
    # [0, 0.3] s instead of all landing together at 0.3 s
    assert first_gaps[-1] - first_gaps[0] > 0.03
    assert all(gap < 0.3 + 0.25 for gap in first_gaps)
