"""What the HTTP and the S3 transfers share.

The error a failed file reports, the ``.part`` file next to each destination and its final
rename, one retry policy for both downloaders (exponential backoff with full jitter, pausable: it
answers pause and cancel requests while it waits), and the task handling of a batch of files
(each file in its own task under a concurrency limit; on a failure or a cancellation every other
task is cancelled and awaited before the error goes on).

The retry loop is our own rather than ``tenacity``'s because its wait must poll the job's pause
and cancel requests and its failures must become a client-safe :class:`DownloadError` naming the
file; with a library both would be adapters around its loop, longer than the loop itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from app.core.metrics import DOWNLOAD_RETRIES
from app.mast.jobs.progress import JobInterruptedError, JobTracker
from app.mast.jobs.state import FileState, FileStatus

logger = logging.getLogger("app.mast.transfer")

#: The longest wait between two tries, whatever the retry number.
MAX_BACKOFF_SECONDS = 60.0
#: Longest sleep between two checks for a pause or cancel request while waiting.
CONTROL_CHECK_SECONDS = 0.1

#: Tells what a failed attempt means: a reason to retry, or ``None`` to let the error through
#: unchanged. It may also raise another error instead.
RetryReason = Callable[[Exception], str | None]
#: Called before each retry with the retry number and its reason.
RetryHook = Callable[[int, str], None]


class DownloadError(Exception):
    """A file could not be downloaded; ``detail`` is safe to show to clients.

    Parameters
    ----------
    detail
        What went wrong, naming the file.
    retryable
        Whether another attempt may succeed.
    fails_job
        Whether the whole job fails at once rather than this file alone.
    """

    def __init__(self, detail: str, *, retryable: bool = False, fails_job: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
        self.fails_job = fails_job


def disk_error(file: FileState, error: OSError) -> DownloadError:
    """Return the error of a file whose bytes could not be written."""
    return DownloadError(f"{file.filename}: cannot write the file ({error.strerror or 'disk error'})")


def part_path(final: Path) -> Path:
    """Return the ``.part`` file of a final path."""
    return final.with_name(final.name + ".part")


def finalize_file(file: FileState, tracker: JobTracker) -> None:
    """Rename a verified ``.part`` to the final name and mark the file complete."""
    final = Path(file.local_path)
    os.replace(part_path(final), final)
    tracker.set_file_bytes(file, final.stat().st_size)
    file.mark_complete()


async def interruptible_sleep(seconds: float, tracker: JobTracker) -> None:
    """Sleep ``seconds``, answering pause and cancel requests meanwhile."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while True:
        tracker.check_control()
        left = end - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, CONTROL_CHECK_SECONDS))


def backoff_delay(backoff_seconds: float, retry: int, *, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Return the wait before retry number ``retry`` (1 for the first): exponential, with full jitter.

    The wait is drawn uniformly between 0 and ``backoff_seconds * 2 ** (retry - 1)`` (at most
    ``cap``), so that connections and files that failed together spread their retries instead of
    hitting the server again in lockstep.
    """
    ceiling = min(cap, backoff_seconds * 2.0 ** min(retry - 1, 62))
    return random.uniform(0.0, ceiling)


async def retry_with_backoff(
    attempt: Callable[[], Awaitable[None]],
    reason_of: RetryReason,
    tracker: JobTracker,
    *,
    retries: int,
    backoff_seconds: float,
    transport: str,
    on_retry: RetryHook | None = None,
) -> None:
    """Run ``attempt`` until it succeeds, retrying the failures ``reason_of`` names.

    Parameters
    ----------
    attempt
        One try; it returns when done and raises on failure.
    reason_of
        Maps a failure to the reason to retry, or to ``None`` to re-raise it as it is; it may
        raise a replacement error itself. A pause or cancel request is never retried.
    tracker
        Checked for pause and cancel requests before each try and during each wait.
    retries
        How many retries after the first try.
    backoff_seconds
        The longest wait before the first retry; each later ceiling doubles, and each wait is
        drawn below its ceiling (see :func:`backoff_delay`).
    transport
        ``http`` or ``s3``: the label of the retry in ``jwst_download_retries_total``.
    on_retry
        Called before each wait with the retry number and its reason.

    Raises
    ------
    DownloadError
        When the last retry failed too (its detail ends with ``gave up after N retries``).
    """
    failures = 0
    while True:
        tracker.check_control()
        try:
            await attempt()
            return
        except JobInterruptedError:
            raise
        except Exception as error:
            reason = reason_of(error)
            if reason is None:
                raise
        failures += 1
        if failures > retries:
            raise DownloadError(f"{reason}; gave up after {retries} retries")
        DOWNLOAD_RETRIES.labels(transport=transport).inc()
        if on_retry is not None:
            on_retry(failures, reason)
        await interruptible_sleep(backoff_delay(backoff_seconds, failures), tracker)


async def cancel_all(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended (their errors are dropped)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def gather_or_cancel(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Wait for ``tasks``; on the first failure or a cancellation, cancel and await the rest, then re-raise."""
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        with contextlib.suppress(BaseException):
            await cancel_all(tasks)
        raise


async def download_each(
    files: Iterable[FileState], concurrency: int, fetch: Callable[[FileState], Awaitable[None]]
) -> list[str]:
    """Fetch every unfinished file, ``concurrency`` at a time.

    Parameters
    ----------
    files
        The files of the job; complete ones are skipped.
    concurrency
        How many files are fetched at once.
    fetch
        Downloads one file and marks it complete, or raises :class:`DownloadError`.

    Returns
    -------
    list of str
        The errors of files that failed (each marked failed). An error with ``fails_job``, a
        pause or cancel request stops every file and is raised.
    """
    slots = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(file: FileState) -> None:
        async with slots:
            try:
                await fetch(file)
            except DownloadError as error:
                if error.fails_job:
                    raise
                file.mark_failed(error.detail)
                errors.append(error.detail)

    tasks = [asyncio.create_task(one(f)) for f in files if f.status != FileStatus.COMPLETE]
    await gather_or_cancel(tasks)
    return errors
