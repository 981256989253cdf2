"""Prometheus metrics of both services, kept in multi-process mode.

The proxy answers from two uvicorn workers and the engine counts composite cache hits inside its
worker processes, so every metric is written with ``prometheus_client``'s multi-process mode: each
process keeps its values in memory-mapped files under one directory per service instance, and
``/metrics`` (:func:`render`) adds them up. :func:`prepare_metrics_dir` sets that directory up
before any value exists: ``PROMETHEUS_MULTIPROC_DIR`` when configured, else
``$TMP/jwst-metrics/<service>-<pid of the uvicorn supervisor>`` (shared by the workers of one
uvicorn, distinct for every service instance). At startup it deletes the files of processes that
no longer run and the default directories of instances that have stopped.

Every metric defined here has labels, so none writes a file when this module is imported (values
are created on first use, after the directory is ready). Gauges that describe the engine's gate
are read live at scrape time (:class:`ExecutorCollector`) rather than stored.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.core.settings import Settings, export_prometheus_multiproc_dir

logger = logging.getLogger("app.metrics")

JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

JOB_DURATION = Histogram(
    "jwst_job_duration_seconds",
    "Wall-clock time of executor jobs, by job kind (entry point) and outcome (ok, error, timeout).",
    ["kind", "outcome"],
    buckets=JOB_BUCKETS,
)
GATE_REJECTED = Counter(
    "jwst_executor_rejected",
    "Requests refused by the executor gate with 429 (every slot and queue place taken).",
    ["reason"],
)
CHANNEL_CACHE = Counter(
    "jwst_composite_channel_cache",
    "Lookups of the composite channel cache, by result (hit or miss).",
    ["result"],
)
DOWNLOAD_BYTES = Counter(
    "jwst_download_bytes",
    "Bytes received by the proxy's downloads, by job kind (chunked, s3, legacy; legacy includes the "
    "synchronous download).",
    ["kind"],
)
DOWNLOAD_RETRIES = Counter(
    "jwst_download_retries",
    "Retries of a download request after a retryable failure, by transport (http, s3).",
    ["transport"],
)
DOWNLOAD_JOBS_ACTIVE = Gauge(
    "jwst_download_jobs_active",
    "Download jobs running in the proxy's workers, by job kind.",
    ["kind"],
    multiprocess_mode="livesum",
)

_DEFAULT_PARENT = "jwst-metrics"
_state: dict[str, Path] = {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_of(name: str) -> int | None:
    """Return the pid in ``<kind>_<pid>.db`` or ``<service>-<pid>``, if any."""
    stem = name.removesuffix(".db")
    tail = stem.rsplit("_", 1)[-1] if name.endswith(".db") else stem.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def prune_dead(directory: Path) -> int:
    """Delete the value files of processes that no longer run; return how many went."""
    removed = 0
    for entry in directory.glob("*.db"):
        pid = _pid_of(entry.name)
        if pid is not None and not _pid_alive(pid):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed += 1
    return removed


def _supervisor_pid() -> int:
    """Return the pid of the uvicorn supervisor of this worker, or this process's own."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getpid()


def _default_dir(service: str) -> Path:
    parent = Path(tempfile.gettempdir()) / _DEFAULT_PARENT
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f"{service}-*"):
        pid = _pid_of(stale.name)
        if pid is not None and not _pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)
    return parent / f"{service}-{_supervisor_pid()}"


def prepare_metrics_dir(settings: Settings, service: str) -> Path:
    """Create and clean this process's metrics directory, and switch ``prometheus_client`` to it.

    The first call of a process decides; later calls (several apps built in one test process)
    return the same directory. The directory is exported as ``PROMETHEUS_MULTIPROC_DIR`` so that
    worker processes started afterwards write there too.
    """
    if "dir" in _state:
        return _state["dir"]
    directory = settings.prometheus_multiproc_dir or _default_dir(service)
    directory.mkdir(parents=True, exist_ok=True)
    removed = prune_dead(directory)
    export_prometheus_multiproc_dir(directory)
    if values.ValueClass is values.MutexValue:
        # prometheus_client picks its value class when first imported; it was imported before the
        # directory was named, and no value exists yet (every metric has labels), so pick again.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    _state["dir"] = directory
    logger.info("metrics_dir", extra={"directory": str(directory), "stale_files_removed": removed})
    return directory


class GateView(Protocol):
    """What :class:`ExecutorCollector` reads from the engine's executor."""

    workers: int

    @property
    def in_flight(self) -> int:
        """Requests admitted by the gate."""
        ...

    @property
    def capacity(self) -> int:
        """Requests the gate admits at most."""
        ...

    @property
    def calls_in_backend(self) -> int:
        """Job calls handed to the backend and not yet finished."""
        ...


class ExecutorCollector(Collector):
    """Gauges of the engine's gate and worker pool, read when ``/metrics`` is scraped."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        """Yield the gate's gauges, or nothing when the app has no executor."""
        executor: GateView | None = getattr(self.state, "executor", None)
        if executor is None:
            return
        calls = executor.calls_in_backend
        yield GaugeMetricFamily(
            "jwst_executor_slots_in_use", "Gate slots held by admitted requests.", value=executor.in_flight
        )
        yield GaugeMetricFamily(
            "jwst_executor_slots_capacity", "Gate slots: workers plus queue places.", value=executor.capacity
        )
        yield GaugeMetricFamily(
            "jwst_executor_jobs_running", "Job calls running on a worker.", value=min(calls, executor.workers)
        )
        yield GaugeMetricFamily(
            "jwst_executor_jobs_queued", "Job calls waiting for a free worker.", value=max(0, calls - executor.workers)
        )


def render(state: Any) -> bytes:
    """Return the exposition text: every process's values added up, plus the live gauges."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
        registry, path=str(_state["dir"]) if "dir" in _state else None
    )
    registry.register(ExecutorCollector(state))
    return generate_latest(registry)
