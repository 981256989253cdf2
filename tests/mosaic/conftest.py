"""Fixtures of the mosaic tests: overlapping tiles cut from one large synthetic image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from fastapi.testclient import TestClient

from app.core.settings import Settings
from main import create_app
from tests.support.fits_factory import gaussian_stars, make_wcs, write_image

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


def make_settings(root: Path, tmp: Path, **extra: object) -> Settings:
    return Settings(
        STORAGE_PROVIDER="local",
        STORAGE_BASE_PATH=root,
        MAST_DOWNLOAD_DIR=root / "mast",
        SEMANTIC_DATA_DIR=root / "semantic",
        STORAGE_TEMP_CACHE_DIR=tmp / "cache",
        ENGINE_EXECUTOR="thread",
        LOG_FORMAT="text",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def client(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(make_settings(data_root, tmp_path_factory.mktemp("m")))
    with TestClient(app) as test_client:
        yield test_client


def mosaic_body(keys: list[str], **kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "files": [
            {"file_path": k, "stretch": "asinh", "black_point": 0, "white_point": 1, "gamma": 1, "asinh_a": 0.1}
            for k in keys
        ],
        "output_format": "fits",
        "quality": 95,
        "width": None,
        "height": None,
        "combine_method": "mean",
        "cmap": "grayscale",
    }
    body.update(kw)
    return body


TILE_KEYS = [f"tiles/t{i}.fits" for i in range(len(TILES))]
