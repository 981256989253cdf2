"""Smoothing filters: each method against a direct reference, NaN handling, validation."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.convolution import Box2DKernel, Gaussian2DKernel, convolve
from numpy.testing import assert_allclose
from scipy import ndimage

from app.processing.filters import SMOOTH_METHODS, smooth, validate_smoothing


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(3).normal(10.0, 2.0, (64, 72)).astype(np.float32)


def test_scipy_methods(image: np.ndarray) -> None:
    assert_allclose(
        smooth(image, "gaussian", sigma=1.5), ndimage.gaussian_filter(image, 1.5, mode="nearest", truncate=4.0)
    )
    assert_allclose(smooth(image, "median", size=5), ndimage.median_filter(image, size=5, mode="nearest"))
    assert_allclose(smooth(image, "box", size=3), ndimage.uniform_filter(image, size=3, mode="nearest"), rtol=1e-6)


def test_astropy_methods_match_astropy_convolution_inside(image: np.ndarray) -> None:
    ours = smooth(image, "astropy_gaussian", sigma=1.0)
    kernel = Gaussian2DKernel(1.0, x_size=9, y_size=9)
    expected = convolve(image, kernel, boundary="fill", fill_value=0.0, normalize_kernel=True)
    assert_allclose(ours[8:-8, 8:-8], expected[8:-8, 8:-8], rtol=2e-3)
    ours_box = smooth(image, "astropy_box", size=5)
    expected_box = convolve(image, Box2DKernel(5), normalize_kernel=True)
    assert_allclose(ours_box[4:-4, 4:-4], expected_box[4:-4, 4:-4], rtol=1e-5)


def test_astropy_methods_interpolate_nan(image: np.ndarray) -> None:
    data = image.copy()
    data[30, 30] = np.nan
    out = smooth(data, "astropy_box", size=3)
    neighbours = np.delete(image[29:32, 29:32].ravel(), 4)
    assert out[30, 30] == pytest.approx(neighbours.mean(), rel=1e-5)
    assert np.isfinite(out).all()
    empty = smooth(np.full((8, 8), np.nan, dtype=np.float32), "astropy_gaussian")
    assert np.isnan(empty).all()


@pytest.mark.parametrize("method", SMOOTH_METHODS)
def test_every_method_returns_new_float32(image: np.ndarray, method: str) -> None:
    before = image.copy()
    out = smooth(image, method)
    assert out.dtype == np.float32
    assert out.shape == image.shape
    assert out is not image
    assert_allclose(image, before)
    assert out.std() < image.std()


def test_validation() -> None:
    validate_smoothing(0.1, 1)
    validate_smoothing(10.0, 25)
    for sigma, size, rejected in (
        (0.09, 3, "smooth_sigma"),
        (10.1, 3, "smooth_sigma"),
        (1.0, 2, "smooth_size"),
        (1.0, 27, "smooth_size"),
        (1.0, 0, "smooth_size"),
    ):
        with pytest.raises(ValueError, match=f"^{rejected} must be"):
            validate_smoothing(sigma, size)
    with pytest.raises(ValueError, match="unknown smoothing"):
        smooth(np.ones((4, 4)), "bilateral")
    with pytest.raises(ValueError, match="2-D"):
        smooth(np.ones(4), "box")
