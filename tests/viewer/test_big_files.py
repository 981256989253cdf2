"""Big files are served, not refused: budgets count what a read holds, not the file's pixels.

A 16 384² float32 file (1 GiB, written sparse: four bands of sky, noise and stars, zeros
elsewhere) has more pixels than the default ``MAX_FITS_ARRAY_ELEMENTS`` (200 M), yet the
banded, downscaled reads of preview, histogram and pixel data hold a few million values, so they
answer 200 through the HTTP path. Source detection, which needs the full-resolution plane, answers
413 naming the largest image it accepts. A gzip-compressed file keeps its declared-size check.
"""

from __future__ import annotations

import base64
import gzip
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.analysis.jobs import MAX_DETECTION_PIXELS
from main import create_app
from tests.support.big_fits import write_sparse_image
from tests.support.engine_settings import make_settings

SIDE = 16_384
SKY = 20.0


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("big") / "data"
    root.mkdir()
    write_sparse_image(root / "big_i2d.fits", SIDE, sky=SKY)
    yield root
    shutil.rmtree(root, ignore_errors=True)  # 1 GiB apparent size: do not leave it for the session


@pytest.fixture(scope="module")
def client(big_root: Path) -> Iterator[TestClient]:
    settings = make_settings(big_root)
    assert settings.max_fits_array_elements < SIDE * SIDE  # the situation under test
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_preview_of_a_file_larger_than_the_element_budget(client: TestClient) -> None:
    reply = client.get("/preview/big", params={"file_path": "big_i2d.fits", "width": 512, "height": 512})
    assert reply.status_code == 200, reply.text
    image = Image.open(io.BytesIO(reply.content))
    assert image.size == (512, 512)
    gray = np.asarray(image.convert("L"), dtype=np.float64)[::-1]  # origin lower: row 0 is the first FITS row
    # the first filled band (FITS rows 0-255) is sky, the rows between bands are zero (darker or equal)
    assert gray[2].mean() > gray[64].mean()


def test_pixel_data_of_a_file_larger_than_the_element_budget(client: TestClient) -> None:
    reply = client.get("/pixeldata/big", params={"file_path": "big_i2d.fits", "max_size": 1024})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["original_shape"] == [SIDE, SIDE]
    assert body["preview_shape"] == [1024, 1024]
    assert body["scale_factor"] == SIDE / 1024
    pixels = np.frombuffer(base64.b64decode(body["pixels"]), dtype="<f4").reshape(1024, 1024)
    assert abs(float(np.median(pixels[4])) - SKY) < 1.0  # FITS rows 64-79: inside the first band
    assert float(np.abs(pixels[100]).max()) == 0.0  # FITS rows 1600-1615: between bands


def test_histogram_of_a_file_larger_than_the_element_budget(client: TestClient) -> None:
    reply = client.get("/histogram/big", params={"file_path": "big_i2d.fits", "bins": 64})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    stride = int(np.ceil(np.sqrt(SIDE * SIDE / 1_000_000)))
    sample = (-(-SIDE // stride)) ** 2  # every stride-th pixel of every stride-th row
    assert sum(body["histogram"]["counts"]) == sample
    assert sum(body["raw_histogram"]["counts"]) == sample
    assert body["raw_histogram"]["counts"][0] > sample // 2  # most of the plane is zero (the raw minimum)


def test_smoothed_histogram_samples_the_smoothed_4096_px_plane(client: TestClient) -> None:
    params = {"file_path": "big_i2d.fits", "bins": 64, "smooth_method": "gaussian", "smooth_sigma": 2.0}
    reply = client.get("/histogram/big", params=params)
    assert reply.status_code == 200, reply.text
    counts = reply.json()["histogram"]["counts"]
    assert sum(counts) == 820 * 820  # the 4096² stride plane, every 5th pixel of every 5th row


def test_thumbnail_of_a_big_file(client: TestClient) -> None:
    reply = client.post("/thumbnail", json={"file_path": "big_i2d.fits"})
    assert reply.status_code == 200
    png = base64.b64decode(reply.json()["thumbnail_base64"])
    assert Image.open(io.BytesIO(png)).size == (256, 256)


def test_detection_names_the_largest_image_it_accepts(client: TestClient) -> None:
    reply = client.post("/analysis/detect-sources", json={"file_path": "big_i2d.fits"})
    assert reply.status_code == 413
    detail = reply.json()["detail"]
    assert f"Image {SIDE}x{SIDE}" in detail
    assert f"at most {MAX_DETECTION_PIXELS} pixels" in detail


# --- compressed files keep the declared-size check ---------------------------------------------

SHAPE = (2048, 4096)  # 8.4 M pixels: more than a band (4 M values), so a downscaled read holds less
BUDGET = 6_000_000


@pytest.fixture(scope="module")
def small_budget(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("budget") / "data"
    root.mkdir()
    plain = write_sparse_image(root / "plain.fits", *SHAPE, filled_bands=2)
    with plain.open("rb") as source, gzip.open(root / "packed.fits.gz", "wb", compresslevel=1) as target:
        shutil.copyfileobj(source, target)
    app = create_app(make_settings(root, MAX_FITS_ARRAY_ELEMENTS=BUDGET))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("endpoint", ["preview", "histogram", "pixeldata"])
def test_uncompressed_file_over_the_budget_is_read_in_bands(small_budget: TestClient, endpoint: str) -> None:
    params = {"file_path": "plain.fits", "width": 500, "height": 500, "max_size": 1000}
    reply = small_budget.get(f"/{endpoint}/x", params=params)
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("endpoint", ["preview", "histogram", "pixeldata"])
def test_gzip_file_over_the_budget_is_refused_by_its_declared_size(small_budget: TestClient, endpoint: str) -> None:
    params = {"file_path": "packed.fits.gz", "width": 500, "height": 500, "max_size": 1000}
    reply = small_budget.get(f"/{endpoint}/x", params=params)
    assert reply.status_code == 413
    assert "too large" in reply.json()["detail"]


def test_full_resolution_read_still_counts_the_whole_plane(small_budget: TestClient) -> None:
    # 4096 px on the longer side at max_size 4096: factor 1, the output alone is 8.4 M values
    reply = small_budget.get("/pixeldata/x", params={"file_path": "plain.fits", "max_size": 4096})
    assert reply.status_code == 413


def test_histogram_counts_the_documented_grid_sample(small_budget: TestClient) -> None:
    """The raw histogram is that of every n-th pixel of every n-th row, n = ceil(sqrt(pixels / 1e6))."""
    from astropy.io import fits

    root = Path(small_budget.app.state.settings.storage_base_path)  # type: ignore[attr-defined]
    with fits.open(root / "plain.fits") as hdul:
        grid = np.asarray(hdul["SCI"].data[::3, ::3], dtype=np.float64)
    normalised = (grid - grid.min()) / (grid.max() - grid.min())
    expected, _ = np.histogram(normalised, bins=50, range=(0.0, 1.0))
    body = small_budget.get("/histogram/x", params={"file_path": "plain.fits", "bins": 50}).json()
    counts = np.asarray(body["raw_histogram"]["counts"])
    assert counts.sum() == grid.size
    assert np.abs(counts - expected).sum() <= 4  # values within rounding of a bin edge may move
