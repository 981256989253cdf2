"""The Dask backend of the executor, against a real local cluster of separate worker processes.

A ``LocalCluster`` (2 worker processes, 1 thread each, a memory limit) stands in for the cluster an
operator runs with ``dask scheduler`` and ``dask worker``; the engine reaches it by address only,
as it would a remote one.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from distributed import Client, LocalCluster
from fastapi.testclient import TestClient

from app.core.dask_backend import DaskBackend
from app.core.exceptions import BusyError, ClusterUnavailableError, WorkerCrashedError
from app.core.executor import JobExecutor
from main import create_app
from tests.support.dask_cluster import local_cluster
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import gaussian_stars, make_wcs, write_image
from tests.support.request_bodies import channel, request_body

WORKER_MEMORY = "900MB"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(WORKER_MEMORY) as local:
        yield local


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dask-data")
    for i, (ra, rotation) in enumerate([(150.10, 0.0), (150.1004, 12.0), (150.0996, -7.0)]):
        wcs = make_wcs((180, 220), ra=ra, dec=2.2, pixel_scale_arcsec=0.06, rotation_deg=rotation)
        data, _ = gaussian_stars((180, 220), n_stars=25, seed=i, flux_range=(300.0, 3000.0))
        write_image(root / "f" / f"t{i}.fits", data + 10.0, wcs=wcs)
    return root


def _client(data_root: Path, tmp: Path, **overrides: object) -> TestClient:
    settings = make_settings(data_root, tmp, COMPOSITE_CACHE_MAX_ENTRIES=0, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _composite_body() -> dict[str, object]:
    channels = [channel([f"f/t{i}.fits"], hue=120.0 * i) for i in range(3)]
    return request_body(channels, width=200, height=160)


def _mosaic_body(output_format: str) -> dict[str, object]:
    files = [
        {
            "file_path": f"f/t{i}.fits",
            "stretch": "asinh",
            "black_point": 0,
            "white_point": 1,
            "gamma": 1,
            "asinh_a": 0.1,
        }
        for i in range(3)
    ]
    return {
        "files": files,
        "output_format": output_format,
        "quality": 95,
        "width": None,
        "height": None,
        "combine_method": "mean",
        "cmap": "grayscale",
    }


def test_cluster_and_local_pool_give_the_same_bytes(cluster: LocalCluster, data_root: Path, tmp_path: Path) -> None:
    answers = {}
    for name, extra in (("local", {}), ("dask", {"DASK_SCHEDULER_ADDRESS": cluster.scheduler_address})):
        with _client(data_root, tmp_path / name, **extra) as client:
            composite = client.post("/composite/generate-nchannel", json=_composite_body())
            png = client.post("/mosaic/generate", json=_mosaic_body("png"))
            fits_reply = client.post("/mosaic/generate", json=_mosaic_body("fits"))
            preview = client.get("/preview/x", params={"file_path": "f/t1.fits", "width": 100, "height": 100})
        for reply in (composite, png, fits_reply, preview):
            assert reply.status_code == 200, reply.text
        answers[name] = (composite.content, png.content, fits_reply.content, preview.content)
    local, dask = answers["local"], answers["dask"]
    assert dask[0] == local[0]
    assert dask[1] == local[1]
    assert dask[3] == local[3]
    with fits.open(io.BytesIO(local[2])) as a, fits.open(io.BytesIO(dask[2])) as b:
        np.testing.assert_array_equal(a[0].data, b[0].data)
        assert a[0].header["NINPUTS"] == b[0].header["NINPUTS"] == 3
        assert list(a["SRCMETA"].data["VALUE"]) == list(b["SRCMETA"].data["VALUE"])
    # the scratch output was streamed and deleted from storage
    assert not list((data_root / ".scratch").rglob("*.fits"))


def test_jobs_run_in_the_cluster_workers(cluster: LocalCluster) -> None:
    executor = JobExecutor(workers=2, queue_size=0, backend=DaskBackend(cluster.scheduler_address))

    async def scenario() -> set[int]:
        try:
            return set(await asyncio.gather(executor.run(os.getpid), executor.run(os.getpid)))
        finally:
            await executor.backend.aclose()  # type: ignore[attr-defined]

    pids = asyncio.run(scenario())
    assert os.getpid() not in pids
    with Client(cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
    assert pids <= worker_pids


def test_the_gate_counts_jobs_in_flight_on_the_cluster(cluster: LocalCluster) -> None:
    import time

    executor = JobExecutor(workers=1, queue_size=1, retry_after=9, backend=DaskBackend(cluster.scheduler_address))

    async def scenario() -> None:
        try:
            running = [asyncio.create_task(executor.run(time.sleep, 1.0)) for _ in range(2)]
            await asyncio.sleep(0.2)
            with pytest.raises(BusyError) as refused:
                await executor.run(time.sleep, 0)
            assert refused.value.headers == {"Retry-After": "9"}
            await asyncio.gather(*running)
        finally:
            await executor.backend.aclose()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_two_engines_share_one_cluster_wide_gate(cluster: LocalCluster) -> None:
    """Each engine alone would admit 4 jobs; the cluster admits 3 in all, whichever engine sends them."""
    import time

    engines = [
        JobExecutor(workers=2, queue_size=2, retry_after=4, backend=DaskBackend(cluster.scheduler_address, max_jobs=3))
        for _ in range(2)
    ]

    async def scenario() -> list[str]:
        try:
            first, second = engines
            running = [asyncio.create_task(first.run(time.sleep, 1.5)) for _ in range(2)]
            running.append(asyncio.create_task(second.run(time.sleep, 1.5)))
            await asyncio.sleep(0.5)
            refused = []
            for engine in engines:  # both have local room, the cluster has none
                with pytest.raises(BusyError) as busy:
                    await engine.run(time.sleep, 0)
                refused.append(busy.value.headers["Retry-After"])
            await asyncio.gather(*running)
            await second.run(time.sleep, 0)  # the leases came back
            return refused
        finally:
            for engine in engines:
                await engine.backend.aclose()  # type: ignore[attr-defined]

    assert asyncio.run(scenario()) == ["4", "4"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_scheduler_is_503_with_retry_after(data_root: Path, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    with _client(data_root, tmp_path, DASK_SCHEDULER_ADDRESS=address, DASK_CONNECT_TIMEOUT=1) as client:
        reply = client.get("/preview/x", params={"file_path": "f/t0.fits"})
        health = client.get("/health")
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "5"
    assert "cluster" in reply.json()["detail"]
    assert health.status_code == 200


def crash_once(flag: str) -> int:
    """Kill the worker that runs it the first time, then succeed (module level: it pickles)."""
    marker = Path(flag)
    if not marker.exists():
        marker.write_text("crashed")
        os._exit(1)
    return os.getpid()


def crash_always() -> None:
    """Kill every worker that runs it."""
    os._exit(1)


def test_a_killed_worker_is_retried_and_a_job_that_always_kills_is_503(cluster: LocalCluster, tmp_path: Path) -> None:
    executor = JobExecutor(workers=2, queue_size=0, backend=DaskBackend(cluster.scheduler_address, retry_after=3))

    async def scenario() -> int:
        try:
            pid = await executor.run(crash_once, str(tmp_path / "flag"))
            with pytest.raises(WorkerCrashedError) as crashed:
                await executor.run(crash_always)
            assert crashed.value.headers == {"Retry-After": "3"}
            return pid
        finally:
            await executor.backend.aclose()  # type: ignore[attr-defined]

    assert asyncio.run(scenario()) > 0
    cluster.wait_for_workers(2, timeout=180)  # the nanny restarted the dead workers (slow on a loaded machine)


def test_unreachable_backend_alone_raises_cluster_unavailable() -> None:
    backend = DaskBackend(f"tcp://127.0.0.1:{_free_port()}", connect_timeout=0.5)
    with pytest.raises(ClusterUnavailableError):
        asyncio.run(backend.run(os.getpid, label="probe"))
