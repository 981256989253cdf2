"""Co-adding reprojected tiles onto one grid: mean, sum, first, last, min, max, median, inverse variance.

A tile is ``(bbox, values, weights)``: a reprojected input covering rows ``y0:y1`` and columns
``x0:x1`` of the output grid, with optional per-pixel weights. :func:`combine` folds tiles one at a
time into running accumulators, so memory grows with the output grid, not with the number of
inputs; the median spills each tile to a temporary file and reduces row bands of the stack.
Pixels that no tile covers are NaN.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np

CombineMethod = Literal["mean", "sum", "first", "last", "min", "max", "median"]
Bbox = tuple[int, int, int, int]
Tile = tuple[Bbox, np.ndarray, np.ndarray | None]
MEDIAN_BAND_BYTES = 64 * 1024 * 1024


Accumulate = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _fold(kind: str) -> Accumulate:
    """Return the in-place accumulator of ``kind`` (the mean and the sum share one)."""

    def first(out: np.ndarray, tile: np.ndarray, _: np.ndarray) -> None:
        take = np.isnan(out) & np.isfinite(tile)
        out[take] = tile[take]

    def last(out: np.ndarray, tile: np.ndarray, _: np.ndarray) -> None:
        take = np.isfinite(tile)
        out[take] = tile[take]

    def minimum(out: np.ndarray, tile: np.ndarray, _: np.ndarray) -> None:
        np.fmin(out, tile, out=out)

    def maximum(out: np.ndarray, tile: np.ndarray, _: np.ndarray) -> None:
        np.fmax(out, tile, out=out)

    def total(out: np.ndarray, tile: np.ndarray, count: np.ndarray) -> None:
        covered = np.isfinite(tile)
        out += np.nan_to_num(tile, copy=False, nan=0.0)  # the tile is ours: zero its NaN in place
        count += covered

    table: dict[str, Accumulate] = {
        "first": first,
        "last": last,
        "min": minimum,
        "max": maximum,
        "mean": total,
        "sum": total,
    }
    return table[kind]


def combine(
    tiles: Iterable[Tile],
    shape: tuple[int, int],
    method: str,
    *,
    n_inputs: int,
    weighted: bool = False,
    temp_dir: str | None = None,
) -> np.ndarray:
    """Co-add ``tiles`` on a grid of ``shape`` with ``method``; float32 with NaN where nothing covers.

    ``weighted`` makes the mean inverse-variance weighted by each tile's weights; ``n_inputs`` bounds
    the coverage count (its integer type).
    """
    if method == "median":
        return _median(tiles, shape, temp_dir=temp_dir)
    if method == "mean" and weighted:
        return _weighted_mean(tiles, shape)
    additive = method in ("mean", "sum")
    out = np.zeros(shape, dtype=np.float32) if additive else np.full(shape, np.nan, dtype=np.float32)
    count_dtype = np.uint16 if n_inputs < np.iinfo(np.uint16).max else np.float32
    count = np.zeros(shape, dtype=count_dtype) if additive else np.empty((0, 0), dtype=np.float32)
    fold = _fold(method)
    for (y0, y1, x0, x1), tile, _ in tiles:
        fold(out[y0:y1, x0:x1], tile, count[y0:y1, x0:x1] if additive else count)
    if additive:
        covered = count > 0
        if method == "mean":
            np.divide(out, count, out=out, where=covered)
        out[~covered] = np.nan
    return out


def _weighted_mean(tiles: Iterable[Tile], shape: tuple[int, int]) -> np.ndarray:
    """Inverse-variance weighted mean; pixels without a valid weight do not contribute."""
    total = np.zeros(shape, dtype=np.float32)
    weight_sum = np.zeros(shape, dtype=np.float32)
    for (y0, y1, x0, x1), tile, weights in tiles:
        if weights is None:
            raise ValueError("a weighted mean needs weights on every tile")
        usable = np.isfinite(tile) & np.isfinite(weights)
        np.multiply(tile, weights, out=tile)
        tile[~usable] = 0.0
        weights[~usable] = 0.0
        total[y0:y1, x0:x1] += tile
        weight_sum[y0:y1, x0:x1] += weights
    covered = weight_sum > 0
    np.divide(total, weight_sum, out=total, where=covered)
    total[~covered] = np.nan
    return total


def _median(tiles: Iterable[Tile], shape: tuple[int, int], *, temp_dir: str | None) -> np.ndarray:
    """Median with bounded memory: tiles spill to disk, then row bands are stacked and reduced."""
    out = np.full(shape, np.nan, dtype=np.float32)
    ny, nx = shape
    with tempfile.TemporaryDirectory(prefix="mosaic-median-", dir=temp_dir) as tmp:
        spilled: list[tuple[Bbox, str]] = []
        for index, (bbox, tile, _) in enumerate(tiles):
            path = os.path.join(tmp, f"tile{index}.npy")
            np.save(path, tile)
            spilled.append((bbox, path))
            del tile
        spills = [(bbox, np.load(path, mmap_mode="r")) for bbox, path in spilled]
        if not spills:
            return out
        rows = max(1, MEDIAN_BAND_BYTES // max(1, nx * 4 * len(spills)))
        for b0 in range(0, ny, rows):
            b1 = min(ny, b0 + rows)
            stack = np.full((len(spills), b1 - b0, nx), np.nan, dtype=np.float32)
            for k, ((y0, y1, x0, x1), tile) in enumerate(spills):
                a, b = max(y0, b0), min(y1, b1)
                if a < b:
                    stack[k, a - b0 : b - b0, x0:x1] = tile[a - y0 : b - y0]
            covered = np.isfinite(stack).any(axis=0)
            stack[:, ~covered] = 0.0  # no all-NaN column reaches nanmedian (its warning is not thread-safe to hide)
            band = np.nanmedian(stack, axis=0)
            band[~covered] = np.nan
            out[b0:b1] = band
            del stack
        del spills
    return out


def background_offsets(planes: list[np.ndarray], *, min_overlap: int = 25) -> np.ndarray:
    """Additive offsets that make overlapping planes agree (least squares on pairwise median differences).

    ``planes`` are the inputs on one (coarse) grid, NaN where they do not cover. The offsets sum to
    zero, so the mosaic keeps its mean level.
    """
    n = len(planes)
    rows: list[np.ndarray] = []
    diffs: list[float] = []
    for i in range(n):
        for j in range(i + 1, n):
            both = np.isfinite(planes[i]) & np.isfinite(planes[j])
            if int(both.sum()) < min_overlap:
                continue
            row = np.zeros(n)
            row[i], row[j] = 1.0, -1.0
            rows.append(row)
            diffs.append(float(np.median(planes[i][both] - planes[j][both])))
    if not rows:
        return np.zeros(n)
    rows.append(np.ones(n))
    diffs.append(0.0)
    solution, *_ = np.linalg.lstsq(np.array(rows), np.array(diffs), rcond=None)
    return np.asarray(solution, dtype=np.float64)
