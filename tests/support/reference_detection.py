"""The reference source list detection is judged against: a standard photutils DAOStarFinder run.

The recipe is the textbook one, independent of the engine's own background and noise maps: a
sigma-clipped (3 sigma) median and standard deviation of the whole image, the FWHM measured on the
image (Gaussian PRF fits of the brightest isolated first-pass detections with photutils'
``fit_fwhm``), then ``DAOStarFinder`` at ``threshold_sigma`` times the clipped deviation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats
from photutils.detection import DAOStarFinder
from photutils.psf import fit_fwhm


@dataclass(frozen=True)
class Reference:
    """The DAOStarFinder stars, brightest first, and the FWHM it ran with."""

    xy: np.ndarray
    """``(n, 2)`` 0-based ``(x, y)`` sorted by DAOStarFinder flux, descending."""
    fwhm: float


def _isolated(xy: np.ndarray, radius: float) -> np.ndarray:
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    np.fill_diagonal(d, np.inf)
    return np.asarray(d.min(axis=1) > radius) if len(xy) > 1 else np.ones(len(xy), dtype=bool)


def _stars(data: np.ndarray, threshold: float, fwhm: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = DAOStarFinder(threshold=threshold, fwhm=fwhm)(data)
    if table is None:
        return np.empty((0, 2))
    table.sort("flux", reverse=True)
    return np.column_stack([np.asarray(table["x_centroid"]), np.asarray(table["y_centroid"])])


def measured_fwhm(sub: np.ndarray, threshold: float, *, guess: float = 3.0, n_fit: int = 20) -> float:
    """Median FWHM of Gaussian PRF fits to the brightest isolated stars of a first DAOStarFinder pass."""
    first = _stars(sub, threshold, guess)
    ny, nx = sub.shape
    inside = (first[:, 0] > 8) & (first[:, 0] < nx - 9) & (first[:, 1] > 8) & (first[:, 1] < ny - 9)
    chosen = first[inside & _isolated(first, 4 * guess)][:n_fit]
    if len(chosen) == 0:
        return guess
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fwhm = np.asarray(fit_fwhm(sub, xypos=chosen, fwhm=guess, fit_shape=7), dtype=float)
    fwhm = fwhm[np.isfinite(fwhm) & (fwhm > 0.5) & (fwhm < 20)]
    return float(np.median(fwhm)) if fwhm.size else guess


def daofind_reference(data: np.ndarray, *, threshold_sigma: float = 5.0) -> Reference:
    """Run the reference recipe on ``data`` (NaN-free)."""
    _, median, std = sigma_clipped_stats(data, sigma=3.0)
    sub = np.asarray(data, dtype=np.float64) - median
    threshold = threshold_sigma * float(std)
    fwhm = measured_fwhm(sub, threshold)
    return Reference(xy=_stars(sub, threshold, fwhm), fwhm=fwhm)


def recovered(reference_xy: np.ndarray, sources: list[dict[str, float]], radius: float = 1.5) -> np.ndarray:
    """For each reference star, whether a detected source lies within ``radius`` pixels."""
    if not sources:
        return np.zeros(len(reference_xy), dtype=bool)
    xy = np.array([[s["xcentroid"], s["ycentroid"]] for s in sources])
    d = np.hypot(reference_xy[:, None, 0] - xy[None, :, 0], reference_xy[:, None, 1] - xy[None, :, 1])
    return np.asarray(d.min(axis=1) < radius)
