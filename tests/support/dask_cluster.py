"""A real local Dask cluster for tests: separate worker processes on 127.0.0.1, one thread each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from distributed import LocalCluster


@contextmanager
def local_cluster(memory_limit: int | str, *, workers: int = 2) -> Iterator[LocalCluster]:
    """Run ``workers`` worker processes with ``memory_limit`` each, reached by address like a remote cluster."""
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address="127.0.0.1:0",  # a free port: tests and other clusters may run side by side
        host="127.0.0.1",
    ) as cluster:
        yield cluster
