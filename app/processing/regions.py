"""Regions of an image (rectangle, ellipse, polygon) and the statistics of their pixels.

:func:`bounding_box` clamps a region to the image, so a reader can fetch just those rows;
:func:`region_mask` says which pixels of a box belong to the region; :func:`finite_statistics`
summarises the finite values. Pixel coordinates are 0-based array indices
(``x`` = column, ``y`` = row); a pixel belongs to an ellipse or a polygon when its centre does.
Statistics use the finite pixels only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from app.processing.errors import InvalidInput

logger = logging.getLogger("app.processing.regions")

RegionType = Literal["rectangle", "ellipse", "polygon"]

NO_VALID_PIXELS = "No valid pixels in selected region"
#: Pixels read and masked at once (bounds the temporaries of a large region).
BAND_PIXELS = 4_000_000


@dataclass(frozen=True)
class Rectangle:
    """Pixels ``x <= col < x + width`` and ``y <= row < y + height``."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Ellipse:
    """Pixels whose centre satisfies ``((col - cx) / rx)^2 + ((row - cy) / ry)^2 <= 1``."""

    cx: float
    cy: float
    rx: float
    ry: float


@dataclass(frozen=True)
class Polygon:
    """Pixels whose centre lies inside the polygon (even-odd rule); vertices are ``(x, y)``."""

    vertices: tuple[tuple[float, float], ...]


Region = Rectangle | Ellipse | Polygon


@dataclass(frozen=True)
class Box:
    """Half-open pixel box ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def n_pixels(self) -> int:
        """Number of pixels in the box (0 when it is empty)."""
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    @property
    def is_empty(self) -> bool:
        """Whether the box holds no pixel."""
        return self.x1 <= self.x0 or self.y1 <= self.y0


def _pixel_span(low: float, high: float, n: int) -> tuple[int, int]:
    """Integer pixel range ``[a, b)`` of the continuous span ``[low, high]``, clamped to ``[0, n]``.

    Values are clamped before rounding so that huge or infinite sums (``cy + ry`` near the float
    maximum) cannot overflow.
    """
    low = min(max(low, -1.0), n + 1.0)
    high = min(max(high, -1.0), n + 1.0)
    return max(0, math.ceil(low)), min(n, math.floor(high) + 1)


def bounding_box(region: Region, shape: tuple[int, int]) -> Box:
    """Compute the region's bounding box, clamped to an image of ``shape = (ny, nx)``."""
    ny, nx = shape
    if isinstance(region, Rectangle):
        x0, x1 = _pixel_span(float(region.x), float(region.x) + region.width - 1, nx)
        y0, y1 = _pixel_span(float(region.y), float(region.y) + region.height - 1, ny)
    elif isinstance(region, Ellipse):
        x0, x1 = _pixel_span(region.cx - region.rx, region.cx + region.rx, nx)
        y0, y1 = _pixel_span(region.cy - region.ry, region.cy + region.ry, ny)
    else:
        xs = [v[0] for v in region.vertices]
        ys = [v[1] for v in region.vertices]
        x0, x1 = _pixel_span(min(xs), max(xs), nx)
        y0, y1 = _pixel_span(min(ys), max(ys), ny)
    return Box(x0, y0, x1, y1)


def region_mask(region: Region, box: Box) -> np.ndarray:
    """Boolean mask over ``box`` of the pixels that belong to ``region``."""
    height, width = box.y1 - box.y0, box.x1 - box.x0
    if isinstance(region, Rectangle):
        return np.ones((height, width), dtype=bool)
    cols = np.arange(box.x0, box.x1, dtype=np.float64)[np.newaxis, :]
    rows = np.arange(box.y0, box.y1, dtype=np.float64)[:, np.newaxis]
    if isinstance(region, Ellipse):
        result: np.ndarray = ((cols - region.cx) / region.rx) ** 2 + ((rows - region.cy) / region.ry) ** 2 <= 1.0
        return result
    return _polygon_mask(region.vertices, cols, rows)


def _polygon_mask(vertices: tuple[tuple[float, float], ...], cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Even-odd ray casting for every pixel centre, one vectorised pass per edge."""
    inside = np.zeros((rows.shape[0], cols.shape[1]), dtype=bool)
    n = len(vertices)
    for i in range(n):
        xa, ya = vertices[i]
        xb, yb = vertices[(i + 1) % n]
        if ya == yb:
            continue  # a horizontal edge never crosses a horizontal ray
        crosses = (ya > rows) != (yb > rows)  # (rows, 1)
        x_cross = xa + (rows - ya) * (xb - xa) / (yb - ya)  # (rows, 1)
        inside ^= crosses & (cols < x_cross)
    # Pixel centres exactly on a vertex or an edge belong to the region as well.
    inside |= _on_boundary(vertices, cols, rows)
    return inside


def _on_boundary(vertices: tuple[tuple[float, float], ...], cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    on = np.zeros((rows.shape[0], cols.shape[1]), dtype=bool)
    n = len(vertices)
    for i in range(n):
        xa, ya = vertices[i]
        xb, yb = vertices[(i + 1) % n]
        cross = (xb - xa) * (rows - ya) - (yb - ya) * (cols - xa)
        within = (
            (cols >= min(xa, xb) - 1e-9)
            & (cols <= max(xa, xb) + 1e-9)
            & (rows >= min(ya, yb) - 1e-9)
            & (rows <= max(ya, yb) + 1e-9)
        )
        on |= (np.abs(cross) <= 1e-9) & within
    return on


def finite_statistics(values: np.ndarray) -> dict[str, float | int]:
    """``mean, median, std, min, max, sum, pixel_count`` of the finite ``values`` (float64 accumulation).

    Raises
    ------
    InvalidInput
        No finite value.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InvalidInput(NO_VALID_PIXELS)
    n = finite.size
    total = float(np.sum(finite, dtype=np.float64))
    mean = total / n
    std = float(np.sqrt(np.mean((finite.astype(np.float64, copy=False) - mean) ** 2))) if n < BAND_PIXELS else None
    if std is None:
        # Large regions: two-pass variance in bands, without a float64 copy of every value.
        acc = 0.0
        for start in range(0, n, BAND_PIXELS):
            chunk = finite[start : start + BAND_PIXELS].astype(np.float64) - mean
            acc += float(np.dot(chunk, chunk))
        std = math.sqrt(acc / n)
    half = n // 2
    if n % 2:
        median = float(np.partition(finite, half)[half])
    else:
        part = np.partition(finite, [half - 1, half])
        median = (float(part[half - 1]) + float(part[half])) / 2.0
    return {
        "mean": mean,
        "median": median,
        "std": std,
        "min": float(np.min(finite)),
        "max": float(np.max(finite)),
        "sum": total,
        "pixel_count": int(n),
    }
