"""Colormap lookup tables: shape, known anchor colours, application to images."""

from __future__ import annotations

import numpy as np
import pytest

from app.processing.colormaps import COLORMAP_NAMES, apply_colormap, apply_gray, get_lut


@pytest.mark.parametrize("name", COLORMAP_NAMES)
def test_lut_shape(name: str) -> None:
    lut = get_lut(name)
    assert lut.shape == (256, 3)
    assert lut.dtype == np.uint8
    assert not lut.flags.writeable


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("gray", (0, 0, 0), (255, 255, 255)),
        ("viridis", (68, 1, 84), (253, 231, 37)),
        ("inferno", (0, 0, 4), (252, 255, 164)),
        ("magma", (0, 0, 4), (252, 253, 191)),
        ("plasma", (13, 8, 135), (240, 249, 33)),
        ("hot", (11, 0, 0), (255, 255, 255)),
        ("cool", (0, 255, 255), (255, 0, 255)),
        ("rainbow", (128, 0, 255), (255, 0, 0)),
        ("jet", (0, 0, 128), (128, 0, 0)),
    ],
)
def test_anchor_colours(name: str, first: tuple[int, int, int], last: tuple[int, int, int]) -> None:
    lut = get_lut(name)
    assert tuple(lut[0]) == first
    assert tuple(lut[-1]) == last


def test_perceptual_maps_increase_in_lightness() -> None:
    for name in ("viridis", "inferno", "magma", "plasma", "gray"):
        lut = get_lut(name).astype(float)
        luma = 0.2126 * lut[:, 0] + 0.7152 * lut[:, 1] + 0.0722 * lut[:, 2]
        assert np.all(np.diff(luma[::16]) > 0), name


def test_apply_colormap_and_aliases() -> None:
    x = np.array([[0.0, 0.5, 1.0], [np.nan, -1.0, 2.0]], dtype=np.float32)
    rgb = apply_colormap(x, "grayscale")
    assert rgb.shape == (2, 3, 3)
    assert rgb.dtype == np.uint8
    assert rgb[0, :, 0].tolist() == [0, 128, 255]
    assert rgb[1, :, 0].tolist() == [0, 0, 255]  # NaN -> 0, clipped
    assert apply_gray(x).tolist() == [[0, 128, 255], [0, 0, 255]]
    assert np.array_equal(apply_colormap(x, "gray"), rgb)
    with pytest.raises(ValueError, match="unknown colormap"):
        apply_colormap(x, "parula")


def test_gray_is_the_identity() -> None:
    lut = get_lut("gray")
    assert np.array_equal(lut, np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))


def test_perceptual_tables_are_smooth() -> None:
    """Full 256-entry tables, not 17 control points: neighbouring entries differ by a few levels at most."""
    for name in ("viridis", "inferno", "magma", "plasma"):
        steps = np.abs(np.diff(get_lut(name).astype(int), axis=0))
        assert steps.max() <= 6, name
        assert len({tuple(c) for c in get_lut(name)}) > 240, name


@pytest.mark.parametrize("name", COLORMAP_NAMES)
def test_tables_equal_matplotlib(name: str) -> None:
    """Each table is matplotlib's 256-entry table x 255, rounded (run where matplotlib is installed)."""
    mpl = pytest.importorskip("matplotlib")
    expected = np.round(np.asarray(mpl.colormaps[name].resampled(256)(np.arange(256)))[:, :3] * 255.0)
    assert np.array_equal(get_lut(name), expected.astype(np.uint8))
