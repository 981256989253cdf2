"""Colormap lookup tables (256 x 3 uint8) and their application to display values in ``[0, 1]``.

No matplotlib: each map is built either from a documented formula (``gray``, ``hot``, ``cool``,
``rainbow``, ``jet``) or from a compact table of control points written for this project that
approximates the perceptually uniform maps (``viridis``, ``inferno``, ``magma``, ``plasma``),
linearly interpolated to 256 entries. Tables are built once and cached.

Use :func:`apply_colormap` to turn a float image in ``[0, 1]`` into an ``H x W x 3`` uint8 RGB image.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Literal, get_args

import numpy as np

ColormapName = Literal["gray", "inferno", "magma", "viridis", "plasma", "hot", "cool", "rainbow", "jet"]
COLORMAP_NAMES: tuple[str, ...] = get_args(ColormapName)

#: Names accepted as aliases of a colormap.
ALIASES: dict[str, str] = {"grayscale": "gray", "grey": "gray", "greyscale": "gray"}

LUT_SIZE = 256

# Control points (position, r, g, b) in 0-255, evenly spaced in [0, 1].
_VIRIDIS = (
    (68, 1, 84), (72, 36, 117), (71, 44, 122), (65, 68, 135), (59, 82, 139), (52, 96, 141),
    (44, 113, 142), (38, 130, 142), (33, 145, 140), (31, 160, 136), (39, 173, 129), (63, 188, 115),
    (94, 201, 98), (132, 212, 75), (170, 220, 50), (212, 226, 38), (253, 231, 37),
)  # fmt: skip
_INFERNO = (
    (0, 0, 4), (10, 7, 34), (31, 12, 72), (57, 9, 98), (85, 15, 109), (110, 24, 110),
    (136, 34, 106), (162, 44, 97), (186, 54, 85), (208, 70, 68), (227, 89, 51), (241, 113, 31),
    (249, 140, 10), (252, 170, 20), (249, 201, 50), (242, 231, 97), (252, 255, 164),
)  # fmt: skip
_MAGMA = (
    (0, 0, 4), (9, 7, 32), (28, 16, 68), (52, 16, 104), (79, 18, 123), (104, 28, 129),
    (129, 37, 129), (155, 46, 127), (181, 54, 122), (206, 64, 114), (229, 80, 100), (245, 104, 94),
    (251, 135, 97), (254, 165, 114), (254, 194, 135), (253, 224, 161), (252, 253, 191),
)  # fmt: skip
_PLASMA = (
    (13, 8, 135), (46, 5, 150), (75, 3, 161), (101, 0, 167), (125, 3, 168), (147, 16, 162),
    (168, 34, 150), (186, 52, 136), (203, 70, 121), (217, 88, 107), (229, 107, 93), (240, 127, 79),
    (248, 148, 65), (252, 171, 52), (253, 195, 40), (249, 221, 37), (240, 249, 33),
)  # fmt: skip

# Piecewise-linear segments (x, value) of the classic "jet" map.
_JET_SEGMENTS = (
    ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
)


def _ramp() -> np.ndarray:
    return np.linspace(0.0, 1.0, LUT_SIZE)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(np.round(np.clip(rgb, 0.0, 1.0) * 255.0), dtype=np.uint8)


def _from_points(points: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    table = np.asarray(points, dtype=np.float64) / 255.0
    xp = np.linspace(0.0, 1.0, len(points))
    x = _ramp()
    return _to_uint8(np.stack([np.interp(x, xp, table[:, c]) for c in range(3)], axis=1))


def _gray() -> np.ndarray:
    x = _ramp()
    return _to_uint8(np.stack([x, x, x], axis=1))


def _hot() -> np.ndarray:
    # black -> red -> yellow -> white, channels rising one after another.
    x = _ramp()
    r = x / 0.365079
    g = (x - 0.365079) / (0.746032 - 0.365079)
    b = (x - 0.746032) / (1.0 - 0.746032)
    return _to_uint8(np.stack([r, g, b], axis=1))


def _cool() -> np.ndarray:
    # cyan -> magenta.
    x = _ramp()
    return _to_uint8(np.stack([x, 1.0 - x, np.ones_like(x)], axis=1))


def _rainbow() -> np.ndarray:
    # purple -> red: r = |2x - 0.5|, g = sin(pi x), b = cos(pi x / 2).
    x = _ramp()
    return _to_uint8(np.stack([np.abs(2.0 * x - 0.5), np.sin(np.pi * x), np.cos(np.pi * x / 2.0)], axis=1))


def _jet() -> np.ndarray:
    x = _ramp()
    channels = []
    for segments in _JET_SEGMENTS:
        xp, fp = zip(*segments, strict=True)
        channels.append(np.interp(x, xp, fp))
    return _to_uint8(np.stack(channels, axis=1))


_BUILDERS: dict[str, Callable[[], np.ndarray]] = {
    "gray": _gray,
    "inferno": lambda: _from_points(_INFERNO),
    "magma": lambda: _from_points(_MAGMA),
    "viridis": lambda: _from_points(_VIRIDIS),
    "plasma": lambda: _from_points(_PLASMA),
    "hot": _hot,
    "cool": _cool,
    "rainbow": _rainbow,
    "jet": _jet,
}


def canonical_name(name: str) -> str:
    """Return the table name for ``name`` (aliases such as ``grayscale`` resolved); ValueError if unknown."""
    key = ALIASES.get(name, name)
    if key not in _BUILDERS:
        raise ValueError(f"unknown colormap {name!r}; expected one of {', '.join(COLORMAP_NAMES)}")
    return key


@cache
def _cached_lut(key: str) -> np.ndarray:
    lut = _BUILDERS[key]()
    lut.setflags(write=False)
    return lut


def get_lut(name: str) -> np.ndarray:
    """Return the read-only ``256 x 3`` uint8 lookup table of colormap ``name`` (aliases accepted)."""
    return _cached_lut(canonical_name(name))


def to_index(x01: np.ndarray) -> np.ndarray:
    """Quantise display values in ``[0, 1]`` to uint8 LUT indices (NaN -> 0, out of range clipped)."""
    scaled = np.multiply(x01, np.float32(LUT_SIZE - 1), dtype=np.float32)
    np.nan_to_num(scaled, copy=False, nan=0.0, posinf=LUT_SIZE - 1, neginf=0.0)
    np.clip(scaled, 0.0, LUT_SIZE - 1, out=scaled)
    scaled += np.float32(0.5)
    return np.asarray(scaled, dtype=np.uint8)


def apply_colormap(x01: np.ndarray, name: str) -> np.ndarray:
    """Map display values in ``[0, 1]`` (any shape ``H x W``) to an ``H x W x 3`` uint8 RGB image.

    Parameters
    ----------
    x01
        Float image; values are clipped to ``[0, 1]`` and NaN is drawn as 0.
    name
        One of :data:`COLORMAP_NAMES` or an alias from :data:`ALIASES` (e.g. ``grayscale``).
    """
    lut = get_lut(name)
    rgb: np.ndarray = lut[to_index(x01)]
    return rgb


def apply_gray(x01: np.ndarray) -> np.ndarray:
    """Map display values in ``[0, 1]`` to an ``H x W`` uint8 grayscale image (cheaper than RGB)."""
    return to_index(x01)
