"""Viewer fixtures: one storage root of real FITS files per module and a TestClient app on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from main import create_app
from tests.support.bad_files import write_bad_corpus
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import gaussian_stars, make_wcs, write_cube, write_image

IMAGE_SHAPE = (120, 200)  # ny, nx
CUBE_SHAPE = (7, 40, 60)


def marker_image(shape: tuple[int, int]) -> np.ndarray:
    """A star field with a bright block in the top-left corner of the sky (last FITS rows, first columns)."""
    data, _ = gaussian_stars(shape, n_stars=20, seed=5)
    ny, _ = shape
    data[ny - 10 :, :10] = 1e5
    return data


def cube_data() -> np.ndarray:
    """Cube whose slice k has constant value k (plus a small gradient so stretches are well defined)."""
    nz, ny, nx = CUBE_SHAPE
    ramp = np.linspace(0.0, 0.5, nx, dtype=np.float32)[None, :].repeat(ny, 0)
    return np.stack([ramp + k for k in range(nz)]).astype(np.float32)


def build_storage(root: Path) -> dict[str, str]:
    """Write the module's files under ``root``; return ``{name: storage key}``."""
    write_image(root / "img" / "stars_i2d.fits", marker_image(IMAGE_SHAPE), wcs=make_wcs(IMAGE_SHAPE, rotation_deg=25))
    write_cube(root / "cube" / "cube_s3d.fits", cube_data())
    (root / "a_directory").mkdir()
    bad = write_bad_corpus(root / "bad")
    keys = {"image": "img/stars_i2d.fits", "cube": "cube/cube_s3d.fits", "directory": "a_directory"}
    keys.update({f"bad_{name}": str(path.relative_to(root)) for name, path in bad.items()})
    return keys


@pytest.fixture(scope="session")
def viewer_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Written once per session (the bad-file corpus takes several seconds) and only read by tests."""
    root = tmp_path_factory.mktemp("viewer") / "data"
    root.mkdir()
    return root, build_storage(root)


@pytest.fixture(scope="module")
def keys(viewer_root: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return viewer_root[1]


@pytest.fixture(scope="module")
def client(viewer_root: tuple[Path, dict[str, str]]) -> Iterator[TestClient]:
    app = create_app(make_settings(viewer_root[0]))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
