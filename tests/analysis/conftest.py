"""Analysis fixtures: one storage root of real FITS files per module, a TestClient app and a live engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from fastapi.testclient import TestClient

from main import create_app
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import (
    exposure_edge_field,
    gaussian_stars,
    write_cube,
    write_image,
    write_weighted_image,
)
from tests.support.live_server import LiveServer
from tests.support.real_data import copy_corpus

IMAGE_SHAPE = (90, 120)
N_TABLE_ROWS = 1234


def image_data() -> np.ndarray:
    data = np.random.default_rng(3).normal(50.0, 5.0, IMAGE_SHAPE).astype(np.float32)
    data[40:50, 60:80] = np.nan
    return data


def stars() -> tuple[np.ndarray, np.ndarray]:
    return gaussian_stars((200, 200), n_stars=25, flux_range=(500.0, 5000.0), seed=9)


def table_columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    n = N_TABLE_ROWS
    flux = rng.uniform(0, 100, n)
    flux[::97] = np.nan
    flux[5] = np.inf
    names = np.array([f"src-{i:04d}{'-Galaxy' if i % 10 == 0 else ''}" for i in range(n)])
    return {
        "ID": np.arange(n, dtype=np.int32),
        "NAME": names,
        "FLUX": flux,
        "MAG": rng.uniform(15, 25, n).astype(np.float32),
        "VEC": rng.normal(0, 1, (n, 3)),
        "GOOD": (np.arange(n) % 3 == 0),
    }


def write_catalog(path: Path) -> Path:
    cols = table_columns()
    bintable = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="ID", format="J", array=cols["ID"]),
            fits.Column(name="NAME", format="20A", array=cols["NAME"]),
            fits.Column(name="FLUX", format="D", unit="Jy", disp="F10.3", array=cols["FLUX"]),
            fits.Column(name="MAG", format="1E", unit="mag", array=cols["MAG"]),
            fits.Column(name="VEC", format="3D", array=cols["VEC"]),
            fits.Column(name="GOOD", format="L", array=cols["GOOD"]),
        ],
        name="CAT",
    )
    ascii_table = fits.TableHDU.from_columns(
        [
            fits.Column(name="A", format="I5", array=np.array([3, 1, 2])),
            fits.Column(name="B", format="F8.2", array=np.array([1.5, 2.5, 0.5])),
        ],
        name="ASC",
    )
    image = fits.ImageHDU(np.zeros((4, 4), dtype=np.float32), name="SCI")
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), bintable, image, ascii_table]).writeto(path, overwrite=True)
    return path


def spectrum_columns() -> dict[str, np.ndarray]:
    n = 200
    wave = np.linspace(1.0, 5.0, n)
    flux = np.sin(wave) + 2
    flux[10] = np.nan
    return {"WAVELENGTH": wave, "FLUX": flux, "FLUX_ERROR": np.full(n, 0.1), "DQ": np.zeros(n, dtype=np.int32)}


def write_spectrum(path: Path) -> Path:
    cols = spectrum_columns()
    n = cols["WAVELENGTH"].size
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="WAVELENGTH", format="D", unit="um", array=cols["WAVELENGTH"]),
            fits.Column(name="FLUX", format="D", unit="Jy", array=cols["FLUX"]),
            fits.Column(name="FLUX_ERROR", format="D", unit="Jy", array=cols["FLUX_ERROR"]),
            fits.Column(name="FLUX_VAR_POISSON", format="D", array=np.full(n, 0.01)),
            fits.Column(name="SURF_BRIGHT", format="2D", array=np.ones((n, 2))),  # not 1-D: left out
            fits.Column(name="DQ", format="J", array=cols["DQ"]),
            fits.Column(name="COMMENT_X", format="8A", array=np.array(["x"] * n)),  # not spectral: left out
        ],
        name="EXTRACT1D",
    )
    no_wave = fits.BinTableHDU.from_columns([fits.Column(name="FLUX", format="D", array=np.ones(5))], name="NOWAVE")
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), table, no_wave]).writeto(path, overwrite=True)
    return path


def build_storage(root: Path) -> dict[str, str]:
    """Write the module's files under ``root``; return ``{name: storage key}``."""
    write_image(root / "img" / "image_i2d.fits", image_data())
    write_image(root / "img" / "stars_i2d.fits", stars()[0])
    write_image(root / "img" / "allnan_i2d.fits", np.full((32, 32), np.nan, dtype=np.float32))
    cube = np.stack([np.full((20, 30), k, dtype=np.float32) for k in range(5)])
    write_cube(root / "cube" / "cube_s3d.fits", cube)
    write_catalog(root / "tab" / "catalog.fits")
    write_spectrum(root / "spec" / "spec_x1d.fits")
    data, weight, _, _ = exposure_edge_field()
    write_weighted_image(root / "img" / "edge_i2d.fits", data, weight)
    write_weighted_image(root / "img" / "edge_wht_only_i2d.fits", data, weight, with_err=False)
    copy_corpus(root / "real", ["m13"])
    (root / "a_directory").mkdir()
    return {
        "edge": "img/edge_i2d.fits",
        "edge_wht": "img/edge_wht_only_i2d.fits",
        "m13": "real/m13.fits",
        "image": "img/image_i2d.fits",
        "stars": "img/stars_i2d.fits",
        "allnan": "img/allnan_i2d.fits",
        "cube": "cube/cube_s3d.fits",
        "catalog": "tab/catalog.fits",
        "spectrum": "spec/spec_x1d.fits",
        "directory": "a_directory",
    }


@pytest.fixture(scope="module")
def analysis_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("analysis") / "data"
    root.mkdir()
    return root, build_storage(root)


@pytest.fixture(scope="module")
def keys(analysis_root: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return analysis_root[1]


@pytest.fixture(scope="module")
def client(analysis_root: tuple[Path, dict[str, str]]) -> Iterator[TestClient]:
    app = create_app(make_settings(analysis_root[0]))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live_engine(analysis_root: tuple[Path, dict[str, str]]) -> Iterator[LiveServer]:
    """The real engine (uvicorn + one worker process) on the module's storage root."""
    root = analysis_root[0]
    env = {
        "STORAGE_PROVIDER": "local",
        "STORAGE_BASE_PATH": str(root),
        "SEMANTIC_DATA_DIR": str(root / "semantic"),
        "STORAGE_TEMP_CACHE_DIR": str(root.parent / "cache"),
        "ENGINE_WORKERS": "1",
    }
    with LiveServer("main", env=env) as server:
        yield server
