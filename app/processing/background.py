"""Sky background estimation: a global sigma-clipped level, or a smooth 2-D map from a mesh of boxes.

:func:`background_level` gives one ``(level, rms)`` for the whole image; :func:`background_map`
computes the sigma-clipped median of each ``box_size`` x ``box_size`` cell, median-filters the
cell grid, and interpolates it back to full size (the usual SExtractor/photutils recipe, in a
compact form). Both ignore NaN and +-Inf.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from app.processing.statistics import CLIP_SIGMA, finite_values, sigma_clip_values


def background_level(
    data: np.ndarray, *, sigma: float = CLIP_SIGMA, max_samples: int | None = 1_000_000
) -> tuple[float, float]:
    """Sigma-clipped median and standard deviation of the finite pixels; ``(0, 0)`` when none."""
    values = finite_values(data, max_samples=max_samples)
    if values.size == 0:
        return 0.0, 0.0
    kept = sigma_clip_values(values, sigma=sigma)
    if kept.size == 0:
        kept = values
    return float(np.median(kept)), float(kept.std())


def background_map(
    data: np.ndarray, *, box_size: int = 64, filter_size: int = 3, sigma: float = CLIP_SIGMA
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth background and RMS maps (float32, same shape as ``data``).

    Parameters
    ----------
    data
        2-D image.
    box_size
        Cell width in pixels; clipped to the image size.
    filter_size
        Median filter width over the grid of cells (1 disables it).
    sigma
        Clipping threshold inside each cell.
    """
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got {data.ndim}-D")
    if box_size < 1 or filter_size < 1:
        raise ValueError(f"box_size and filter_size must be >= 1, got {box_size}, {filter_size}")
    ny, nx = data.shape
    by, bx = min(box_size, ny), min(box_size, nx)
    gy, gx = max(1, ny // by), max(1, nx // bx)
    level, rms = background_level(data, sigma=sigma)
    grid = np.full((gy, gx), level, dtype=np.float64)
    grid_rms = np.full((gy, gx), rms, dtype=np.float64)
    for j in range(gy):
        y1 = ny if j == gy - 1 else (j + 1) * by
        for i in range(gx):
            x1 = nx if i == gx - 1 else (i + 1) * bx
            values = finite_values(data[j * by : y1, i * bx : x1])
            if values.size < 3:
                continue
            kept = sigma_clip_values(values, sigma=sigma)
            if kept.size:
                grid[j, i] = np.median(kept)
                grid_rms[j, i] = kept.std()
    if filter_size > 1 and (gy > 1 or gx > 1):
        grid = ndimage.median_filter(grid, size=filter_size, mode="nearest")
        grid_rms = ndimage.median_filter(grid_rms, size=filter_size, mode="nearest")
    return _expand(grid, (ny, nx)), _expand(grid_rms, (ny, nx))


def _expand(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation of cell centres to every pixel (edge cells extend flat)."""
    ny, nx = shape
    gy, gx = grid.shape
    ys = (np.arange(ny) + 0.5) / ny * gy - 0.5
    xs = (np.arange(nx) + 0.5) / nx * gx - 0.5
    yy = np.clip(ys, 0, gy - 1)
    xx = np.clip(xs, 0, gx - 1)
    coords = np.meshgrid(yy, xx, indexing="ij")
    return ndimage.map_coordinates(grid, coords, order=1, mode="nearest").astype(np.float32)


def subtract_background(data: np.ndarray, *, box_size: int | None = None) -> np.ndarray:
    """``data`` minus its background (global level, or a map when ``box_size`` is given); float32 copy."""
    out = np.array(data, dtype=np.float32, copy=True)
    if box_size is None:
        level, _ = background_level(out)
        out -= np.float32(level)
    else:
        bkg, _ = background_map(out, box_size=box_size)
        out -= bkg
    return out
