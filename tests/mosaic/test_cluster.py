"""A mosaic too large for one worker, built by blocks on a Dask cluster whose workers stay within their memory limit.

The cluster (2 worker processes, 1 thread each, 900 MB each) is reached by address, as an operator's
``dask scheduler`` / ``dask worker --memory-limit 900MB`` would be. The output grid (about 31 M
pixels) would need more than twice a worker's limit in one process by the engine's own memory
model, so the engine cuts it into blocks; every worker's peak RSS (VmHWM) is read afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from distributed import Client, LocalCluster
from fastapi.testclient import TestClient

from app.mosaic.jobs import BLOCK_BYTES_PER_PIXEL, JOB_BASELINE_BYTES
from main import create_app
from tests.support.dask_cluster import local_cluster
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import make_wcs, write_image
from tests.support.request_bodies import mosaic_body

WORKER_LIMIT_BYTES = 900 * 1000 * 1000
TILE = 2900
OVERLAP = 200
BIG = 2 * TILE - OVERLAP  # 5600 x 5600 sky pixels


def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The sky brightness at big-image pixel ``(x, y)``: linear, so bilinear resampling reproduces it exactly."""
    return 100.0 + 1e-3 * x + 2e-3 * y


def peak_rss_bytes() -> int:
    """Return this process's peak resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


@pytest.fixture(scope="module")
def big_wcs() -> WCS:
    return make_wcs((BIG, BIG), ra=53.1, dec=-27.8, pixel_scale_arcsec=0.031)


@pytest.fixture(scope="module")
def tiles_root(tmp_path_factory: pytest.TempPathFactory, big_wcs: WCS) -> Path:
    root = tmp_path_factory.mktemp("cluster-mosaic")
    step = TILE - OVERLAP
    for row in range(2):
        for col in range(2):
            y0, x0 = row * step, col * step
            yy, xx = np.mgrid[y0 : y0 + TILE, x0 : x0 + TILE]
            wcs = big_wcs.deepcopy()
            wcs.wcs.crpix = np.asarray(wcs.wcs.crpix) - np.array([x0, y0], dtype=float)
            write_image(root / "tiles" / f"t{row}{col}.fits", field(xx, yy).astype(np.float32), wcs=wcs)
    return root


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(WORKER_LIMIT_BYTES) as local:
        yield local


def test_a_mosaic_larger_than_two_workers_is_built_by_blocks_within_their_limits(
    cluster: LocalCluster, tiles_root: Path, big_wcs: WCS, tmp_path: Path
) -> None:
    settings = make_settings(
        tiles_root, tmp_path, DASK_SCHEDULER_ADDRESS=cluster.scheduler_address, ENGINE_JOB_MEMORY_MB=700
    )
    keys = [f"tiles/t{r}{c}.fits" for r in range(2) for c in range(2)]
    with TestClient(create_app(settings)) as client:
        reply = client.post("/mosaic/generate", json=mosaic_body(keys, combine_method="mean"))
    assert reply.status_code == 200, reply.text
    assert int(reply.headers["x-mosaic-blocks"]) >= 4
    with fits.open(io.BytesIO(reply.content)) as hdul:
        data = hdul[0].data.astype(np.float64)
        wcs = WCS(hdul[0].header)
    ny, nx = data.shape
    # by the engine's memory model, this grid in one process needs more than twice a worker's limit
    assert JOB_BASELINE_BYTES + ny * nx * BLOCK_BYTES_PER_PIXEL > 2 * WORKER_LIMIT_BYTES
    assert np.isfinite(data).mean() > 0.95
    rng = np.random.default_rng(5)
    ys, xs = rng.integers(0, ny, 2000), rng.integers(0, nx, 2000)
    values = data[ys, xs]
    ok = np.isfinite(values)
    bx, by = big_wcs.world_to_pixel(wcs.pixel_to_world(xs[ok], ys[ok]))
    inside = (bx > 1) & (bx < BIG - 2) & (by > 1) & (by < BIG - 2)
    np.testing.assert_allclose(values[ok][inside], field(bx[inside], by[inside]), rtol=1e-5)
    with Client(cluster) as probe:
        peaks = probe.run(peak_rss_bytes)
    assert len(peaks) == 2
    print(  # the figures, with pytest -s
        f"grid {nx}x{ny} ({nx * ny / 1e6:.1f} M px), blocks {reply.headers['x-mosaic-blocks']}, "
        f"worker peak RSS {sorted(round(v / 1e6) for v in peaks.values())} MB, limit {WORKER_LIMIT_BYTES / 1e6:.0f} MB"
    )
    assert max(peaks.values()) < WORKER_LIMIT_BYTES, peaks
    assert not [p for p in (tiles_root / ".scratch").rglob("*") if p.is_file()]
