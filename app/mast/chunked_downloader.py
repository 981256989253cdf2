"""Resumable streaming HTTP downloads with httpx (contract 4.1, 5.4).

Each file streams into ``<file>.part``; a restart sends ``Range: bytes=<part size>-`` and
appends. Received bytes are buffered and written in ``chunk_bytes`` blocks (``MAST_DOWNLOAD_CHUNK_BYTES``,
1 MiB by default: measured faster than 5 MiB blocks, see ``bench/downloads.py``) from a thread, one write
in flight while the network keeps reading. Connect
errors, timeouts, 5xx answers and connections dropped mid-file are retried with exponential
backoff, each retry resuming where the ``.part`` stopped. The size is checked against the product
list and the ``Content-Length``/``Content-Range`` of the reply, and the ``.part`` is renamed to the
final name only when it is complete. Several files run in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from app.mast.download_state_manager import FileState, utc_now
from app.mast.download_tracker import JobInterruptedError, JobTracker

logger = logging.getLogger("app.mast.chunked")

CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(Exception):
    """A file could not be downloaded; ``detail`` is safe to show to clients."""

    def __init__(self, detail: str, *, retryable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True)
class DownloadOptions:
    """Tuning of the chunked downloader."""

    chunk_bytes: int = 1024 * 1024
    concurrency: int = 3
    retries: int = 3
    backoff_seconds: float = 1.0


def part_path(final: Path) -> Path:
    """The ``.part`` file of a final path."""
    return final.with_name(final.name + ".part")


async def interruptible_sleep(seconds: float, tracker: JobTracker) -> None:
    """Sleep, answering pause/cancel requests meanwhile."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        tracker.check_control()
        left = end - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.1))


def finalize_file(file: FileState, tracker: JobTracker) -> None:
    """Rename a verified ``.part`` and mark the file complete."""
    final = Path(file.local_path)
    os.replace(part_path(final), final)
    tracker.set_file_bytes(file, final.stat().st_size)
    file.status = "complete"
    file.error = None
    file.completed_at = utc_now()


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def _stream_once(client: httpx.AsyncClient, file: FileState, tracker: JobTracker, opts: DownloadOptions) -> None:
    """One attempt: resume ``file`` from its ``.part`` and finish it, or raise."""
    final = Path(file.local_path)
    part = part_path(final)
    offset = await asyncio.to_thread(_size_of, part)
    expected = file.total_bytes
    if expected and offset > expected:
        await asyncio.to_thread(part.unlink)
        offset = 0
    if expected and offset == expected:
        finalize_file(file, tracker)
        return
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    async with client.stream("GET", file.url, headers=headers) as response:
        status = response.status_code
        if status == 416:
            await asyncio.to_thread(part.unlink)
            raise DownloadError(f"{file.filename}: the server refused the resume range", retryable=True)
        if status >= 500 or status == 429:
            raise DownloadError(f"{file.filename}: MAST answered HTTP {status}", retryable=True)
        if status >= 400:
            raise DownloadError(f"{file.filename}: MAST answered HTTP {status}")
        if status == 206:
            match = CONTENT_RANGE_RE.match(response.headers.get("content-range", ""))
            if match is None or int(match.group(1)) != offset:
                await asyncio.to_thread(part.unlink)
                raise DownloadError(f"{file.filename}: unexpected Content-Range", retryable=True)
            total = int(match.group(3)) if match.group(3) != "*" else offset + int(response.headers["content-length"])
        else:
            offset = 0
            length = response.headers.get("content-length")
            total = int(length) if length is not None else expected
        if expected and total != expected:
            raise DownloadError(
                f"{file.filename}: size mismatch (product list says {expected} bytes, MAST sends {total})"
            )
        if not expected:
            file.total_bytes = total
            tracker.state.recount()
        expected = file.total_bytes
        tracker.set_file_bytes(file, offset)
        file.status = "downloading"
        file.started_at = file.started_at or utc_now()
        tracker.state.current_file = file.filename
        handle: BinaryIO = await asyncio.to_thread(open, part, "ab" if offset else "wb")
        buffer = bytearray()
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[int] | None = None
        try:
            async for data in response.aiter_raw():
                buffer += data
                tracker.add_bytes(file, len(data))
                if len(buffer) >= opts.chunk_bytes:
                    # One write in flight at a time: the disk works while the network keeps reading,
                    # and blocks land in order.
                    if pending is not None:
                        await asyncio.shield(pending)
                    block, buffer = buffer, bytearray()
                    pending = loop.run_in_executor(None, handle.write, block)
                tracker.check_control()
        finally:
            # Whatever arrived is valid data at the right offset: keep it for the next attempt,
            # after any write still running in the pool (so blocks never swap places).
            if pending is not None and not pending.done():
                await asyncio.wait([pending])
            await asyncio.shield(asyncio.to_thread(_write_and_close, handle, buffer))
    size = await asyncio.to_thread(_size_of, part)
    tracker.set_file_bytes(file, size)
    if expected and size < expected:
        raise DownloadError(f"{file.filename}: the connection ended early ({size} of {expected} bytes)", retryable=True)
    if expected and size > expected:
        await asyncio.to_thread(part.unlink)
        raise DownloadError(f"{file.filename}: received more bytes than announced", retryable=True)
    finalize_file(file, tracker)


def _write_and_close(handle: BinaryIO, block: bytes | bytearray) -> None:
    try:
        if block:
            handle.write(block)
    finally:
        handle.close()


async def download_file(client: httpx.AsyncClient, file: FileState, tracker: JobTracker, opts: DownloadOptions) -> None:
    """Download one file with retries; mark it complete or raise :class:`DownloadError`."""
    final = Path(file.local_path)
    if file.status == "complete" and final.exists():
        return
    attempt = 0
    while True:
        tracker.check_control()
        try:
            await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
            await _stream_once(client, file, tracker, opts)
            return
        except JobInterruptedError:
            raise
        except DownloadError as error:
            if not error.retryable:
                raise
            reason = error.detail
        except OSError as error:
            raise DownloadError(f"{file.filename}: cannot write the file ({error.strerror or 'disk error'})") from error
        except httpx.TimeoutException:
            reason = f"{file.filename}: MAST timed out"
        except httpx.TransportError as error:
            reason = f"{file.filename}: connection error ({type(error).__name__})"
        attempt += 1
        if attempt > opts.retries:
            raise DownloadError(f"{reason}; gave up after {opts.retries} retries")
        logger.info("download_retry", extra={"file": file.filename, "attempt": attempt, "reason": reason})
        await interruptible_sleep(opts.backoff_seconds * 2 ** (attempt - 1), tracker)


async def download_files(
    client: httpx.AsyncClient, files: Sequence[FileState], tracker: JobTracker, opts: DownloadOptions
) -> list[str]:
    """Download ``files`` with ``opts.concurrency`` in parallel.

    Returns
    -------
    list of str
        The errors of files that failed (empty when every file is complete). A pause or
        cancel request stops every file and raises :class:`JobInterruptedError`.
    """
    semaphore = asyncio.Semaphore(opts.concurrency)
    errors: list[str] = []

    async def one(file: FileState) -> None:
        async with semaphore:
            try:
                await download_file(client, file, tracker, opts)
            except DownloadError as error:
                file.status = "failed"
                file.error = error.detail
                errors.append(error.detail)

    tasks = [asyncio.create_task(one(f)) for f in files if f.status != "complete"]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return errors
