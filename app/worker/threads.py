"""Run the independent parts of one job (its channels, its files) on a few threads.

numpy releases the GIL in its array loops, file reads and gathers, so the per-channel work of a
composite (read, block-average, reproject, stretch) runs in parallel on the CPUs the job may use
(``ENGINE_JOB_THREADS``). Each part runs in a copy of the job's context, so it sees the job's
storage and inflation budget (:mod:`app.worker.context`). The first error is raised once every
started part has finished; nothing is left running behind the job.
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
