"""Parallel ranged downloads from the public MAST bucket with aioboto3 (contract 0, P19).

Requests are anonymous (unsigned) and go to ``MAST_S3_ENDPOINT_URL`` (AWS when unset). Keys
come from MAST's cloud path lookup, never from string building. A file is split into at most
``part_concurrency`` ranges (each at least ``part_bytes``) fetched concurrently and written at
their offsets into a pre-sized ``.part`` file. The job state records, per part, how many bytes
from its start are on disk, so a retry, a pause or a killed process resumes every part where it
stopped. The ``.part`` becomes the final file once every part is there and the size matches the
product list and the bucket's ``ContentLength``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from botocore import UNSIGNED
from botocore.exceptions import BotoCoreError, ClientError

from app.mast.chunked_downloader import DownloadError, finalize_file, interruptible_sleep, part_path
from app.mast.download_state_manager import FileState, utc_now
from app.mast.download_tracker import JobInterruptedError, JobTracker

logger = logging.getLogger("app.mast.s3")

S3_UNAVAILABLE = "S3_UNAVAILABLE:"
READ_BYTES = 256 * 1024


@dataclass(frozen=True)
class S3Options:
    """Where and how to read the public bucket."""

    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    part_bytes: int = 8 * 1024 * 1024
    part_concurrency: int = 8
    file_concurrency: int = 3
    retries: int = 3
    backoff_seconds: float = 1.0


class S3UnavailableError(DownloadError):
    """A product has no copy in the bucket; the caller can fall back to HTTP."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{S3_UNAVAILABLE} {detail}")


def plan_part_bytes(size: int, opts: S3Options) -> int:
    """Part size for an object: one part per connection, never below ``opts.part_bytes``."""
    return max(opts.part_bytes, -(-size // opts.part_concurrency))


def part_ranges(size: int, part_bytes: int) -> list[tuple[int, int]]:
    """Inclusive ``(start, end)`` byte ranges covering ``size`` bytes."""
    return [(start, min(start + part_bytes, size) - 1) for start in range(0, size, part_bytes)]


def client_config(opts: S3Options) -> AioConfig:
    """Anonymous, path-style client settings sized for the part concurrency."""
    return AioConfig(
        signature_version=UNSIGNED,
        max_pool_connections=max(10, opts.part_concurrency * opts.file_concurrency),
        s3={"addressing_style": "path"},
        retries={"max_attempts": 1},
    )


def _prepare_part_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        if handle.tell() != size:
            handle.truncate(size)


def _pwrite(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


async def _write_at(fd: int, data: bytes, offset: int) -> None:
    """Write in a thread; if cancelled meanwhile, wait for the write before leaving (the fd stays valid)."""
    future = asyncio.get_running_loop().run_in_executor(None, _pwrite, fd, data, offset)
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


async def _fetch_part(
    s3: Any, opts: S3Options, file: FileState, fd: int, index: int, start: int, end: int, tracker: JobTracker
) -> None:
    """Fetch one range into the ``.part`` file from its recorded offset, with retries."""
    attempt = 0
    length = end - start + 1
    while True:
        tracker.check_control()
        done = file.part_offsets.get(index, 0)
        if done >= length:
            return
        try:
            response = await s3.get_object(Bucket=opts.bucket, Key=file.s3_key, Range=f"bytes={start + done}-{end}")
            body = response["Body"]
            try:
                while True:
                    data = await body.read(READ_BYTES)
                    if not data:
                        break
                    if done + len(data) > length:
                        raise DownloadError(f"{file.filename}: S3 sent more bytes than asked", retryable=True)
                    await _write_at(fd, data, start + done)
                    done += len(data)
                    file.part_offsets[index] = done  # only after the bytes are written
                    tracker.add_bytes(file, len(data))
                    tracker.check_control()
            finally:
                body.close()
            if done != length:
                raise DownloadError(f"{file.filename}: short S3 read", retryable=True)
            return
        except JobInterruptedError:
            raise
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NoSuchBucket", "AccessDenied", "403"}:
                raise S3UnavailableError(f"{file.filename} is not readable in the bucket ({code})") from error
            reason = f"{file.filename}: S3 error {code}"
        except (BotoCoreError, OSError, DownloadError) as error:
            reason = f"{file.filename}: S3 transfer failed ({type(error).__name__})"
        attempt += 1
        if attempt > opts.retries:
            raise DownloadError(f"{reason}; gave up after {opts.retries} retries")
        await interruptible_sleep(opts.backoff_seconds * 2 ** (attempt - 1), tracker)


async def _object_size(s3: Any, opts: S3Options, file: FileState) -> int:
    try:
        head = await s3.head_object(Bucket=opts.bucket, Key=file.s3_key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        raise S3UnavailableError(f"{file.filename} is not in the bucket ({code or 'error'})") from error
    except BotoCoreError as error:
        raise DownloadError(f"{file.filename}: the S3 endpoint is unreachable", retryable=False) from error
    return int(head["ContentLength"])


async def download_object(
    s3: Any, opts: S3Options, file: FileState, tracker: JobTracker, parts: asyncio.Semaphore
) -> None:
    """Download one object as concurrent ranged GETs, resuming from its finished parts."""
    final = Path(file.local_path)
    if file.status == "complete" and final.exists():
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
    part_bytes = plan_part_bytes(size, opts)
    if not part.exists() or part.stat().st_size != size or file.part_bytes != part_bytes:
        file.part_offsets = {}
    file.part_bytes = part_bytes
    await asyncio.to_thread(_prepare_part_file, part, size)
    tracker.set_file_bytes(file, file.parts_bytes())
    file.status = "downloading"
    file.started_at = file.started_at or utc_now()
    tracker.state.current_file = file.filename
    fd = await asyncio.to_thread(os.open, part, os.O_WRONLY)
    try:

        async def run(index: int, start: int, end: int) -> None:
            async with parts:
                await _fetch_part(s3, opts, file, fd, index, start, end, tracker)

        tasks = [
            asyncio.create_task(run(i, start, end))
            for i, (start, end) in enumerate(part_ranges(size, part_bytes))
            if file.part_offsets.get(i, 0) < end - start + 1
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    finally:
        await asyncio.to_thread(os.close, fd)
    if part.stat().st_size != size:
        raise DownloadError(f"{file.filename}: incomplete S3 download")
    finalize_file(file, tracker)
    file.part_offsets = {}


async def download_objects(session: Any, opts: S3Options, files: Sequence[FileState], tracker: JobTracker) -> list[str]:
    """Download ``files`` from the bucket; return the errors of the files that failed.

    An object missing from the bucket raises :class:`S3UnavailableError` at once (the job fails
    with ``S3_UNAVAILABLE:`` so the caller can fall back to HTTP).
    """
    errors: list[str] = []
    file_slots = asyncio.Semaphore(opts.file_concurrency)
    parts = asyncio.Semaphore(opts.part_concurrency)
    async with session.client(
        "s3", endpoint_url=opts.endpoint_url, region_name=opts.region, config=client_config(opts)
    ) as s3:

        async def one(file: FileState) -> None:
            async with file_slots:
                try:
                    await download_object(s3, opts, file, tracker, parts)
                except S3UnavailableError:
                    raise
                except DownloadError as error:
                    file.status = "failed"
                    file.error = error.detail
                    errors.append(error.detail)
                except OSError as error:  # the download directory refused a write
                    detail = f"{file.filename}: cannot write the file ({error.strerror or 'disk error'})"
                    file.status = "failed"
                    file.error = detail
                    errors.append(detail)

        tasks = [asyncio.create_task(one(f)) for f in files if f.status != "complete"]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    return errors
