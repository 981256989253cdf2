"""Smoothing filters for display and analysis (NaN-aware where it matters).

One table, :data:`SMOOTHERS`, maps each method name of the contract to an implementation:

* ``gaussian``: :func:`scipy.ndimage.gaussian_filter` with ``sigma``;
* ``median``: :func:`scipy.ndimage.median_filter` with a ``size`` x ``size`` window;
* ``box``: :func:`scipy.ndimage.uniform_filter` with a ``size`` x ``size`` window;
* ``astropy_gaussian`` / ``astropy_box``: normalised convolution, the behaviour of
  ``astropy.convolution.convolve`` with ``nan_treatment="interpolate"``: NaN pixels are ignored
  and refilled from their neighbours, and the kernel is renormalised near them.

Every function returns a new float32 array and never modifies its input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
from scipy import ndimage

SmoothMethod = Literal["gaussian", "median", "box", "astropy_gaussian", "astropy_box"]
SMOOTH_METHODS: tuple[str, ...] = get_args(SmoothMethod)

SIGMA_RANGE = (0.1, 10.0)
SIZE_RANGE = (1, 25)
#: Gaussian kernels are truncated at this many sigma (astropy's Gaussian2DKernel uses 8 sigma wide boxes).
TRUNCATE = 4.0


def _gaussian(data: np.ndarray, *, sigma: float, size: int) -> np.ndarray:
    smoothed: np.ndarray = ndimage.gaussian_filter(data, sigma=sigma, mode="nearest", truncate=TRUNCATE)
    return smoothed


def _median(data: np.ndarray, *, sigma: float, size: int) -> np.ndarray:
    smoothed: np.ndarray = ndimage.median_filter(data, size=size, mode="nearest")
    return smoothed


def _box(data: np.ndarray, *, sigma: float, size: int) -> np.ndarray:
    smoothed: np.ndarray = ndimage.uniform_filter(data, size=size, mode="nearest")
    return smoothed


def _normalised(data: np.ndarray, smooth: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Convolve only the finite pixels and divide by the convolved weight (NaN-interpolating)."""
    finite = np.isfinite(data)
    if finite.all():
        return smooth(data)
    weights = finite.astype(np.float32)
    filled = np.where(finite, data, np.float32(0.0)).astype(np.float32, copy=False)
    num = smooth(filled)
    den = smooth(weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = num / den
    out[den <= 1e-6] = np.nan
    return out


def _astropy_gaussian(data: np.ndarray, *, sigma: float, size: int) -> np.ndarray:
    return _normalised(data, lambda a: ndimage.gaussian_filter(a, sigma=sigma, mode="constant", truncate=TRUNCATE))


def _astropy_box(data: np.ndarray, *, sigma: float, size: int) -> np.ndarray:
    return _normalised(data, lambda a: ndimage.uniform_filter(a, size=size, mode="constant"))


SMOOTHERS: dict[str, Callable[..., np.ndarray]] = {
    "gaussian": _gaussian,
    "median": _median,
    "box": _box,
    "astropy_gaussian": _astropy_gaussian,
    "astropy_box": _astropy_box,
}


def validate_smoothing(sigma: float, size: int) -> None:
    """Raise ``ValueError`` unless ``sigma`` is in 0.1-10 and ``size`` is odd in 1-25 (contract rules)."""
    if not SIGMA_RANGE[0] <= sigma <= SIGMA_RANGE[1]:
        raise ValueError(f"smooth_sigma must be between {SIGMA_RANGE[0]} and {SIGMA_RANGE[1]}, got {sigma}")
    if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1] or size % 2 == 0:
        raise ValueError(f"smooth_size must be an odd integer between {SIZE_RANGE[0]} and {SIZE_RANGE[1]}, got {size}")


def smooth(data: np.ndarray, method: str, *, sigma: float = 1.0, size: int = 3) -> np.ndarray:
    """Smooth a 2-D image with ``method`` (one of :data:`SMOOTH_METHODS`); returns a new float32 array.

    Parameters
    ----------
    data
        2-D image.
    method
        Filter name.
    sigma
        Gaussian standard deviation in pixels (``gaussian``, ``astropy_gaussian``).
    size
        Odd window width in pixels (``median``, ``box``, ``astropy_box``).
    """
    if method not in SMOOTHERS:
        raise ValueError(f"unknown smoothing method {method!r}; expected one of {', '.join(SMOOTH_METHODS)}")
    validate_smoothing(sigma, size)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got {data.ndim}-D")
    image = np.asarray(data, dtype=np.float32)
    return np.asarray(SMOOTHERS[method](image, sigma=sigma, size=size), dtype=np.float32)
