"""The S3 downloader: segments that resume, and connections added only where they pay off.

Against the real moto server (directly, and behind a relay that caps each connection's rate the
way S3 over the internet does), plus a fake bucket whose links are paced exactly, to check the
growth policy: per-connection limits → connections keep doubling; one shared limit → no more
than the first doubling.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aioboto3
import httpx
import pytest

from app.mast.jobs.progress import JobInterruptedError, JobTracker
from app.mast.jobs.state import FileState, JobState, Segment
from app.mast.jobs.store import StateStore
from app.mast.jobs.transfer.s3 import S3Options, download_object, download_objects, split_segment
from tests.mast.conftest import OBS, OBS_FILES, PUBLIC_BUCKET, poll, proxy_env
from tests.support.live_server import LiveServer
from tests.support.mast_emulator import MastEmulator
from tests.support.s3_server import S3Server
from tests.support.slow_link import start_slow_link

KEY = "jwst/public/01234/big/jw01234_big_i2d.fits"


def _job(tmp_path: Path, size: int, key: str = KEY, name: str = "big.fits") -> tuple[FileState, JobState, StateStore]:
    file = FileState(filename=name, local_path=str(tmp_path / "obs" / name), total_bytes=size, s3_key=key)
    state = JobState(job_id="s3job", obs_id="obs", download_dir=str(tmp_path / "obs"), files=[file], kind="s3")
    state.recount()
    return file, state, StateStore(tmp_path)


def _bucket_object(emulator: MastEmulator, name: str) -> tuple[str, bytes, str]:
    """Return a product the emulator also put in the public bucket: its name, bytes and key."""
    key = emulator.cloud_paths[f"mast:JWST/product/{name}"]
    assert key is not None
    return name, emulator.file_bytes(name), key.lstrip("/")


def _assert_tiles(segments: list[Segment], size: int) -> None:
    position = 0
    for segment in sorted(segments, key=lambda s: s.start):
        assert segment.start == position
        assert segment.end > segment.start
        position = segment.end
    assert position == size


def test_split_segment_keeps_what_is_read_and_aligns() -> None:
    segment = Segment(start=0, end=10 * 1024 * 1024, done=1000)
    upper = split_segment(segment, cursor=300_000, min_bytes=1024 * 1024)
    assert upper is not None
    assert upper.start == segment.end
    assert upper.end == 10 * 1024 * 1024
    assert upper.start % (64 * 1024) == 0
    assert upper.start > 300_000 + 1024 * 1024
    small = Segment(start=0, end=3 * 1024 * 1024)
    assert split_segment(small, cursor=2 * 1024 * 1024, min_bytes=1024 * 1024) is None
    assert small.end == 3 * 1024 * 1024  # untouched when too small to cut


def test_s3_segments_resume_after_interrupt(tmp_path: Path, s3_server: S3Server, public_bucket: str) -> None:
    content = os.urandom(12 * 1024 * 1024)
    s3_server.client().put_object(Bucket=public_bucket, Key=KEY, Body=content, ACL="public-read")
    opts = S3Options(
        bucket=PUBLIC_BUCKET,
        endpoint_url=s3_server.endpoint,
        part_bytes=64 * 1024,
        part_concurrency=3,
        split_after_seconds=0,
    )
    file, state, store = _job(tmp_path, len(content))

    class StopMidway(JobTracker):
        def check_control(self) -> None:
            started = [s for s in file.segments if s.done]
            if len(started) >= 2 and file.segments_bytes() >= len(content) // 4:
                raise JobInterruptedError("pause")

    with pytest.raises(JobInterruptedError):
        asyncio.run(download_objects(aioboto3.Session(), opts, [file], StopMidway(state, store)))
    # Split up front: several segments on disk, the object not complete.
    _assert_tiles(file.segments, len(content))
    assert file.downloaded_bytes == file.segments_bytes() < len(content)
    partial = Path(file.local_path + ".part")
    on_disk = partial.read_bytes()
    assert len(on_disk) == len(content)
    for segment in file.segments:  # each segment's recorded prefix holds the right bytes
        assert (
            on_disk[segment.start : segment.start + segment.done]
            == content[segment.start : segment.start + segment.done]
        )
    # Resume after a round trip through the state file, as a restarted worker would.
    store.save(state)
    reloaded = store.refresh_from_disk(store.load("s3job"))  # type: ignore[arg-type]
    assert reloaded.downloaded_bytes == file.segments_bytes()
    assert [s.model_dump() for s in reloaded.files[0].segments] == [s.model_dump() for s in file.segments]
    errors = asyncio.run(download_objects(aioboto3.Session(), opts, reloaded.files, JobTracker(reloaded, store)))
    assert errors == []
    assert reloaded.files[0].status == "complete"
    assert reloaded.files[0].segments == []
    assert Path(file.local_path).read_bytes() == content
    assert not partial.exists()


def test_damaged_segment_record_restarts_the_object(
    tmp_path: Path, s3_server: S3Server, public_bucket: str, emulator: MastEmulator
) -> None:
    name, content, key = _bucket_object(emulator, "jw02739001001_02101_00002_nrca1_cal.fits")
    file, state, store = _job(tmp_path, len(content), key, name)
    part = Path(file.local_path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * len(content))
    # A gap and an overlap: the record cannot be trusted, so nothing of it is kept.
    file.segments = [Segment(start=0, end=100, done=100), Segment(start=50, end=len(content), done=10)]
    opts = S3Options(bucket=PUBLIC_BUCKET, endpoint_url=s3_server.endpoint)
    assert asyncio.run(download_objects(aioboto3.Session(), opts, [file], JobTracker(state, store))) == []
    assert Path(file.local_path).read_bytes() == content


def test_connections_added_on_a_link_that_limits_each_connection(
    tmp_path: Path, s3_server: S3Server, public_bucket: str
) -> None:
    content = os.urandom(12 * 1024 * 1024)
    s3_server.client().put_object(Bucket=public_bucket, Key=KEY, Body=content, ACL="public-read")
    link = start_slow_link(f"127.0.0.1:{s3_server.port}", rate=2e6)  # 2 MB/s per connection: 6 s alone
    try:
        opts = S3Options(
            bucket=PUBLIC_BUCKET,
            endpoint_url=link.endpoint,
            part_bytes=128 * 1024,
            part_concurrency=4,
            split_after_seconds=0.5,
        )
        file, state, store = _job(tmp_path, len(content))
        seen: list[int] = []

        class Watch(JobTracker):
            def check_control(self) -> None:
                seen.append(len(file.segments))

        errors = asyncio.run(download_objects(aioboto3.Session(), opts, [file], Watch(state, store)))
    finally:
        link.stop()
    assert errors == []
    assert Path(file.local_path).read_bytes() == content
    assert seen[0] == 1  # began as one stream, ...
    assert max(seen) >= 4  # ... then split as connections were added


@pytest.mark.parametrize("kind", ["drop", "stall"])
def test_broken_connections_resume_where_they_stopped(
    tmp_path: Path, s3_server: S3Server, public_bucket: str, kind: str
) -> None:
    content = os.urandom(3 * 1024 * 1024)
    s3_server.client().put_object(Bucket=public_bucket, Key=KEY, Body=content, ACL="public-read")
    link = start_slow_link(f"127.0.0.1:{s3_server.port}", rate=1e12)
    # The first two connections break after 500 000 bytes: closed, or silent for longer than the read timeout.
    link.faults.after_bytes, link.faults.kind, link.faults.stall_seconds = 500_000, kind, 5.0
    link.faults.connections = 2
    opts = S3Options(  # one connection, so that every byte sent back is a byte asked for
        bucket=PUBLIC_BUCKET,
        endpoint_url=link.endpoint,
        part_concurrency=1,
        backoff_seconds=0.01,
        read_timeout=1.0,
    )
    file, state, store = _job(tmp_path, len(content))
    try:
        errors = asyncio.run(download_objects(aioboto3.Session(), opts, [file], JobTracker(state, store)))
    finally:
        link.stop()
    assert errors == []
    assert Path(file.local_path).read_bytes() == content
    starts = [r.range_start for r in link.seen]
    assert link.faults.fired >= 1, starts
    assert len(starts) == 1 + link.faults.fired, starts
    # Each retry asked from where the bytes on disk stopped (at most 500 000 further: what the
    # client had buffered but not written when the connection broke is asked again) ...
    assert starts[0] is None, starts
    assert all(s is not None and s > 0 for s in starts[1:]), starts
    assert starts[1:] == sorted(starts[1:])  # type: ignore[type-var]
    assert starts[-1] <= 500_000 * link.faults.fired  # type: ignore[operator]
    # ... so what came back is the object once, plus at most that buffered part again.
    assert len(content) <= link.faults.bytes_down < len(content) + 500_000 * link.faults.fired


def test_kill_9_mid_s3_job_then_resume_fetches_only_missing_bytes(
    emulator: MastEmulator, s3_server: S3Server, public_bucket: str, tmp_path: Path
) -> None:
    """A live proxy killed mid-S3-job; a new one resumes every segment where the state file says."""
    slow = start_slow_link(f"127.0.0.1:{s3_server.port}", rate=150e3)
    fast = start_slow_link(f"127.0.0.1:{s3_server.port}", rate=1e12)
    env = {**proxy_env(emulator, s3_server, public_bucket, tmp_path), "MAST_S3_ENDPOINT_URL": slow.endpoint}
    start = {"obs_id": OBS, "product_type": "SCIENCE", "calib_level": None}
    try:
        server = LiveServer("main_mast", workers=1, env=env).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                job_id = http.post("/mast/download/start-s3", json=start).json()["job_id"]
                poll(http, job_id, lambda p: p["downloaded_bytes"] > 1_000_000, interval=0.1)
                time.sleep(0.5)  # a state write or two lands
            server.kill()
        finally:
            server.stop()
        state = json.loads((tmp_path / "mast" / ".download_state" / f"{job_id}.json").read_text())
        prefixes = {  # the files unfinished at the kill, and what their segments had on disk
            Path(f["local_path"]).name: [(s["start"], s["start"] + s["done"]) for s in f["segments"] if s["done"]]
            for f in state["files"]
            if not Path(f["local_path"]).exists()
        }
        assert sum(len(p) >= 2 for p in prefixes.values()) >= 1  # ranged segments were on disk when it died
        env["MAST_S3_ENDPOINT_URL"] = fast.endpoint
        with LiveServer("main_mast", workers=1, env=env) as again, httpx.Client(base_url=again.url) as http:
            orphan = http.get(f"/mast/download/progress-chunked/{job_id}").json()
            assert orphan["stage"] == "paused"
            assert orphan["is_resumable"] is True
            assert http.post(f"/mast/download/resume/{job_id}", json={}).status_code == 200
            assert poll(http, job_id, lambda p: p["is_complete"])["stage"] == "complete"
    finally:
        slow.stop()
        fast.stop()
    obs_dir = tmp_path / "mast" / OBS
    for name in OBS_FILES:
        assert (obs_dir / name).read_bytes() == emulator.file_bytes(name)
    # No byte recorded as on disk was asked for again (finished files not at all).
    finished = {Path(f["local_path"]).name for f in state["files"]} - set(prefixes)
    assert not [r for r in fast.seen if any(r.path.endswith("/" + n) for n in finished)]
    for name, done in prefixes.items():
        asked = [r.range_start for r in fast.seen if r.path.endswith("/" + name)]
        assert asked, name
        if done:
            assert None not in asked, name  # no whole-object GET for a file with bytes on disk
            assert not [a for a in asked if any(lo <= a < hi for lo, hi in done)], (name, asked, done)


class _PacedBody:
    def __init__(self, data: bytes, clock: _Clock, link: _Link) -> None:
        self.data, self.clock, self.link = data, clock, link

    async def read(self, amount: int) -> bytes:
        piece, self.data = self.data[:16384], self.data[16384:]
        if piece:
            await self.clock.spend(len(piece))
        return piece

    def close(self) -> None:
        self.link.open -= 1


class _Clock:
    """Paces bytes at ``rate`` per second; shared by connections (one link) or one per connection.

    Like a socket buffer, it lets a reader that was busy for a moment catch up (``BUFFER_SECONDS``).
    """

    BUFFER_SECONDS = 0.1

    def __init__(self, rate: float) -> None:
        self.rate, self.due = rate, 0.0

    async def spend(self, count: int) -> None:
        now = time.monotonic()
        self.due = max(self.due, now - self.BUFFER_SECONDS) + count / self.rate
        await asyncio.sleep(max(0.0, self.due - now))


class _Link:
    """A fake bucket holding one object, served at a per-connection or a shared rate."""

    def __init__(self, data: bytes, rate: float, *, shared: bool) -> None:
        self.data, self.rate, self.shared = data, rate, shared
        self.shared_clock = _Clock(rate)
        self.open = 0
        self.peak = 0

    async def head_object(self, **_: Any) -> dict[str, Any]:
        return {"ContentLength": len(self.data)}

    async def get_object(self, Range: str | None = None, **_: Any) -> dict[str, Any]:  # noqa: N803
        start, end = 0, len(self.data) - 1
        if Range:
            first, last = Range.removeprefix("bytes=").split("-")
            start, end = int(first), int(last)
        self.open += 1
        self.peak = max(self.peak, self.open)
        clock = self.shared_clock if self.shared else _Clock(self.rate)
        return {"ContentLength": end - start + 1, "Body": _PacedBody(self.data[start : end + 1], clock, self)}


@pytest.mark.parametrize("shared", [False, True])
def test_growth_stops_when_connections_stop_paying_off(tmp_path: Path, shared: bool) -> None:
    content = os.urandom(8 * 1024 * 1024)
    link = _Link(content, rate=2e6, shared=shared)  # 4 s on one connection
    file, state, store = _job(tmp_path, len(content))
    opts = S3Options(bucket="b", part_bytes=64 * 1024, part_concurrency=8, split_after_seconds=0.3)

    async def run() -> None:
        await download_object(link, opts, file, JobTracker(state, store), asyncio.Semaphore(8))

    asyncio.run(run())
    assert Path(file.local_path).read_bytes() == content
    if shared:  # one limit for all: the second connection brought nothing, so no third one
        assert link.peak == 2
    else:  # a limit per connection: every doubling paid off
        assert link.peak >= 4
