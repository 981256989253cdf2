"""Background level and map on images with a known sky."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from app.processing.background import background_level, background_map, subtract_background
from tests.support.fits_factory import gaussian_stars


def test_level_ignores_stars_and_nan() -> None:
    data, _ = gaussian_stars((128, 128), n_stars=40, background=50.0, noise=2.0, seed=11)
    data[:5, :5] = np.nan
    level, rms = background_level(data)
    assert level == pytest.approx(50.0, abs=0.2)
    assert rms == pytest.approx(2.0, rel=0.1)
    assert background_level(np.full((4, 4), np.nan)) == (0.0, 0.0)


def test_map_follows_a_gradient() -> None:
    yy, xx = np.mgrid[:128, :160]
    sky = (20.0 + 0.1 * xx + 0.05 * yy).astype(np.float32)
    noise = np.random.default_rng(2).normal(0.0, 0.5, sky.shape).astype(np.float32)
    bkg, _ = background_map(sky + noise, box_size=16, filter_size=3)
    assert bkg.shape == sky.shape and bkg.dtype == np.float32
    assert_allclose(bkg[16:-16, 16:-16], sky[16:-16, 16:-16], atol=0.6)
    _, flat_rms = background_map(noise, box_size=16)
    assert float(np.median(flat_rms)) == pytest.approx(0.5, rel=0.1)


def test_subtract_background() -> None:
    data = np.full((64, 64), 7.0, dtype=np.float32) + np.random.default_rng(0).normal(0, 0.1, (64, 64)).astype(
        np.float32
    )
    assert abs(float(np.median(subtract_background(data)))) < 0.02
    assert abs(float(np.median(subtract_background(data, box_size=16)))) < 0.05
    with pytest.raises(ValueError):
        background_map(np.ones(5))
