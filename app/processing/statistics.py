"""Image statistics on finite pixels only: basic, robust (sigma-clipped), histogram, percentiles.

All functions ignore NaN and +-Inf, accept any shape, and return plain Python floats/ints (never
NaN: an empty selection yields ``None`` values) so results can go straight into JSON. For large
arrays, pass ``max_samples`` to work on an evenly strided sample instead of every pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Default sigma-clipping parameters (as astropy's ``sigma_clipped_stats``).
CLIP_SIGMA = 3.0
CLIP_MAXITERS = 5
#: MAD to standard deviation for a normal distribution.
MAD_TO_STD = 1.482602218505602


def finite_values(data: np.ndarray, *, max_samples: int | None = None) -> np.ndarray:
    """The finite values of ``data`` as a 1-D float64 array (a strided sample if ``max_samples``)."""
    flat = np.asarray(data).reshape(-1)
    if max_samples is not None and flat.size > max_samples:
        flat = flat[:: max(1, flat.size // max_samples)]
    values = np.asarray(flat, dtype=np.float64)
    return values[np.isfinite(values)]


def _f(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def basic_stats(data: np.ndarray, *, max_samples: int | None = None) -> dict[str, Any]:
    """``count, min, max, mean, std, median, sum`` of the finite pixels (``None`` when empty)."""
    values = finite_values(data, max_samples=max_samples)
    if values.size == 0:
        return {"count": 0, "min": None, "max": None, "mean": None, "std": None, "median": None, "sum": None}
    return {
        "count": int(values.size),
        "min": _f(values.min()),
        "max": _f(values.max()),
        "mean": _f(values.mean()),
        "std": _f(values.std()),
        "median": _f(np.median(values)),
        "sum": _f(values.sum()),
    }


def sigma_clip_values(values: np.ndarray, *, sigma: float = CLIP_SIGMA, maxiters: int = CLIP_MAXITERS) -> np.ndarray:
    """Iteratively drop values farther than ``sigma`` standard deviations from the median."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    kept = values
    for _ in range(maxiters):
        if kept.size == 0:
            break
        centre = np.median(kept)
        std = kept.std()
        mask = np.abs(kept - centre) <= sigma * std
        if mask.all():
            break
        kept = kept[mask]
    return kept


def robust_stats(
    data: np.ndarray, *, sigma: float = CLIP_SIGMA, maxiters: int = CLIP_MAXITERS, max_samples: int | None = None
) -> dict[str, Any]:
    """Sigma-clipped ``mean, median, std`` plus ``mad_std`` and the number of values kept."""
    values = finite_values(data, max_samples=max_samples)
    if values.size == 0:
        return {"mean": None, "median": None, "std": None, "mad_std": None, "n_used": 0}
    kept = sigma_clip_values(values, sigma=sigma, maxiters=maxiters)
    median = np.median(values)
    mad = np.median(np.abs(values - median)) * MAD_TO_STD
    if kept.size == 0:
        kept = values
    return {
        "mean": _f(kept.mean()),
        "median": _f(np.median(kept)),
        "std": _f(kept.std()),
        "mad_std": _f(mad),
        "n_used": int(kept.size),
    }


def histogram(
    data: np.ndarray,
    *,
    bins: int = 256,
    value_range: tuple[float, float] | None = None,
    max_samples: int | None = None,
) -> dict[str, Any]:
    """Histogram of the finite pixels: ``counts`` (ints), ``bin_edges`` (n+1), ``bin_centers``, ``n_bins``.

    ``value_range`` defaults to the min-max of the data; a degenerate range is widened by 0.5 each way.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    values = finite_values(data, max_samples=max_samples)
    if value_range is None:
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    else:
        lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centers = (edges[:-1] + edges[1:]) / 2.0
    return {
        "counts": [int(c) for c in counts],
        "bin_centers": [float(c) for c in centers],
        "bin_edges": [float(e) for e in edges],
        "n_bins": int(bins),
    }


def percentiles(data: np.ndarray, ps: Sequence[float], *, max_samples: int | None = None) -> dict[float, float | None]:
    """Percentiles ``ps`` (0-100) of the finite pixels, keyed by the requested value (``None`` if empty)."""
    for p in ps:
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentiles must be within 0-100, got {p}")
    values = finite_values(data, max_samples=max_samples)
    if values.size == 0:
        return {float(p): None for p in ps}
    result = np.percentile(values, list(ps))
    return {float(p): _f(v) for p, v in zip(ps, result, strict=True)}
