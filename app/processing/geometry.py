"""Output sizes and resampling of display images: fit a box, pick a read factor, resize exactly."""

from __future__ import annotations

import numpy as np
from PIL import Image


def fit_size(shape: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """Return ``(h, w)`` of an image of ``shape`` scaled to fit ``width`` x ``height``, aspect kept."""
    ny, nx = shape
    scale = min(width / nx, height / ny)
    w = min(width, max(1, round(nx * scale)))
    h = min(height, max(1, round(ny * scale)))
    return h, w


def block_factor(ny: int, nx: int, out_shape: tuple[int, int]) -> int:
    """Return the largest integer reduction that keeps an ``ny x nx`` plane at least ``out_shape`` in size."""
    return max(1, min(ny // out_shape[0], nx // out_shape[1]))


def resize(data: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Resize a finite float32 image to ``out_shape``: area-average down, nearest-neighbour up."""
    if data.shape == out_shape:
        return data
    out_h, out_w = out_shape
    image = Image.fromarray(np.ascontiguousarray(data, dtype=np.float32))
    shrinking = out_h <= data.shape[0] and out_w <= data.shape[1]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.NEAREST
    return np.asarray(image.resize((out_w, out_h), resample=method), dtype=np.float32)
