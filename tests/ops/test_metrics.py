"""``/metrics`` of both live services after a request of each kind: the series exist with sensible values."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from app.core.metrics import prune_dead
from tests.mast.conftest import OBS, OBS_FILES, poll
from tests.ops.conftest import engine_env, has, scrape, value
from tests.support.live_server import LiveServer
from tests.support.mast_emulator import MastEmulator
from tests.support.request_bodies import channel, request_body

PREVIEW = "/preview/0123456789abcdef01234567"
KEYS = [f"mast/obs/f{i}_i2d.fits" for i in range(3)]


def _composite(client: httpx.Client) -> httpx.Response:
    channels = [channel([key], hue=hue) for key, hue in zip(KEYS, (240.0, 120.0, 0.0), strict=True)]
    return client.post("/composite/generate-nchannel", json=request_body(channels, width=600, height=600))


def _burst_until_429(client: httpx.Client) -> tuple[int, int]:
    """Send bursts of composites at a gate of one slot until some are refused; return (200s, 429s)."""
    ok = busy = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            statuses = [r.status_code for r in pool.map(lambda _: _composite(client), range(8))]
            assert set(statuses) <= {200, 429}, statuses
            ok += statuses.count(200)
            busy += statuses.count(429)
            if busy:
                break
    return ok, busy


def test_engine_metrics(engine: LiveServer) -> None:
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        for _ in range(3):
            reply = client.get(PREVIEW, params={"file_path": KEYS[0], "width": 200, "height": 200})
            assert reply.status_code == 200
        assert client.get(PREVIEW, params={"file_path": "mast/none.fits"}).status_code == 404
        first, second = _composite(client), _composite(client)
        assert first.status_code == second.status_code == 200
        assert second.headers["X-Composite-Cache"] == "hit,hit,hit"
        ok, busy = _burst_until_429(client)
    assert busy >= 1, "a gate of one slot and no queue refuses part of a burst"

    samples = scrape(engine.url)
    # HTTP requests and latency by templated route, never by raw path
    assert value(samples, "http_requests_total", handler="/preview/{data_id}", method="GET", status="200") == 3
    assert value(samples, "http_requests_total", handler="/preview/{data_id}", status="404") == 1
    assert value(samples, "http_requests_total", handler="/composite/generate-nchannel", status="429") == busy
    assert value(samples, "http_requests_total", handler="/composite/generate-nchannel", status="200") == 2 + ok
    assert value(samples, "http_request_duration_seconds_count", handler="/preview/{data_id}") == 4
    assert value(samples, "http_request_duration_seconds_sum", handler="/preview/{data_id}") > 0
    assert not any("0123456789abcdef" in dict(labels).get("handler", "") for _, labels in samples)
    # the gate: 429s counted where they are decided, and slots all free again
    assert value(samples, "jwst_executor_rejected_total", reason="busy") == busy
    assert value(samples, "jwst_executor_slots_capacity") == 1
    assert value(samples, "jwst_executor_slots_in_use") == 0
    assert has(samples, "jwst_executor_jobs_running")
    assert value(samples, "jwst_executor_jobs_queued") == 0
    # job durations by kind: every preview that reached a worker, every composite admitted
    previews = value(samples, "jwst_job_duration_seconds_count", kind="render_preview")
    assert previews == 4  # three rendered, one that found no file
    assert value(samples, "jwst_job_duration_seconds_count", kind="render_preview", outcome="ok") == 3
    composites = [lab for (n, lab) in samples if n == "jwst_job_duration_seconds_count" and ("outcome", "ok") in lab]
    assert len({dict(lab)["kind"] for lab in composites}) >= 2
    assert value(samples, "jwst_job_duration_seconds_sum", kind="render_preview") > 0
    # the composite channel cache, counted inside the worker processes: 3 misses, then hits only
    assert value(samples, "jwst_composite_channel_cache_total", result="miss") == 3
    assert value(samples, "jwst_composite_channel_cache_total", result="hit") == 3 * (1 + ok)


def test_engine_slots_in_use_while_a_job_runs(engine: LiveServer) -> None:
    with httpx.Client(base_url=engine.url, timeout=120) as client, ThreadPoolExecutor(1) as pool:
        seen = 0.0
        for _ in range(5):
            body = request_body([channel([k], hue=h) for k, h in zip(KEYS, (240.0, 120.0, 0.0), strict=True)])
            body.update(width=1800, height=1800, output_format="png")
            future = pool.submit(client.post, "/composite/generate-nchannel", json=body)
            while not future.done():
                seen = max(seen, value(scrape(engine.url), "jwst_executor_slots_in_use"))
                if seen:
                    break
                time.sleep(0.01)
            assert future.result().status_code == 200
            if seen:
                break
    assert seen == 1
    assert value(scrape(engine.url), "jwst_executor_slots_in_use") == 0


def test_proxy_metrics(proxy: LiveServer, emulator: MastEmulator) -> None:
    sizes = sum(len(emulator.file_bytes(name)) for name in OBS_FILES)
    with httpx.Client(base_url=proxy.url, timeout=60) as client:
        emulator.faults.download_status_burst = 2  # two 503s: two retries
        emulator.faults.piece_delay = 0.05  # slow enough to see the job active
        job = client.post(
            "/mast/download/start-chunked",
            json={"obs_id": OBS, "product_type": "SCIENCE", "resume_job_id": None, "calib_level": None},
        ).json()["job_id"]
        active = 0.0
        deadline = time.monotonic() + 30
        while not active and time.monotonic() < deadline:
            active = value(scrape(proxy.url), "jwst_download_jobs_active", kind="chunked")
        assert active == 1  # whichever of the two workers answers, it sees the job the other may run
        emulator.faults.piece_delay = 0.0
        assert poll(client, job, lambda p: p["is_complete"], timeout=60)["stage"] == "complete"

        obs = "jw02733-o001_t001_miri_f1130w"
        s3_job = client.post(
            "/mast/download/start-s3", json={"obs_id": obs, "product_type": "SCIENCE", "calib_level": None}
        ).json()["job_id"]
        assert poll(client, s3_job, lambda p: p["is_complete"])["stage"] == "complete"
        s3_size = len(emulator.file_bytes(f"{obs}_i2d.fits"))

    samples = scrape(proxy.url)
    assert value(samples, "http_requests_total", handler="/mast/download/start-chunked", status="200") == 1
    progress = value(samples, "http_requests_total", handler="/mast/download/progress-chunked/{job_id}")
    assert progress >= 1
    assert value(samples, "http_request_duration_seconds_count", handler="/mast/download/start-s3") == 1
    assert value(samples, "jwst_download_retries_total", transport="http") == 2
    assert value(samples, "jwst_download_bytes_total", kind="chunked") == sizes
    assert value(samples, "jwst_download_bytes_total", kind="s3") == s3_size
    assert value(samples, "jwst_download_jobs_active") == 0


def test_configured_metrics_dir_is_cleaned_at_startup(tmp_path: Path) -> None:
    """A configured ``PROMETHEUS_MULTIPROC_DIR`` is created, and a restart starts from zero."""
    metrics_dir = tmp_path / "metrics" / "engine"
    env = engine_env(tmp_path / "data", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    (tmp_path / "data").mkdir()
    for run in range(2):
        with LiveServer("main", env=env) as server:
            for _ in range(3):
                assert httpx.get(f"{server.url}/").status_code == 200
            assert value(scrape(server.url), "http_requests_total", handler="/", status="200") == 3, f"run {run}"
        assert list(metrics_dir.glob("*.db"))  # the values of the stopped run stay until the next start


def test_prune_dead_keeps_live_processes(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    for name in (f"counter_{dead_pid}.db", f"gauge_livesum_{dead_pid}.db", f"counter_{os.getpid()}.db", "x.txt"):
        (tmp_path / name).write_bytes(b"")
    assert prune_dead(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"counter_{os.getpid()}.db", "x.txt"])
