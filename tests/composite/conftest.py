"""Fixtures of the composite tests: real FITS files with stars at known sky positions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from main import create_app
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import gaussian_stars, make_wcs, write_image
from tests.support.live_server import LiveServer
from tests.support.request_bodies import channel, request_body

__all__ = ["STAR_DEC", "STAR_RA", "channel", "make_settings", "request_body", "star_image"]

STAR_RA, STAR_DEC = 274.7005, -13.7996


def star_image(
    shape: tuple[int, int],
    *,
    rotation_deg: float = 0.0,
    pixel_scale_arcsec: float = 0.063,
    ra: float = 274.7,
    dec: float = -13.8,
    star: tuple[float, float] = (STAR_RA, STAR_DEC),
    flux: float = 20000.0,
    seed: int = 0,
    n_stars: int = 20,
) -> tuple[np.ndarray, object]:
    """A noisy star field plus one bright star at ``star`` (RA, Dec); returns data and WCS."""
    wcs = make_wcs(shape, ra=ra, dec=dec, pixel_scale_arcsec=pixel_scale_arcsec, rotation_deg=rotation_deg)
    data, _ = gaussian_stars(shape, n_stars=n_stars, seed=seed, flux_range=(200.0, 800.0))
    x, y = wcs.world_to_pixel_values(*star)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    sigma = 1.5
    data += (flux / (2 * np.pi * sigma**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))).astype(
        np.float32
    )
    return data, wcs


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("composite-data")
    files = {
        "a.fits": dict(rotation_deg=0.0, seed=1),
        "b.fits": dict(rotation_deg=17.0, pixel_scale_arcsec=0.05, seed=2),
        "c.fits": dict(rotation_deg=-9.0, pixel_scale_arcsec=0.08, ra=274.7003, seed=3),
    }
    for name, kwargs in files.items():
        data, wcs = star_image((160, 200), **kwargs)  # type: ignore[arg-type]
        write_image(root / "ch" / name, data, wcs=wcs)  # type: ignore[arg-type]
        data, wcs = star_image((160, 200), n_stars=0, **kwargs)  # type: ignore[arg-type]
        write_image(root / "single" / name, data, wcs=wcs)  # type: ignore[arg-type]
    # a second file of channel a, shifted (multi-file channel)
    data, wcs = star_image((160, 200), ra=274.7012, seed=4)
    write_image(root / "ch" / "a2.fits", data, wcs=wcs)  # type: ignore[arg-type]
    # a file without WCS and one without image data
    write_image(root / "bad" / "nowcs.fits", np.ones((32, 32), dtype=np.float32), wcs=None)
    from astropy.io import fits

    fits.HDUList([fits.PrimaryHDU()]).writeto(root / "bad" / "empty.fits")
    (root / "adir").mkdir()
    return root


@pytest.fixture(scope="module")
def client(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("c")
    app = create_app(make_settings(data_root, tmp, COMPOSITE_CACHE_DIR=tmp / "composite-cache"))
    with TestClient(app) as test_client:
        yield test_client


def live_engine(root: Path, workers: int, **env: str) -> LiveServer:
    """A real uvicorn engine (process pool of ``workers``) over two rotated star fields ``f0/f1.fits``."""
    for i, rotation in enumerate((0.0, 20.0)):
        data, _ = gaussian_stars((128, 128), n_stars=30, seed=i)
        write_image(root / f"f{i}.fits", data, wcs=make_wcs((128, 128), rotation_deg=rotation, ra=274.7 + i * 1e-3))
    base = {
        "STORAGE_PROVIDER": "local",
        "STORAGE_BASE_PATH": str(root),
        "SEMANTIC_DATA_DIR": str(root / "semantic"),
        "ENGINE_EXECUTOR": "process",
        "ENGINE_WORKERS": str(workers),
    }
    return LiveServer("main", env={**base, **env})
