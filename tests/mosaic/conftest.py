"""Fixtures of the mosaic tests: overlapping tiles cut from one large synthetic image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from fastapi.testclient import TestClient

from main import create_app
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import gaussian_stars, make_wcs, write_image
from tests.support.request_bodies import mosaic_body

BIG_SHAPE = (300, 360)
#: (y0, x0, ny, nx) of each tile in the big image; they overlap.
TILES = ((0, 0, 170, 200), (0, 150, 170, 210), (120, 0, 180, 200), (120, 150, 180, 210))


def big_image() -> tuple[np.ndarray, WCS]:
    data, _ = gaussian_stars(BIG_SHAPE, n_stars=60, seed=7, fwhm=4.0, background=100.0, noise=0.5)
    yy, xx = np.mgrid[: BIG_SHAPE[0], : BIG_SHAPE[1]]
    data += (50 * np.sin(xx / 23.0) * np.cos(yy / 31.0)).astype(np.float32)
    return data, make_wcs(BIG_SHAPE, rotation_deg=12.0)


def tile_wcs(wcs: WCS, y0: int, x0: int) -> WCS:
    out = wcs.deepcopy()
    out.wcs.crpix = np.asarray(out.wcs.crpix) - np.array([x0, y0], dtype=float)
    return out


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mosaic-data")
    data, wcs = big_image()
    for i, (y0, x0, ny, nx) in enumerate(TILES):
        tile = data[y0 : y0 + ny, x0 : x0 + nx].copy()
        tile[:, :2] = 0.0  # exact-zero detector edge, must be masked
        write_image(
            root / "tiles" / f"t{i}.fits",
            tile,
            wcs=tile_wcs(wcs, y0, x0),
            header={"INSTRUME": "NIRCAM", "FILTER": "F200W" if i < 2 else "F444W", "TARGNAME": "M16"},
        )
    write_image(root / "bad" / "nowcs.fits", np.ones((16, 16), dtype=np.float32), wcs=None)
    fits.HDUList([fits.PrimaryHDU()]).writeto(root / "bad" / "empty.fits")
    big, _ = gaussian_stars((700, 700), n_stars=1, seed=1)
    write_image(root / "big" / "big.fits", big, wcs=make_wcs((700, 700)))
    (root / "adir").mkdir()
    return root


@pytest.fixture(scope="module")
def client(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(make_settings(data_root, tmp_path_factory.mktemp("m")))
    with TestClient(app) as test_client:
        yield test_client


__all__ = ["TILES", "TILE_KEYS", "big_image", "make_settings", "mosaic_body", "tile_wcs"]

TILE_KEYS = [f"tiles/t{i}.fits" for i in range(len(TILES))]
