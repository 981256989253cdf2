"""Colormap lookup tables (256 x 3 uint8) and their application to display values in ``[0, 1]``.

The tables are matplotlib's own 256-entry tables, generated once by ``scripts/make_colormaps.py``
into :mod:`app.processing.colormap_data` and committed, so the engine draws exactly matplotlib's
colours without importing matplotlib. Tables are decoded once and cached.

Use :func:`apply_colormap` to turn a float image in ``[0, 1]`` into an ``H x W x 3`` uint8 RGB image.
"""

from __future__ import annotations

from functools import cache
from typing import Literal, get_args

import numpy as np

from app.processing.colormap_data import TABLES_HEX

ColormapName = Literal["gray", "inferno", "magma", "viridis", "plasma", "hot", "cool", "rainbow", "jet"]
COLORMAP_NAMES: tuple[str, ...] = get_args(ColormapName)

#: Names accepted as aliases of a colormap.
ALIASES: dict[str, str] = {"grayscale": "gray", "grey": "gray", "greyscale": "gray"}

LUT_SIZE = 256


def _decode(name: str) -> np.ndarray:
    """Return the ``256 x 3`` uint8 table of ``name`` from its hex text."""
    return np.frombuffer(bytes.fromhex(TABLES_HEX[name]), dtype=np.uint8).reshape(LUT_SIZE, 3).copy()


def canonical_name(name: str) -> str:
    """Return the table name for ``name`` (aliases such as ``grayscale`` resolved); ValueError if unknown."""
    key = ALIASES.get(name, name)
    if key not in COLORMAP_NAMES:
        raise ValueError(f"unknown colormap {name!r}; expected one of {', '.join(COLORMAP_NAMES)}")
    return key


@cache
def _cached_lut(key: str) -> np.ndarray:
    lut = _decode(key)
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
