"""Stateless replicas: two engine processes, one S3 store (moto's server), one Dask cluster.

Any request to either replica gives the same bytes; an asynchronous job submitted to one is
watched, cancelled and fetched through the other; a file replaced in the store is never served
from a stale channel cache.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from astropy.io import fits
from distributed import LocalCluster

from tests.support.dask_cluster import local_cluster
from tests.support.fits_factory import gaussian_stars, make_wcs
from tests.support.live_server import LiveServer
from tests.support.request_bodies import channel, mosaic_body, request_body
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, S3Server

BUCKET = "engine-replicas"
KEYS = [f"tiles/t{i}.fits" for i in range(4)]


def tile_bytes(index: int, seed: int | None = None) -> bytes:
    dx, dy = [(0, 0), (700, 0), (0, 700), (700, 700)][index]
    wcs = make_wcs((900, 900), ra=150.0, dec=2.0, pixel_scale_arcsec=0.1)
    wcs.wcs.crpix = np.asarray(wcs.wcs.crpix) - np.array([dx, dy], dtype=float)
    data = gaussian_stars((900, 900), n_stars=40, seed=index if seed is None else seed)[0].astype(np.float32)
    buffer = io.BytesIO()
    fits.PrimaryHDU(data, header=wcs.to_header()).writeto(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    s3_server.create_bucket(BUCKET)
    client = s3_server.client()
    for index, key in enumerate(KEYS):
        client.put_object(Bucket=BUCKET, Key=key, Body=tile_bytes(index))
    return BUCKET


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(900 * 1000 * 1000) as local:
        yield local


@pytest.fixture(scope="module")
def replicas(
    s3_server: S3Server, bucket: str, cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    servers = []
    for name in ("a", "b"):
        local = tmp_path_factory.mktemp(f"replica-{name}")  # nothing shared on disk: only S3 and the cluster
        env = {
            "STORAGE_PROVIDER": "s3",
            "S3_BUCKET_NAME": bucket,
            "S3_ENDPOINT": s3_server.endpoint,
            "S3_ACCESS_KEY": ACCESS_KEY,
            "S3_SECRET_KEY": SECRET_KEY,
            "STORAGE_BASE_PATH": str(local / "data"),
            "STORAGE_TEMP_CACHE_DIR": str(local / "cache"),
            "COMPOSITE_CACHE_DIR": str(local / "composite-cache"),
            "SEMANTIC_DATA_DIR": str(local / "semantic"),
            "MAST_DOWNLOAD_DIR": str(local / "mast"),
            "DASK_SCHEDULER_ADDRESS": cluster.scheduler_address,
            "ENGINE_JOB_MEMORY_MB": "310",  # the mosaic is built by blocks
            "ENGINE_ASYNC_JOB_HEARTBEAT_SECONDS": "0.3",
        }
        servers.append(LiveServer("main", env=env).start())
    try:
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def undated(content: bytes) -> bytes:
    """The FITS bytes with the ``DATE`` card's value (when the file was written) blanked out."""
    return re.sub(rb"DATE    = '[0-9T:-]{19}'", b"DATE    = '" + b"-" * 19 + b"'", content)


def post(server: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, timeout=180)


def poll(server: LiveServer, job_id: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    end = time.monotonic() + 180
    while time.monotonic() < end:
        seen.append(httpx.get(f"{server.url}/jobs/{job_id}", timeout=30).json())
        if seen[-1]["status"] in ("completed", "failed", "cancelled"):
            return seen
        time.sleep(0.1)
    raise AssertionError(seen[-1])


def test_both_replicas_give_the_same_bytes(replicas: tuple[LiveServer, LiveServer]) -> None:
    a, b = replicas
    composite = request_body([channel(KEYS[:2], hue=0), channel(KEYS[2:], hue=200)])
    first = post(a, "/composite/generate-nchannel", composite)
    second = post(b, "/composite/generate-nchannel", composite)
    assert first.status_code == second.status_code == 200, first.text
    assert first.content == second.content
    mosaic = mosaic_body(KEYS, combine_method="mean")
    first, second = post(a, "/mosaic/generate", mosaic), post(b, "/mosaic/generate", mosaic)
    assert first.status_code == second.status_code == 200, first.text
    assert int(first.headers["x-mosaic-blocks"]) > 1
    assert undated(first.content) == undated(second.content)
    assert undated(first.content) != first.content  # the card was there
    png = mosaic_body(KEYS, output_format="png", width=400, height=400)
    assert post(a, "/mosaic/generate", png).content == post(b, "/mosaic/generate", png).content


def test_a_job_submitted_to_one_replica_is_watched_and_fetched_on_the_other(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    a, b = replicas
    body = mosaic_body(KEYS, combine_method="median")
    direct = post(a, "/mosaic/generate", body)
    job = post(a, "/jobs/mosaic", body).json()
    seen = poll(b, job["job_id"])
    assert seen[-1]["status"] == "completed", seen[-1]
    assert [s["fraction"] for s in seen] == sorted(s["fraction"] for s in seen)
    assert seen[-1]["blocks_done"] == seen[-1]["blocks_total"] == int(direct.headers["x-mosaic-blocks"])
    result = httpx.get(f"{b.url}/jobs/{job['job_id']}/result", timeout=60)
    assert result.status_code == 200
    assert undated(result.content) == undated(direct.content)


def test_a_job_cancelled_through_the_other_replica_stops(replicas: tuple[LiveServer, LiveServer]) -> None:
    a, b = replicas
    job = post(a, "/jobs/mosaic", mosaic_body(KEYS * 3, combine_method="median")).json()
    cancel = httpx.post(f"{b.url}/jobs/{job['job_id']}/cancel", timeout=30)
    assert cancel.status_code == 200, cancel.text
    final = poll(b, job["job_id"])[-1]
    assert final["status"] == "cancelled"
    assert httpx.get(f"{a.url}/jobs/{job['job_id']}/result", timeout=30).status_code == 409


def test_a_replaced_file_is_never_served_from_a_stale_cache(
    replicas: tuple[LiveServer, LiveServer], s3_server: S3Server, bucket: str
) -> None:
    a, _ = replicas
    key = "tiles/replaced.fits"
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key=key, Body=tile_bytes(0))
    body = request_body([channel([key], hue=0), channel(KEYS[1:2], hue=120)], background_neutralization=False)
    first = post(a, "/composite/generate-nchannel", body)
    again = post(a, "/composite/generate-nchannel", body)
    assert first.headers["x-composite-cache"].startswith("miss,")
    assert again.headers["x-composite-cache"] == "hit,hit"  # the S3 copy's version is stable: the cache works
    assert again.content == first.content
    client.put_object(Bucket=bucket, Key=key, Body=tile_bytes(0, seed=99))  # same sky, other stars
    replaced = post(a, "/composite/generate-nchannel", body)
    assert replaced.headers["x-composite-cache"] == "miss,hit"
    assert replaced.content != first.content
