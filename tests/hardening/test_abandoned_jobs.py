"""Abandoned and endless jobs on a live engine: a client that leaves frees its worker, a deadline ends a job.

The engine has one worker and no queue, so a worker still busy with an abandoned job would answer
the next request with 429: a 200 shows the worker was freed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.fits_factory import make_wcs, write_image
from tests.support.live_server import LiveServer
from tests.support.request_bodies import mosaic_body

TILE = 3000
KEYS = [f"big/t{i}.fits" for i in range(12)]


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("abandoned")
    rng = np.random.default_rng(3)
    for index, key in enumerate(KEYS):  # twelve tiles over one patch of sky: a median of 12 at every pixel
        wcs = make_wcs((TILE, TILE), ra=80.0 + 1e-4 * index, dec=-69.0, pixel_scale_arcsec=0.06)
        write_image(root / key, rng.normal(100.0, 5.0, (TILE, TILE)).astype(np.float32), wcs=wcs)
    write_image(root / "small.fits", rng.normal(size=(64, 64)).astype(np.float32), wcs=make_wcs((64, 64)))
    return root


def _env(root: Path, **extra: str) -> dict[str, str]:
    return {
        "STORAGE_BASE_PATH": str(root),
        "SEMANTIC_DATA_DIR": str(root / "semantic"),
        "ENGINE_WORKERS": "1",
        "ENGINE_QUEUE_SIZE": "0",
        "ENGINE_EXECUTOR": "process",
        **extra,
    }


@pytest.fixture(scope="module")
def engine(big_root: Path) -> Iterator[LiveServer]:
    with LiveServer("main", env=_env(big_root)) as server:
        yield server


def _thumbnail(server: LiveServer) -> int:
    return httpx.post(f"{server.url}/thumbnail", json={"file_path": "small.fits"}, timeout=60).status_code


def test_a_client_that_leaves_a_mosaic_frees_the_worker(engine: LiveServer) -> None:
    assert _thumbnail(engine) == 200  # the worker process exists
    body = mosaic_body(KEYS, combine_method="median")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{engine.url}/mosaic/generate", json=body, timeout=1.0)
    left = time.monotonic()
    while _thumbnail(engine) == 429:  # the worker is still taken
        assert time.monotonic() - left < 15, "the abandoned mosaic kept the worker"
        time.sleep(0.1)
    assert "path=/mosaic/generate status=499" in engine.logs()


def test_a_job_past_its_deadline_is_504_and_its_worker_is_freed(big_root: Path) -> None:
    with LiveServer("main", env=_env(big_root, ENGINE_JOB_DEADLINE_SECONDS="3")) as server:
        assert _thumbnail(server) == 200
        started = time.monotonic()
        reply = httpx.post(f"{server.url}/mosaic/generate", json=mosaic_body(KEYS, combine_method="median"), timeout=60)
        assert reply.status_code == 504
        assert "longer than 3 s" in reply.json()["detail"]
        assert time.monotonic() - started < 15
        assert _thumbnail(server) == 200  # not 429: the worker was killed and replaced
