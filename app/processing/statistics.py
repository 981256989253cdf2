"""Image statistics on finite pixels only: basic statistics, histogram, percentiles.

All functions ignore NaN and +-Inf, accept any shape, and return plain Python floats/ints (never
NaN: an empty selection yields ``None`` values) so results can go straight into JSON. For large
arrays, pass ``max_samples`` to work on an evenly strided sample instead of every pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def finite_values(data: np.ndarray, *, max_samples: int | None = None) -> np.ndarray:
    """Collect the finite values of ``data`` as a 1-D float64 array (a strided sample if ``max_samples``)."""
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


def _histogram_dict(counts: np.ndarray, edges: np.ndarray) -> dict[str, Any]:
    """Return the JSON form of a histogram: integer counts, float edges (n + 1) and centres, the bin count."""
    centers = (edges[:-1] + edges[1:]) / 2.0
    return {
        "counts": [int(c) for c in counts],
        "bin_centers": [float(c) for c in centers],
        "bin_edges": [float(e) for e in edges],
        "n_bins": len(counts),
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
    return _histogram_dict(counts, edges)


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


def histogram_of_finite(values: np.ndarray, *, bins: int, value_range: tuple[float, float]) -> dict[str, Any]:
    """Histogram of values known to be finite, in the format of :func:`histogram`, in one cheap pass.

    Each value's bin is ``floor((v - lo) * bins / (hi - lo))`` computed in the values' own float
    precision and counted with :func:`numpy.bincount` (no float64 copy, no finiteness filter), so a
    value within rounding of an edge may land one bin away from where :func:`numpy.histogram` puts
    it; values outside the range are not counted, the last bin includes ``hi``. Edges and centres
    are float64, exactly those of :func:`histogram`.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind != "f":
        flat = flat.astype(np.float64)
    inside = flat[(flat >= lo) & (flat <= hi)] if flat.min(initial=lo) < lo or flat.max(initial=hi) > hi else flat
    scaled = (inside - inside.dtype.type(lo)) * inside.dtype.type(bins / (hi - lo))
    index = scaled.astype(np.intp)
    np.clip(index, 0, bins - 1, out=index)
    return _histogram_dict(np.bincount(index, minlength=bins), np.linspace(lo, hi, bins + 1))
