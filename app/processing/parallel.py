"""Run the independent parts of one computation (row bands, channels, planes) on a few threads.

numpy releases the GIL in its array loops, file reads and gathers, so banded work (block-averaged
reads, reprojection bands, colour planes) runs in parallel on the CPUs a job may use (the engine's
``ENGINE_JOB_THREADS``). Each part runs in a copy of the caller's context, so it sees the caller's
context variables (a job's storage, its inflation budget). The first error is raised once every
started part has finished; nothing is left running behind the caller.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_in_threads(fn: Callable[[T], R], items: Sequence[T], threads: int) -> list[R]:
    """Return ``[fn(item) for item in items]``, computed on up to ``threads`` threads (in order)."""
    workers = min(max(1, threads), len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job-part") as pool:
        futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
        return [future.result() for future in futures]


#: Pixels of one band of an image processed as one part (a few MB of float32: stays in cache).
BAND_PIXELS = 1 << 18


def row_bands(shape: tuple[int, ...], band_pixels: int = BAND_PIXELS) -> list[slice]:
    """Split the rows of an image (the second-to-last axis of ``shape``) into bands of about ``band_pixels``."""
    rows, cols = (shape[-2], shape[-1]) if len(shape) >= 2 else (shape[0], 1)
    step = max(1, band_pixels // max(cols, 1))
    return [slice(start, min(rows, start + step)) for start in range(0, rows, step)]
