"""Read the AVM of a PNG or JPEG the engine wrote, with ``pyavm`` (an independent reader), back into a WCS.

:func:`read_avm` is ``AVM.from_image`` on the bytes; :func:`avm_wcs` is its ``to_wcs()``.
:func:`assert_sky_matches` is the round-trip check every picture output uses: the sky position
that the picture's AVM gives a few of its pixels must be where the input WCS puts the same
feature, within one output pixel.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from pyavm import AVM

#: Maps 0-based output pixels ``(column, row from the top)`` to 0-based pixels of the input WCS.
ToInput = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def read_avm(content: bytes) -> Any:
    """Return pyavm's ``AVM`` of the PNG or JPEG ``content``."""
    suffix = ".png" if content[:8] == b"\x89PNG\r\n\x1a\n" else ".jpg"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"picture{suffix}"
        path.write_bytes(content)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return AVM.from_image(str(path))


def avm_wcs(content: bytes) -> WCS:
    """Return the WCS pyavm rebuilds from the picture's AVM (pixels 0-based from the bottom-left)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_avm(content).to_wcs()


def assert_sky_matches(
    content: bytes,
    shape: tuple[int, int],
    input_wcs: WCS,
    to_input: ToInput,
    *,
    samples: int = 5,
    tolerance_px: float = 1.0,
) -> float:
    """Check the picture's AVM against ``input_wcs`` on a grid of output pixels; return the worst error.

    ``shape`` is the picture's ``(height, width)``; ``to_input`` says which input pixel each output
    pixel shows. The error is in output pixels (the AVM WCS's own scale).
    """
    height, width = shape
    out = avm_wcs(content)
    cols, rows = np.meshgrid(np.linspace(0, width - 1, samples), np.linspace(0, height - 1, samples))
    cols, rows = cols.ravel(), rows.ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = out.pixel_to_world(cols, height - 1 - rows)
        xi, yi = to_input(cols, rows)
        want = input_wcs.celestial.pixel_to_world(xi, yi)
    scale_deg = float(np.min(proj_plane_pixel_scales(out)))
    worst = float(np.max(got.separation(want).deg) / scale_deg)
    assert worst <= tolerance_px, f"AVM sky positions off by {worst:.2f} output pixels"
    return worst


def resized(in_shape: tuple[int, int], out_shape: tuple[int, int]) -> ToInput:
    """``to_input`` of a picture that shows the whole ``in_shape`` image resized to ``out_shape``, north up.

    Output row 0 is the top of the picture, which shows the last FITS row.
    """
    ny, nx = in_shape
    height, width = out_shape

    def to_input(cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (cols + 0.5) * nx / width - 0.5, (height - 1 - rows + 0.5) * ny / height - 0.5

    return to_input
