"""Stretches, levels and curves of app.processing.enhancement against astropy.visualization."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.visualization import (
    AsinhStretch,
    HistEqStretch,
    LinearStretch,
    LogStretch,
    ManualInterval,
    MinMaxInterval,
    PowerStretch,
    SqrtStretch,
    ZScaleInterval,
)
from numpy.testing import assert_allclose

from app.processing import enhancement
from app.processing.enhancement import (
    CURVE_NAMES,
    STRETCH_NAMES,
    apply_curve,
    apply_levels,
    display_limits,
    stretch,
    stretch_image,
)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(42)
    data = rng.normal(100.0, 5.0, (128, 160)).astype(np.float32)
    yy, xx = np.mgrid[:128, :160]
    data += (3000 * np.exp(-((xx - 80) ** 2 + (yy - 60) ** 2) / 30.0)).astype(np.float32)
    return data


def _astropy(data: np.ndarray, interval: object, curve: object) -> np.ndarray:
    x = interval(data.astype(np.float64), clip=True)  # type: ignore[operator]
    return np.clip(curve(x, clip=True), 0.0, 1.0)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("name", "curve", "kwargs"),
    [
        ("linear", LinearStretch(), {}),
        ("sqrt", SqrtStretch(), {}),
        ("asinh", AsinhStretch(a=0.1), {"asinh_a": 0.1}),
        ("asinh", AsinhStretch(a=0.01), {"asinh_a": 0.01}),
        ("log", LogStretch(a=1000.0), {}),
        ("power", PowerStretch(1 / 2.0), {"gamma": 2.0}),
        ("power", PowerStretch(1 / 0.5), {"gamma": 0.5}),
    ],
)
def test_minmax_stretches_match_astropy(image: np.ndarray, name: str, curve: object, kwargs: dict[str, float]) -> None:
    ours = stretch(image, name, **kwargs)
    assert ours.dtype == np.float32
    assert_allclose(ours, _astropy(image, MinMaxInterval(), curve), atol=2e-5)


def test_zscale_matches_astropy(image: np.ndarray) -> None:
    """Our zscale is astropy's ZScaleInterval on a random draw; compared with it on every pixel."""
    vmin, vmax = ZScaleInterval(n_samples=image.size).get_limits(image.astype(np.float64).ravel())
    ours = display_limits(image, method="zscale")
    assert_allclose(ours, (vmin, vmax), atol=0.01 * (vmax - vmin))
    assert_allclose(stretch(image, "zscale"), _astropy(image, ManualInterval(*ours), LinearStretch()), atol=1e-4)


def test_zscale_samples_every_column_of_a_row_major_image() -> None:
    """A stride over the flattened array equal to the row length would see only the left column."""
    rng = np.random.default_rng(1)
    image = rng.normal(100.0, 5.0, (1000, 1000)).astype(np.float32)
    image[:, 0] = 0.0  # a dark left edge: a one-column sample would put both limits near 0
    lo, hi = display_limits(image, method="zscale")
    assert 50.0 < lo < 100.0 < hi < 150.0


def test_grid_sample_covers_the_whole_image() -> None:
    image = np.zeros((2000, 3000), dtype=np.float32)
    image[:, 1500:] = 1.0
    sample = enhancement.sample_finite(image, max_samples=10_000)
    assert sample.size <= 10_000
    assert 0.4 < sample.mean() < 0.6


def test_blank_zero_leaves_out_a_zero_border(image: np.ndarray) -> None:
    framed = np.zeros((image.shape[0] + 200, image.shape[1] + 300), dtype=np.float32)
    framed[100:-100, 150:-150] = image
    for method in ("zscale", "percentile", "minmax"):
        assert display_limits(framed, method=method, blank_zero=True) == display_limits(image, method=method)
    assert display_limits(framed, method="minmax")[0] == 0.0  # without the option zeros are data
    assert display_limits(np.zeros((8, 8)), method="minmax", blank_zero=True) == (0.0, 1.0)


def test_histeq_matches_astropy(image: np.ndarray) -> None:
    normalised = MinMaxInterval()(image.astype(np.float64))
    expected = HistEqStretch(normalised)(normalised)
    assert_allclose(stretch(image, "histeq"), expected, atol=0.01)


def test_explicit_limits_and_nan(image: np.ndarray) -> None:
    data = image.copy()
    data[0, :10] = np.nan
    data[1, :10] = np.inf
    out = stretch(data, "linear", limits=(90.0, 110.0))
    assert np.isfinite(out).all()
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    assert_allclose(out[0, :10], 0.0)
    assert_allclose(out[1, :10], 1.0)
    assert_allclose(out[5, 20], np.clip((image[5, 20] - 90.0) / 20.0, 0, 1), atol=1e-6)


def test_stretch_in_place(image: np.ndarray) -> None:
    buffer = image.copy()
    result = stretch(buffer, "sqrt", out=buffer)
    assert result is buffer


def test_display_limits_percentile_uses_sample(image: np.ndarray) -> None:
    lo, hi = display_limits(image, method="percentile", lower=1.0, upper=99.0)
    assert_allclose((lo, hi), np.percentile(image, [1.0, 99.0]), rtol=1e-6)
    big = np.arange(4_000_000, dtype=np.float32)
    lo, hi = display_limits(big, method="percentile", lower=0.0, upper=100.0, max_samples=1000)
    assert lo == 0.0
    assert hi >= 3_990_000


def test_display_limits_edge_cases() -> None:
    assert display_limits(np.full((4, 4), np.nan)) == (0.0, 1.0)
    lo, hi = display_limits(np.full((4, 4), 3.0), method="minmax")
    assert (lo, hi) == (3.0, 4.0)
    with pytest.raises(ValueError, match="percentiles"):
        display_limits(np.ones((2, 2)), lower=50, upper=10)
    with pytest.raises(ValueError, match="limits method"):
        display_limits(np.ones((2, 2)), method="bogus")  # type: ignore[arg-type]


def test_apply_levels_and_gamma() -> None:
    x = np.linspace(0, 1, 11, dtype=np.float32)
    out = apply_levels(x.copy(), black_point=0.2, white_point=0.7)
    assert_allclose(out, np.clip((x - 0.2) / 0.5, 0, 1), atol=1e-6)
    out = apply_levels(x.copy(), gamma=2.0)
    assert_allclose(out, x**0.5, atol=1e-6)
    with pytest.raises(ValueError, match="black_point and white_point must satisfy"):
        apply_levels(x.copy(), black_point=0.5, white_point=0.5)
    with pytest.raises(ValueError, match="gamma must be positive"):
        apply_levels(x.copy(), gamma=0.0)


def test_stretch_image_skips_gamma_for_power(image: np.ndarray) -> None:
    power = stretch_image(image, "power", gamma=2.0)
    assert_allclose(power, stretch(image, "power", gamma=2.0), atol=1e-6)
    linear = stretch_image(image, "linear", gamma=2.0, black_point=0.1, white_point=0.9)
    expected = np.clip((stretch(image, "linear") - 0.1) / 0.8, 0, 1) ** 0.5
    assert_allclose(linear, expected, atol=1e-5)


@pytest.mark.parametrize("name", CURVE_NAMES)
def test_curves_are_monotone_and_fix_endpoints(name: str) -> None:
    x = np.linspace(0, 1, 101, dtype=np.float32)
    y = apply_curve(x.copy(), name)
    assert y.dtype == np.float32
    assert np.all(np.diff(y) >= -1e-6)
    assert_allclose([y[0], y[-1]], [0.0, 1.0], atol=1e-5)


def test_inverse_s_inverts_s_curve() -> None:
    x = np.linspace(0, 1, 51, dtype=np.float32)
    assert_allclose(apply_curve(apply_curve(x.copy(), "s_curve"), "inverse_s"), x, atol=1e-4)


def test_unknown_names_raise() -> None:
    with pytest.raises(ValueError, match="unknown stretch"):
        stretch(np.ones((2, 2)), "cubic")
    with pytest.raises(ValueError, match="unknown curve"):
        apply_curve(np.ones(2, dtype=np.float32), "wiggle")
    with pytest.raises(ValueError, match="asinh_a"):
        stretch(np.ones((2, 2)), "asinh", asinh_a=0.0)
    assert set(STRETCH_NAMES) == set(enhancement.STRETCHES)
