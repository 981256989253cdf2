"""Resumable streaming HTTP downloads with httpx.

Each file streams into ``<file>.part``; a restart sends ``Range: bytes=<part size>-`` and
appends. Received bytes are buffered and written in ``chunk_bytes`` blocks (``MAST_DOWNLOAD_CHUNK_BYTES``,
1 MiB by default: measured faster than 5 MiB blocks, see ``bench/downloads.py``) from a thread, one
write in flight while the network keeps reading. Connect errors, timeouts, 5xx answers and
connections dropped mid-file are retried with exponential backoff, each retry resuming where the
``.part`` stopped. The size is checked against the product list and the
``Content-Length``/``Content-Range`` of the reply, and the ``.part`` is renamed to the final name
only when it is complete. Several files run in parallel.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from app.mast.jobs.progress import JobTracker
from app.mast.jobs.state import FileState, FileStatus
from app.mast.jobs.transfer.common import (
    DownloadError,
    disk_error,
    download_each,
    finalize_file,
    part_path,
    retry_with_backoff,
)

logger = logging.getLogger("app.mast.chunked")

CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class DownloadOptions:
    """Tuning of the chunked downloader."""

    chunk_bytes: int = 1024 * 1024
    concurrency: int = 3
    retries: int = 3
    backoff_seconds: float = 1.0


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _write_and_close(handle: BinaryIO, block: bytes | bytearray) -> None:
    try:
        if block:
            handle.write(block)
    finally:
        handle.close()


def _refuse_status(file: FileState, status: int) -> None:
    """Raise the error of an HTTP error status (416 aside, which the caller handles)."""
    if status >= 500 or status == 429:
        raise DownloadError(f"{file.filename}: MAST answered HTTP {status}", retryable=True)
    if status >= 400:
        raise DownloadError(f"{file.filename}: MAST answered HTTP {status}")


async def _reply_range(response: httpx.Response, file: FileState, part: Path, offset: int) -> tuple[int, int]:
    """Check the status and range of a reply; return the offset it starts at and the file's size."""
    if response.status_code == 416:
        await asyncio.to_thread(part.unlink)
        raise DownloadError(f"{file.filename}: the server refused the resume range", retryable=True)
    _refuse_status(file, response.status_code)
    if response.status_code != 206:
        length = response.headers.get("content-length")
        return 0, int(length) if length is not None else file.total_bytes
    match = CONTENT_RANGE_RE.match(response.headers.get("content-range", ""))
    if match is None or int(match.group(1)) != offset:
        await asyncio.to_thread(part.unlink)
        raise DownloadError(f"{file.filename}: unexpected Content-Range", retryable=True)
    total = int(match.group(3)) if match.group(3) != "*" else offset + int(response.headers["content-length"])
    return offset, total


def _accept_size(file: FileState, tracker: JobTracker, total: int) -> None:
    """Check the size MAST sends against the product list, or take it when the list had none."""
    if file.total_bytes and total != file.total_bytes:
        raise DownloadError(
            f"{file.filename}: size mismatch (product list says {file.total_bytes} bytes, MAST sends {total})"
        )
    if not file.total_bytes:
        file.total_bytes = total
        tracker.state.recount()


async def _receive(
    response: httpx.Response, file: FileState, tracker: JobTracker, part: Path, offset: int, opts: DownloadOptions
) -> None:
    """Append the body of ``response`` to ``part`` in ``chunk_bytes`` blocks, one write in flight."""
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


async def _check_received(file: FileState, tracker: JobTracker, part: Path) -> None:
    """Count what the ``.part`` holds after a reply; raise unless it is exactly the whole file."""
    size = await asyncio.to_thread(_size_of, part)
    tracker.set_file_bytes(file, size)
    expected = file.total_bytes
    if expected and size < expected:
        raise DownloadError(f"{file.filename}: the connection ended early ({size} of {expected} bytes)", retryable=True)
    if expected and size > expected:
        await asyncio.to_thread(part.unlink)
        raise DownloadError(f"{file.filename}: received more bytes than announced", retryable=True)


async def _stream_once(client: httpx.AsyncClient, file: FileState, tracker: JobTracker, opts: DownloadOptions) -> None:
    """Make one attempt: resume ``file`` from its ``.part`` and finish it, or raise."""
    part = part_path(Path(file.local_path))
    offset = await asyncio.to_thread(_size_of, part)
    if file.total_bytes and offset > file.total_bytes:
        await asyncio.to_thread(part.unlink)
        offset = 0
    if file.total_bytes and offset == file.total_bytes:
        finalize_file(file, tracker)
        return
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    async with client.stream("GET", file.url, headers=headers) as response:
        offset, total = await _reply_range(response, file, part, offset)
        _accept_size(file, tracker, total)
        tracker.set_file_bytes(file, offset)
        file.mark_downloading()
        tracker.state.current_file = file.filename
        await _receive(response, file, tracker, part, offset, opts)
    await _check_received(file, tracker, part)
    finalize_file(file, tracker)


def _retry_reason(file: FileState, error: Exception) -> str | None:
    """Return why a failed attempt is worth another, ``None`` to let the error through; raise on a disk error."""
    if isinstance(error, DownloadError):
        return error.detail if error.retryable else None
    if isinstance(error, OSError):
        raise disk_error(file, error) from error
    if isinstance(error, httpx.TimeoutException):
        return f"{file.filename}: MAST timed out"
    if isinstance(error, httpx.TransportError):
        return f"{file.filename}: connection error ({type(error).__name__})"
    return None


async def download_file(client: httpx.AsyncClient, file: FileState, tracker: JobTracker, opts: DownloadOptions) -> None:
    """Download one file with retries; mark it complete or raise :class:`DownloadError`."""
    final = Path(file.local_path)
    if file.status == FileStatus.COMPLETE and await asyncio.to_thread(final.exists):
        return

    async def attempt() -> None:
        await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
        await _stream_once(client, file, tracker, opts)

    def log_retry(retry: int, reason: str) -> None:
        logger.info("download_retry", extra={"file": file.filename, "attempt": retry, "reason": reason})

    await retry_with_backoff(
        attempt,
        lambda error: _retry_reason(file, error),
        tracker,
        retries=opts.retries,
        backoff_seconds=opts.backoff_seconds,
        transport="http",
        on_retry=log_retry,
    )


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
    return await download_each(files, opts.concurrency, lambda file: download_file(client, file, tracker, opts))
