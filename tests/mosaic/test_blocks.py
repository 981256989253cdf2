"""Mosaics by output blocks: the same result as one pass, for every combine method, through the API."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fastapi.testclient import TestClient

from app.mosaic.jobs import MosaicJob, MosaicPlan, block_side, build_mosaic, plan_mosaic
from app.processing.enhancement import StretchSettings
from main import create_app
from tests.mosaic.conftest import TILES
from tests.support.engine_settings import make_settings
from tests.support.jobs import run_job
from tests.support.request_bodies import mosaic_body

TILE_KEYS = [f"tiles/t{i}.fits" for i in range(len(TILES))]
#: A job budget so small that blocks are 256 px on a side: the test grid becomes several blocks.
SMALL_BUDGET_MB = 64


def _post(client: TestClient, method: str, output_format: str = "fits") -> tuple[int, dict[str, str], bytes]:
    reply = client.post(
        "/mosaic/generate", json=mosaic_body(TILE_KEYS, combine_method=method, output_format=output_format)
    )
    return reply.status_code, dict(reply.headers), reply.content


@pytest.fixture(scope="module")
def blocked(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    settings = make_settings(data_root, tmp_path_factory.mktemp("blocked"), ENGINE_JOB_MEMORY_MB=SMALL_BUDGET_MB)
    with TestClient(create_app(settings)) as client:
        yield client  # type: ignore[misc]


def test_block_side_follows_the_budget() -> None:
    mib = 1024 * 1024
    assert block_side(64 * mib, 1000) == 256
    # 3 GiB less the 300 MiB baseline, at 48 bytes per block pixel
    assert block_side(3072 * mib, 1000) == math.isqrt((3072 - 300) * mib // 48)
    # the assembly holds one band of blocks: a very wide grid gets shorter blocks
    assert block_side(3072 * mib, 1_000_000) < 300


def test_the_plan_cuts_the_grid_and_lists_the_inputs_of_each_block(data_root: Path) -> None:
    job = MosaicJob(tuple(TILE_KEYS), "fits", 95, None, None, "mean", "gray", StretchSettings(), 10**9,
                    memory_budget_bytes=SMALL_BUDGET_MB * 1024 * 1024)  # fmt: skip
    _, plan = run_job(data_root, plan_mosaic, job)
    assert len(plan.blocks) > 1
    covered = np.zeros(plan.grid.shape, dtype=int)
    for block in plan.blocks:
        y0, y1, x0, x1 = block.bbox
        covered[y0:y1, x0:x1] += 1
        assert max(y1 - y0, x1 - x0) <= 256
    assert (covered == 1).all()  # the blocks tile the grid exactly once
    assert any(len(b.inputs) > 1 for b in plan.blocks)  # overlaps are co-added inside a block
    assert isinstance(run_job(data_root, build_mosaic, job), MosaicPlan)


@pytest.mark.parametrize("method", ["mean", "sum", "first", "last", "min", "max", "median"])
def test_blocks_give_the_same_mosaic_as_one_pass(client: TestClient, blocked: TestClient, method: str) -> None:
    status, headers, whole = _post(client, method)
    assert status == 200
    assert headers["x-mosaic-blocks"] == "1"
    status, headers, parts = _post(blocked, method)
    assert status == 200
    assert int(headers["x-mosaic-blocks"]) > 1
    with fits.open(io.BytesIO(whole)) as one, fits.open(io.BytesIO(parts)) as many:
        a, b = one[0].data, many[0].data
        assert a.shape == b.shape
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        ok = np.isfinite(a)
        rms = float(np.sqrt(np.mean(a[ok].astype(np.float64) ** 2)))
        assert float(np.max(np.abs(a[ok] - b[ok]))) < 1e-4 * rms
        assert one[0].header["COMBMETH"] == many[0].header["COMBMETH"] == method
        assert many[0].header["NAXIS1"] == a.shape[1]
        assert list(one["SRCMETA"].data["KEYWORD"]) == list(many["SRCMETA"].data["KEYWORD"])


def test_blocks_render_the_same_picture(client: TestClient, blocked: TestClient) -> None:
    _, _, whole = _post(client, "mean", "png")
    status, headers, parts = _post(blocked, "mean", "png")
    assert status == 200
    assert int(headers["x-mosaic-blocks"]) > 1
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(whole)), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(parts)), dtype=np.int16)
    assert a.shape == b.shape
    assert (np.abs(a - b) <= 1).mean() > 0.999


def test_no_scratch_is_left_behind(blocked: TestClient, data_root: Path) -> None:
    for method in ("mean", "median"):
        assert _post(blocked, method)[0] == 200
    assert not [p for p in (data_root / ".scratch").rglob("*") if p.is_file()]


def _weighted_tile(path: Path, value: float, error: float, dx: int) -> None:
    from tests.support.fits_factory import make_wcs

    wcs = make_wcs((600, 600), ra=30.0, dec=-10.0, pixel_scale_arcsec=0.1)
    wcs.wcs.crpix = np.asarray(wcs.wcs.crpix) - np.array([dx, 0], dtype=float)
    header = wcs.to_header()
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.full((600, 600), value, np.float32), header=header, name="SCI"),
            fits.ImageHDU(np.full((600, 600), error, np.float32), header=header, name="ERR"),
        ]
    ).writeto(path)


def test_inverse_variance_mean_by_blocks(tmp_path: Path) -> None:
    """Inputs with ERR are combined by inverse variance: where they overlap, 10±1 and 20±3 give 11."""
    root = tmp_path / "data"
    _weighted_tile(root / "w" / "a.fits", 10.0, 1.0, 0)
    _weighted_tile(root / "w" / "b.fits", 20.0, 3.0, 300)
    body = mosaic_body(["w/a.fits", "w/b.fits"], combine_method="mean")
    results = []
    for budget in (3072, SMALL_BUDGET_MB):
        settings = make_settings(root, tmp_path / f"t{budget}", ENGINE_JOB_MEMORY_MB=budget)
        with TestClient(create_app(settings)) as client:
            reply = client.post("/mosaic/generate", json=body)
        assert reply.status_code == 200, reply.text
        with fits.open(io.BytesIO(reply.content)) as hdul:
            results.append((int(reply.headers["x-mosaic-blocks"]), hdul[0].data.astype(np.float64)))
    (one_blocks, whole), (many_blocks, parts) = results
    assert one_blocks == 1
    assert many_blocks > 1
    np.testing.assert_allclose(parts, whole, rtol=1e-6, equal_nan=True)
    values = whole[np.isfinite(whole)]
    expected = (10.0 / 1.0 + 20.0 / 9.0) / (1.0 + 1.0 / 9.0)
    assert np.isclose(values, expected, rtol=1e-4).mean() > 0.25  # the overlap (about a third of the grid)
    assert set(np.round(np.unique(np.round(values, 3)), 3)) <= {10.0, 20.0, round(expected, 3)}
