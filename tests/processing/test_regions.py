"""Region statistics against plain numpy on the same pixels (rectangle, ellipse, polygon, NaN, edges)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose

from app.analysis.jobs import region_statistics
from app.core.exceptions import FitsTooLargeError, InvalidRequestError, NoImageDataError
from app.processing.errors import InvalidInput
from app.processing.regions import (
    Ellipse,
    Polygon,
    Rectangle,
    bounding_box,
    finite_statistics,
    region_mask,
)
from tests.support.fits_factory import write_cube, write_image
from tests.support.jobs import on_file

NY, NX = 60, 80


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    data = np.random.default_rng(7).normal(100.0, 15.0, (NY, NX)).astype(np.float32)
    data[20:30, 30:45] = np.nan  # a NaN hole
    return data


@pytest.fixture(scope="module")
def image_path(tmp_path_factory: pytest.TempPathFactory, image: np.ndarray) -> Path:
    return write_image(tmp_path_factory.mktemp("regions") / "img.fits", image)


def expected(values: np.ndarray) -> dict[str, float]:
    v = values[np.isfinite(values)].astype(np.float64)
    return {
        "mean": v.mean(),
        "median": np.median(v),
        "std": v.std(),
        "min": v.min(),
        "max": v.max(),
        "sum": v.sum(),
        "pixel_count": v.size,
    }


def check(result: dict[str, float | int], values: np.ndarray) -> None:
    want = expected(values)
    assert result["pixel_count"] == want["pixel_count"]
    assert isinstance(result["pixel_count"], int)
    for key in ("mean", "median", "std", "min", "max", "sum"):
        assert_allclose(result[key], want[key], rtol=1e-9, atol=1e-6, err_msg=key)


def test_rectangle_matches_numpy(image_path: Path, image: np.ndarray) -> None:
    result = on_file(region_statistics, image_path, Rectangle(5, 10, 20, 15), max_elements=10**8)
    check(result, image[10:25, 5:25])


def test_rectangle_over_nan_hole_counts_finite_pixels_only(image_path: Path, image: np.ndarray) -> None:
    result = on_file(region_statistics, image_path, Rectangle(25, 15, 30, 20), max_elements=10**8)
    check(result, image[15:35, 25:55])
    assert result["pixel_count"] == 30 * 20 - 10 * 15


def test_rectangle_is_clamped_at_the_edges(image_path: Path, image: np.ndarray) -> None:
    result = on_file(region_statistics, image_path, Rectangle(NX - 5, NY - 3, 50, 50), max_elements=10**8)
    check(result, image[NY - 3 :, NX - 5 :])
    assert result["pixel_count"] == 15


def test_ellipse_matches_numpy(image_path: Path, image: np.ndarray) -> None:
    cx, cy, rx, ry = 40.3, 30.7, 12.5, 7.2
    yy, xx = np.mgrid[0:NY, 0:NX]
    mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    result = on_file(region_statistics, image_path, Ellipse(cx, cy, rx, ry), max_elements=10**8)
    check(result, image[mask])


def test_ellipse_clamped_at_corner(image_path: Path, image: np.ndarray) -> None:
    yy, xx = np.mgrid[0:NY, 0:NX]
    mask = ((xx - 0) / 6.0) ** 2 + ((yy - 0) / 4.0) ** 2 <= 1
    result = on_file(region_statistics, image_path, Ellipse(0, 0, 6, 4), max_elements=10**8)
    check(result, image[mask])


def test_polygon_axis_aligned_includes_its_boundary(image_path: Path, image: np.ndarray) -> None:
    poly = Polygon(((2, 3), (10, 3), (10, 8), (2, 8)))
    check(on_file(region_statistics, image_path, poly, max_elements=10**8), image[3:9, 2:11])


def test_polygon_triangle_matches_half_plane_test(image_path: Path, image: np.ndarray) -> None:
    verts = [(5.5, 40.2), (60.3, 45.1), (30.7, 58.9)]  # counter-clockwise in (x, y)
    yy, xx = np.mgrid[0:NY, 0:NX].astype(float)
    inside = np.ones((NY, NX), dtype=bool)
    for (xa, ya), (xb, yb) in zip(verts, verts[1:] + verts[:1], strict=True):
        inside &= (xb - xa) * (yy - ya) - (yb - ya) * (xx - xa) >= 0
    result = on_file(region_statistics, image_path, Polygon(tuple(verts)), max_elements=10**8)
    check(result, image[inside])
    assert result["pixel_count"] > 100


def test_concave_polygon_mask() -> None:
    # An L shape: the notch must stay outside.
    poly = Polygon(((0, 0), (9, 0), (9, 3), (3, 3), (3, 9), (0, 9)))
    box = bounding_box(poly, (20, 20))
    mask = region_mask(poly, box)
    assert mask[0:4, 0:10].all()
    assert mask[0:10, 0:4].all()
    assert not mask[5:10, 5:10].any()
    assert mask.sum() == 4 * 10 + 6 * 4


def test_region_outside_image_has_no_valid_pixels(image_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="No valid pixels"):
        on_file(region_statistics, image_path, Rectangle(NX + 5, 0, 10, 10), max_elements=10**8)


def test_all_nan_region_has_no_valid_pixels(image_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="No valid pixels in selected region"):
        on_file(region_statistics, image_path, Rectangle(31, 21, 5, 5), max_elements=10**8)


def test_bounding_box_budget_is_checked_before_reading(image_path: Path) -> None:
    with pytest.raises(FitsTooLargeError):
        on_file(region_statistics, image_path, Rectangle(0, 0, 50, 50), max_elements=100)


def test_cube_uses_middle_slice(tmp_path: Path) -> None:
    cube = np.stack([np.full((20, 30), k, dtype=np.float32) for k in range(5)])
    path = write_cube(tmp_path / "cube.fits", cube)
    result = on_file(region_statistics, path, Rectangle(0, 0, 30, 20), max_elements=10**8)
    assert result["mean"] == 2.0
    assert result["pixel_count"] == 600


def test_hdu_index_selects_and_validates(image_path: Path) -> None:
    with pytest.raises(InvalidRequestError):
        on_file(region_statistics, image_path, Rectangle(0, 0, 5, 5), hdu_index=9, max_elements=10**8)
    with pytest.raises(NoImageDataError):
        on_file(region_statistics, image_path, Rectangle(0, 0, 5, 5), hdu_index=0, max_elements=10**8)
    result = on_file(region_statistics, image_path, Rectangle(0, 0, 5, 5), hdu_index=1, max_elements=10**8)
    assert result["pixel_count"] == 25


def test_integer_image_is_scaled(tmp_path: Path) -> None:
    physical = np.arange(100, dtype=np.float64).reshape(10, 10) * 2.0 + 10.0
    hdu = fits.ImageHDU(data=physical.copy(), name="SCI")
    hdu.scale("int16", bscale=2.0, bzero=10.0)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "int.fits")
    result = on_file(region_statistics, tmp_path / "int.fits", Rectangle(0, 0, 10, 10), max_elements=10**8)
    check(result, physical)


def test_finite_statistics_rejects_empty() -> None:
    with pytest.raises(InvalidInput):
        finite_statistics(np.array([np.nan, np.inf]))


def test_banded_reading_gives_the_same_result(
    image_path: Path, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.processing.regions as regions

    monkeypatch.setattr(regions, "BAND_PIXELS", 37)  # many bands, odd sizes, banded variance too
    yy, xx = np.mgrid[0:NY, 0:NX]
    mask = ((xx - 40) / 30.0) ** 2 + ((yy - 30) / 25.0) ** 2 <= 1
    check(on_file(region_statistics, image_path, Ellipse(40, 30, 30, 25), max_elements=10**8), image[mask])
    check(on_file(region_statistics, image_path, Rectangle(0, 0, NX, NY), max_elements=10**8), image)
