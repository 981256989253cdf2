"""Output sizes and resampling of display images."""

from __future__ import annotations

import numpy as np
import pytest

from app.processing.geometry import block_factor, fit_size, resize


@pytest.mark.parametrize(
    ("shape", "box", "expected"),
    [
        ((100, 200), (1000, 1000), (500, 1000)),
        ((200, 100), (1000, 1000), (1000, 500)),
        ((100, 200), (100, 1000), (50, 100)),
        ((10000, 10000), (1000, 1000), (1000, 1000)),
        ((3, 5000), (10, 10), (1, 10)),
    ],
)
def test_fit_size(shape: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit_size(shape, box[0], box[1]) == expected


def test_block_factor_keeps_at_least_target() -> None:
    assert block_factor(10000, 10000, (1000, 1000)) == 10
    assert block_factor(4096, 4096, (1000, 1000)) == 4
    assert block_factor(100, 100, (1000, 1000)) == 1


def test_resize_area_average_and_nearest() -> None:
    data = np.arange(16, dtype=np.float32).reshape(4, 4)
    down = resize(data, (2, 2))
    assert np.allclose(down, data.reshape(2, 2, 2, 2).mean(axis=(1, 3)))
    up = resize(np.array([[1.0, 2.0]], dtype=np.float32), (2, 4))
    assert up.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
