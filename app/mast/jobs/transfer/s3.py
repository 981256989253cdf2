"""Parallel ranged downloads from the public MAST bucket with aioboto3 (``start-s3``).

Requests are anonymous (unsigned) and go to ``MAST_S3_ENDPOINT_URL`` (AWS when unset). Keys
come from MAST's cloud path lookup, never from string building.

An object starts as one segment fetched by one connection. Every ``TICK_SECONDS`` the transfer
counts the bytes that came in, and judges its throughput over ``MEASURE_SECONDS`` of ticks in
which every connection was streaming (one tick alone is too coarse: a link sends in bursts).
While the connections are few, the bytes left would take longer than ``split_after_seconds`` at
the per-connection rate and the previous addition paid off (at least ``GAIN`` more throughput),
it doubles its connections, each taking the upper half of the largest unfinished segment (work
stealing; a connection that finishes its segment steals the same way). So a link that limits
each connection (S3 over the internet) gets up to ``part_concurrency`` parallel ranged GETs,
while a fast local endpoint keeps the single stream that serves it best.
``split_after_seconds = 0`` splits every object into ``part_concurrency`` segments at once.

Bytes are written at their offsets into a pre-sized ``.part`` file; the job state records, per
segment, how many bytes from its start are on disk, so a retry, a pause or a killed process
resumes every segment where it stopped. The ``.part`` becomes the final file once every
segment is complete and the size matches the product list and the bucket's ``ContentLength``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from botocore import UNSIGNED
from botocore.exceptions import BotoCoreError, ClientError

from app.mast.jobs.progress import JobTracker
from app.mast.jobs.state import FileState, FileStatus, Segment
from app.mast.jobs.transfer.common import (
    DownloadError,
    cancel_all,
    disk_error,
    download_each,
    finalize_file,
    part_path,
    retry_with_backoff,
)

logger = logging.getLogger("app.mast.s3")

S3_UNAVAILABLE = "S3_UNAVAILABLE:"
READ_BYTES = 1024 * 1024
TICK_SECONDS = 0.2
MEASURE_SECONDS = 0.6
GAIN = 1.2
ALIGN = 64 * 1024


@dataclass(frozen=True)
class S3Options:
    """Where and how to read the public bucket."""

    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    part_bytes: int = 8 * 1024 * 1024
    part_concurrency: int = 8
    file_concurrency: int = 3
    split_after_seconds: float = 0.5
    retries: int = 3
    backoff_seconds: float = 1.0
    connect_timeout: float = 30.0
    read_timeout: float = 300.0


class S3UnavailableError(DownloadError):
    """A product has no copy in the bucket: the whole job fails, so that the caller can fall back to HTTP.

    Parameters
    ----------
    detail
        Which product, and why.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(f"{S3_UNAVAILABLE} {detail}", fails_job=True)


def client_config(opts: S3Options) -> AioConfig:
    """Return anonymous, path-style client settings sized for the part concurrency.

    A read that stalls past ``read_timeout`` fails the request, which is then retried from the
    last byte written (botocore's own retries are off: ours resume).
    """
    return AioConfig(
        signature_version=UNSIGNED,
        connect_timeout=opts.connect_timeout,
        read_timeout=opts.read_timeout,
        max_pool_connections=max(10, opts.part_concurrency * opts.file_concurrency),
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},
    )


def split_segment(segment: Segment, cursor: int, min_bytes: int) -> Segment | None:
    """Cut the bytes after ``cursor`` of ``segment`` in two and return the upper half.

    ``cursor`` is where the segment's connection has read to (written or in flight); the cut is
    aligned and leaves at least ``min_bytes`` on each side, else nothing is cut.
    """
    rest = segment.end - cursor
    if rest < 2 * min_bytes:
        return None
    cut = cursor + rest // 2
    cut = min(max(cut - cut % ALIGN, cursor + min_bytes), segment.end - min_bytes)
    upper = Segment(start=cut, end=segment.end)
    segment.end = cut
    return upper


def _part_size(path: Path) -> int | None:
    """Return the size of a ``.part`` file, or ``None`` when there is none."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _prepare_part_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        if handle.tell() != size:
            handle.truncate(size)


def _pwrite(fd: int, data: bytes, offset: int) -> int:
    """Write all of ``data`` at ``offset``; return its length."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
    return len(data)


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _retry_reason(file: FileState, error: Exception) -> str | None:
    """Return why a failed segment fetch is worth another, ``None`` to let the error through.

    A key missing from the bucket, or not readable there, raises :class:`S3UnavailableError`.
    """
    if isinstance(error, ClientError):
        code = _error_code(error)
        if code in {"NoSuchKey", "404", "NoSuchBucket", "AccessDenied", "403"}:
            raise S3UnavailableError(f"{file.filename} is not readable in the bucket ({code})") from error
        return f"{file.filename}: S3 error {code}"
    if isinstance(error, BotoCoreError | aiohttp.ClientError | OSError | DownloadError):  # aiohttp: a cut body
        return f"{file.filename}: S3 transfer failed ({type(error).__name__})"
    return None


class _Transfer:
    """One object's segments, the connections working on them and the splitting policy."""

    def __init__(
        self,
        s3: Any,
        opts: S3Options,
        file: FileState,
        fd: int,
        size: int,
        tracker: JobTracker,
        slots: asyncio.Semaphore,
    ) -> None:
        self.s3, self.opts, self.file, self.fd, self.size = s3, opts, file, fd, size
        self.tracker, self.slots = tracker, slots
        self.cursors: dict[int, int] = {}  # segment index -> offset read to (written or in flight)
        self.tasks: list[asyncio.Task[None]] = []
        self.changed = asyncio.Event()
        self.received = 0
        self.awaiting_first_bytes = 0  # requests sent that have not delivered yet
        self.last_first_bytes_at = 0.0
        self.per_connection_rate = 0.0

    # --- choosing work ------------------------------------------------------------------------------

    def _queued(self) -> int | None:
        for index, segment in enumerate(self.file.segments):
            if segment.remaining > 0 and index not in self.cursors:
                return index
        return None

    def _worth_splitting(self, rest: int) -> bool:
        if self.opts.split_after_seconds <= 0:
            return True
        rate = self.per_connection_rate
        return rate > 0 and rest / rate > self.opts.split_after_seconds

    def _steal(self) -> int | None:
        if not self.cursors:
            return None
        index, cursor = max(self.cursors.items(), key=lambda item: self.file.segments[item[0]].end - item[1])
        segment = self.file.segments[index]
        if not self._worth_splitting(segment.end - cursor):
            return None
        upper = split_segment(segment, cursor, self.opts.part_bytes)
        if upper is None:
            return None
        self.file.segments.append(upper)
        return len(self.file.segments) - 1

    def _next(self) -> int | None:
        index = self._queued()
        return index if index is not None else self._steal()

    # --- connections --------------------------------------------------------------------------------

    def spawn(self) -> None:
        """Add one connection, which takes queued segments or splits the largest one in flight."""
        task = asyncio.create_task(self._worker())
        self.tasks.append(task)
        task.add_done_callback(lambda _: self.changed.set())

    def _live(self) -> int:
        return sum(1 for task in self.tasks if not task.done())

    async def _worker(self) -> None:
        async with self.slots:
            index = self._next()
            while index is not None:
                self.cursors[index] = self.file.segments[index].start + self.file.segments[index].done
                try:
                    await self._fetch(index)
                finally:
                    del self.cursors[index]
                index = self._next()

    async def _fetch(self, index: int) -> None:
        """Fetch one segment from its recorded offset to its (possibly moving) end, with retries."""
        await retry_with_backoff(
            lambda: self._stream(index),
            lambda error: _retry_reason(self.file, error),
            self.tracker,
            retries=self.opts.retries,
            backoff_seconds=self.opts.backoff_seconds,
            transport="s3",
        )

    async def _open(self, position: int, end: int) -> Any:
        """Send the GET for ``[position, end)`` and check the length of the answer; return its body."""
        whole = position == 0 and end == self.size
        args: dict[str, Any] = {"Bucket": self.opts.bucket, "Key": self.file.s3_key}
        if not whole:  # the first connection reads the object as a plain GET, like a single stream
            args["Range"] = f"bytes={position}-{end - 1}"
        response = await self.s3.get_object(**args)
        if int(response.get("ContentLength", -1)) != end - position:
            raise DownloadError(f"{self.file.filename}: S3 answered another length than asked", retryable=True)
        return response["Body"]

    async def _stream(self, index: int) -> None:
        segment = self.file.segments[index]
        position = segment.start + segment.done
        self.cursors[index] = position
        if position >= segment.end:
            return
        loop = asyncio.get_running_loop()
        self.awaiting_first_bytes += 1
        first = True
        body: Any = None
        writing: asyncio.Future[int] | None = None  # one write in flight while the next chunk arrives
        try:
            body = await self._open(position, segment.end)
            while position < segment.end:  # the end may move down (split) meanwhile
                data = await body.read(READ_BYTES)
                if first:
                    first = False
                    self.awaiting_first_bytes -= 1
                    self.last_first_bytes_at = time.monotonic()
                if not data:
                    raise DownloadError(f"{self.file.filename}: short S3 read", retryable=True)
                data = data[: segment.end - position]
                self.cursors[index] = position + len(data)
                if writing is not None:
                    await self._written(segment, writing)
                writing = loop.run_in_executor(None, _pwrite, self.fd, data, position)
                position += len(data)
                self.tracker.check_control()
        finally:
            if first:
                self.awaiting_first_bytes -= 1
            if body is not None:
                body.close()
            if writing is not None:  # never leave a write running on the fd
                await asyncio.wait([writing])
                if not writing.exception():
                    await self._written(segment, writing)

    async def _written(self, segment: Segment, writing: asyncio.Future[int]) -> None:
        """Wait for a chunk's write; only then count its bytes as on disk."""
        count = await asyncio.shield(writing)
        segment.done += count
        self.received += count
        self.tracker.add_bytes(self.file, count)

    # --- the whole object ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch every segment of the object; raise the first connection's failure."""
        pending = sum(1 for segment in self.file.segments if segment.remaining > 0)
        up_front = self.opts.part_concurrency if self.opts.split_after_seconds <= 0 else 1
        for _ in range(max(1, min(self.opts.part_concurrency, max(pending, up_front)))):
            self.spawn()
        grower = asyncio.create_task(self._grow())
        try:
            while True:
                self.changed.clear()
                for task in self.tasks:
                    if task.done():
                        task.result()  # raises the first failure
                if not self._live():
                    return
                await self.changed.wait()
        finally:
            grower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await grower
            await cancel_all(self.tasks)

    async def _grow(self) -> None:
        """Measure the throughput; add connections while they pay off."""
        last_received, last_time = self.received, time.monotonic()
        window_bytes, window_seconds = 0, 0.0  # settled ticks since the last judgement
        rate_before_growth: float | None = None
        growing = self.opts.split_after_seconds > 0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            # A tick counts only if every connection was streaming all along: a request still
            # waiting for its answer, or whose first bytes came in the tick (a burst), skews the rate.
            settled = not self.awaiting_first_bytes and 0 < self.last_first_bytes_at <= last_time
            if settled and self.cursors:
                window_bytes += self.received - last_received
                window_seconds += now - last_time
            last_received, last_time = self.received, now
            if window_seconds < MEASURE_SECONDS:
                continue
            rate = window_bytes / window_seconds
            window_bytes, window_seconds = 0, 0.0
            if rate <= 0 or not self.cursors:
                continue
            self.per_connection_rate = rate / len(self.cursors)
            if rate_before_growth is not None and rate < rate_before_growth * GAIN:
                growing = False  # the last connections added did not pay off
            if growing and self._add_connections():
                rate_before_growth = rate

    def _add_connections(self) -> bool:
        """Double the live connections (up to ``part_concurrency``) if the largest rest is worth it."""
        active = self._live()
        wanted = min(active, self.opts.part_concurrency - active)
        if wanted <= 0 or not self.cursors:
            return False
        index, cursor = max(self.cursors.items(), key=lambda item: self.file.segments[item[0]].end - item[1])
        if not self._worth_splitting(self.file.segments[index].end - cursor):
            return False
        for _ in range(wanted):
            self.spawn()
        return True


async def _object_size(s3: Any, opts: S3Options, file: FileState) -> int:
    try:
        head = await s3.head_object(Bucket=opts.bucket, Key=file.s3_key)
    except ClientError as error:
        code = _error_code(error)
        raise S3UnavailableError(f"{file.filename} is not in the bucket ({code or 'error'})") from error
    except BotoCoreError as error:
        raise DownloadError(f"{file.filename}: the S3 endpoint is unreachable", retryable=False) from error
    return int(head["ContentLength"])


async def download_object(
    s3: Any, opts: S3Options, file: FileState, tracker: JobTracker, slots: asyncio.Semaphore
) -> None:
    """Download one object over one or more connections, resuming from its recorded segments."""
    final = Path(file.local_path)
    if file.status == FileStatus.COMPLETE and await asyncio.to_thread(final.exists):
        return
    if not file.s3_key:
        raise S3UnavailableError(f"{file.filename} has no copy in the bucket")
    size = await _object_size(s3, opts, file)
    if file.total_bytes and size != file.total_bytes:
        raise DownloadError(f"{file.filename}: size mismatch (product list {file.total_bytes}, bucket {size})")
    if not file.total_bytes:
        file.total_bytes = size
        tracker.state.recount()
    part = part_path(final)
    if await asyncio.to_thread(_part_size, part) != size or not _tiles(file.segments, size):
        file.segments = [Segment(start=0, end=size)]
    await asyncio.to_thread(_prepare_part_file, part, size)
    tracker.set_file_bytes(file, file.segments_bytes())
    file.mark_downloading()
    tracker.state.current_file = file.filename
    fd = await asyncio.to_thread(os.open, part, os.O_WRONLY)
    try:
        await _Transfer(s3, opts, file, fd, size, tracker, slots).run()
    finally:
        await asyncio.to_thread(os.close, fd)
    if await asyncio.to_thread(os.path.getsize, part) != size or file.segments_bytes() != size:
        raise DownloadError(f"{file.filename}: incomplete S3 download")
    finalize_file(file, tracker)
    file.segments = []


def _tiles(segments: list[Segment], size: int) -> bool:
    """Return whether recorded segments cover ``[0, size)`` exactly once (else the record is discarded)."""
    position = 0
    for segment in sorted(segments, key=lambda s: s.start):
        if segment.start != position or not 0 <= segment.done <= segment.end - segment.start:
            return False
        position = segment.end
    return position == size


async def download_objects(session: Any, opts: S3Options, files: Sequence[FileState], tracker: JobTracker) -> list[str]:
    """Download ``files`` from the bucket; return the errors of the files that failed.

    An object missing from the bucket raises :class:`S3UnavailableError` at once (the job fails
    with ``S3_UNAVAILABLE:`` so the caller can fall back to HTTP).
    """
    slots = asyncio.Semaphore(opts.part_concurrency)
    async with session.client(
        "s3", endpoint_url=opts.endpoint_url, region_name=opts.region, config=client_config(opts)
    ) as s3:

        async def fetch(file: FileState) -> None:
            try:
                await download_object(s3, opts, file, tracker, slots)
            except OSError as error:  # the download directory refused a write
                raise disk_error(file, error) from error

        errors: list[str] = await download_each(files, opts.file_concurrency, fetch)
    return errors
