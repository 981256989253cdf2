"""Statistics on finite pixels: basic, robust, histogram, percentiles."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from app.processing.statistics import basic_stats, finite_values, histogram, percentiles


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    values = np.random.default_rng(7).normal(5.0, 2.0, (50, 60))
    values[0, :5] = np.nan
    values[1, :5] = np.inf
    values[2, :3] = 1e6  # outliers
    return values


def test_basic_stats_ignore_non_finite(data: np.ndarray) -> None:
    finite = data[np.isfinite(data)]
    stats = basic_stats(data)
    assert stats["count"] == finite.size
    ours = [stats[k] for k in ("min", "max", "mean", "std", "median", "sum")]
    expected = [finite.min(), finite.max(), finite.mean(), finite.std(), np.median(finite), finite.sum()]
    assert_allclose(ours, expected)
    assert basic_stats(np.full(3, np.nan))["mean"] is None


def test_histogram_matches_numpy(data: np.ndarray) -> None:
    finite = data[np.isfinite(data) & (data < 100)]
    hist = histogram(finite, bins=20)
    counts, edges = np.histogram(finite, bins=20)
    assert hist["counts"] == counts.tolist()
    assert hist["n_bins"] == 20
    assert_allclose(hist["bin_edges"], edges)
    assert_allclose(hist["bin_centers"], (edges[1:] + edges[:-1]) / 2)
    fixed = histogram(data, bins=4, value_range=(0.0, 10.0))
    assert fixed["bin_edges"] == [0.0, 2.5, 5.0, 7.5, 10.0]
    flat = histogram(np.ones(5), bins=2)
    assert flat["bin_edges"] == [0.5, 1.0, 1.5]
    assert sum(flat["counts"]) == 5
    with pytest.raises(ValueError, match="bins must be >= 1, got 0"):
        histogram(data, bins=0)


def test_percentiles(data: np.ndarray) -> None:
    finite = data[np.isfinite(data)]
    result = percentiles(data, [0.5, 50, 99.5])
    assert_allclose(list(result.values()), np.percentile(finite, [0.5, 50, 99.5]))
    assert list(result) == [0.5, 50.0, 99.5]
    assert percentiles(np.full(4, np.nan), [50])[50.0] is None
    with pytest.raises(ValueError, match="percentiles must be within 0-100, got 101"):
        percentiles(data, [101])


def test_sampling() -> None:
    values = finite_values(np.arange(1000.0), max_samples=100)
    assert values.size == 100
    assert values[1] == 10.0
