"""AVM (Astronomy Visualization Metadata) for PNG and JPEG outputs, written by ``pyavm`` from the output WCS.

Usage for any rendered image::

    wcs_out = display_wcs(wcs, (ny, nx), (out_height, out_width))   # the output pixel grid
    xmp = avm_xmp(wcs_out, (out_height, out_width), metadata={"target_name": "M16"})
    png = encoding.encode_png(rgb, xmp=xmp)                          # or encode_jpeg(..., xmp=xmp)

The packet describes the pixel grid of the picture as written: :func:`display_wcs` builds that
WCS from the input's (after a resize, and for an image written without the vertical flip), and
:func:`shifted` moves it by letterbox bars. AVM counts pixels like FITS, 1-based from the
bottom-left of the image as displayed; our renderers flip the FITS array (row 0 of the PNG is the
top row of the sky), so the displayed picture has the FITS orientation.

AVM carries a linear projection only (``Spatial.CoordsystemProjection`` is the three-letter code,
``TAN`` for a ``TAN-SIP`` header), so the output WCS is rebuilt from the input's full linear
transform (``CD``, or ``PC`` x ``CDELT``, whichever wcslib uses when a header carries several)
without distortion terms; a WCS with distortion (SIP) or a projection AVM cannot name (ZPN, ...)
gets the TAN fitted to its sky positions over the output grid. ``Spatial.Scale`` and
``Spatial.Rotation`` are set in AVM's sign convention (see :func:`scale_and_rotation`); a
mirrored-parity WCS, which they cannot express, also carries ``Spatial.CDMatrix``.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
from astropy.wcs import WCS

logger = logging.getLogger("app.processing.avm")

#: Metadata keys accepted from callers and the AVM field each one fills (lists in AVM).
METADATA_FIELDS: dict[str, tuple[str, str]] = {
    "target_name": ("Subject", "Name"),
    "facility": ("", "Facility"),
    "instrument": ("", "Instrument"),
    "filter": ("Spectral", "Bandpass"),
    "spectral_band": ("Spectral", "Band"),
}


def linear_matrix(wcs: WCS) -> np.ndarray:
    """Return the 2x2 CD matrix (degrees per pixel) wcslib applies, whether the header uses CD or PC + CDELT."""
    return np.asarray(wcs.pixel_scale_matrix, dtype=np.float64)


def scale_and_rotation(cd: np.ndarray) -> tuple[float, float, float]:
    """``(cdelt1, cdelt2, rotation_deg)`` of a CD matrix in AVM's convention (CROTA2, ``cdelt1 < 0`` for sky parity).

    pyavm's own conversion may return ``(+, -)`` scales with the rotation 180 degrees away, which
    AVM readers (pyavm's included) read with the signs forced to ``(-, +)``: half a turn off.
    """
    cd11, cd12, cd21, cd22 = float(cd[0, 0]), float(cd[0, 1]), float(cd[1, 0]), float(cd[1, 1])
    cdelt1, cdelt2 = math.hypot(cd11, cd21), math.hypot(cd12, cd22)
    if cd11 * cd22 - cd12 * cd21 < 0:
        return -cdelt1, cdelt2, math.degrees(math.atan2(-cd12, cd22)) % 360.0
    return cdelt1, cdelt2, math.degrees(math.atan2(cd12, cd22)) % 360.0


def _linear_celestial(wcs: WCS, crpix: list[float], cd: np.ndarray) -> WCS:
    """Build a fresh celestial WCS: the input's frame and projection, the given ``crpix`` and ``cd``, no distortion."""
    celestial = wcs.celestial
    out = WCS(naxis=2)
    out.wcs.ctype = [str(c)[:8] for c in celestial.wcs.ctype]
    out.wcs.cunit = ["deg", "deg"]
    out.wcs.crval = [float(v) for v in celestial.wcs.crval]
    out.wcs.crpix = crpix
    out.wcs.cd = cd
    out.wcs.lonpole = float(celestial.wcs.lonpole)
    out.wcs.latpole = float(celestial.wcs.latpole)
    if celestial.wcs.radesys:
        out.wcs.radesys = celestial.wcs.radesys
    if np.isfinite(celestial.wcs.equinox):
        out.wcs.equinox = float(celestial.wcs.equinox)
    out.wcs.set_pv([(i, m, v) for i, m, v in celestial.wcs.get_pv()])
    out.wcs.set()
    return out


#: Projections AVM 1.2 can name (``Spatial.CoordsystemProjection``).
AVM_PROJECTIONS = frozenset({"TAN", "SIN", "ARC", "AIT", "CAR", "CEA"})
#: Output pixels per side sampled when a TAN is fitted to a distorted or non-AVM projection.
FIT_SAMPLES = 12


def _needs_fit(wcs: WCS) -> bool:
    """Whether a linear copy would misplace pixels: distortion terms, or a projection AVM cannot name."""
    celestial = wcs.celestial
    projection = str(celestial.wcs.ctype[0])[5:8]
    distorted = any(getattr(celestial, name, None) is not None for name in ("sip", "cpdis1", "cpdis2", "det2im1"))
    return distorted or projection not in AVM_PROJECTIONS


def _fitted_tan(wcs: WCS, to_input: Any, out_shape: tuple[int, int]) -> WCS:
    """Fit a TAN WCS to where ``wcs`` puts a grid of output pixels (``to_input``: output to input pixels)."""
    from astropy.wcs.utils import fit_wcs_from_points

    height, width = out_shape
    xs, ys = np.meshgrid(np.linspace(0, width - 1, FIT_SAMPLES), np.linspace(0, height - 1, FIT_SAMPLES))
    xo, yo = xs.ravel(), ys.ravel()
    xi, yi = to_input(xo, yo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        world = wcs.celestial.pixel_to_world(xi, yi)
        fitted = fit_wcs_from_points((xo, yo), world, projection="TAN")
    return _linear_celestial(fitted, [float(v) for v in fitted.wcs.crpix], linear_matrix(fitted))


def display_wcs(wcs: WCS, in_shape: tuple[int, int], out_shape: tuple[int, int], *, flipped: bool = True) -> WCS:
    """Return the linear, AVM-expressible celestial WCS of an ``in_shape`` (ny, nx) image shown at ``out_shape``.

    A WCS with distortion terms (SIP) or a projection AVM cannot name (``ZPN``, ...) gets the
    ``TAN`` WCS fitted to its sky positions over the output grid.

    Parameters
    ----------
    wcs
        Celestial WCS of the full-resolution plane.
    in_shape
        ``(ny, nx)`` of that plane.
    out_shape
        ``(height, width)`` of the rendered image.
    flipped
        ``True`` (default) when the rendered image shows the FITS array with row 0 at the bottom
        (``origin="lower"``); ``False`` when FITS row 0 is the image's top row.
    """
    ny, nx = in_shape
    height, width = out_shape
    sx, sy = width / nx, height / ny
    crpix = np.asarray(wcs.celestial.wcs.crpix, dtype=np.float64)
    new_crpix = [(crpix[0] - 0.5) * sx + 0.5, (crpix[1] - 0.5) * sy + 0.5]
    new_cd = linear_matrix(wcs.celestial) / np.array([sx, sy])[np.newaxis, :]
    if not flipped:
        new_crpix[1] = height + 1 - new_crpix[1]
        new_cd[:, 1] = -new_cd[:, 1]
    if _needs_fit(wcs):

        def to_input(xo: np.ndarray, yo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rows = yo if flipped else height - 1 - yo
            return (xo + 0.5) / sx - 0.5, (rows + 0.5) / sy - 0.5

        return _fitted_tan(wcs, to_input, out_shape)
    return _linear_celestial(wcs, new_crpix, new_cd)


def shifted(wcs: WCS, dx: float, dy: float) -> WCS:
    """Return ``wcs`` with its pixel grid moved by ``(dx, dy)`` pixels (``dy`` up, as AVM counts)."""
    crpix = np.asarray(wcs.wcs.crpix, dtype=np.float64)
    return _linear_celestial(wcs, [crpix[0] + dx, crpix[1] + dy], linear_matrix(wcs))


def _set_metadata(avm: Any, metadata: dict[str, Any] | None) -> None:
    from pyavm.exceptions import AVMEmptyValueError, AVMItemNotInControlledVocabularyError, AVMListLengthError

    meta = {k: str(v).strip() for k, v in (metadata or {}).items() if isinstance(v, str | int | float)}
    for key, (group, field) in METADATA_FIELDS.items():
        if not meta.get(key):
            continue
        try:
            setattr(getattr(avm, group) if group else avm, field, [meta[key]])
        except (AVMItemNotInControlledVocabularyError, AVMEmptyValueError, AVMListLengthError) as error:
            logger.info("avm_field_skipped", extra={"field": field, "error": type(error).__name__})
    if meta.get("title"):
        avm.Title = meta["title"]
    if meta.get("description"):
        avm.Description = meta["description"]


def avm_xmp(wcs: WCS, shape: tuple[int, int], *, metadata: dict[str, Any] | None = None) -> str:
    """Return an XMP packet with AVM spatial metadata (and optional descriptive fields), written by pyavm.

    Parameters
    ----------
    wcs
        Celestial WCS of the image *as rendered* (from :func:`display_wcs`).
    shape
        ``(height, width)`` of the rendered image.
    metadata
        Optional keys ``target_name, facility, instrument, filter, spectral_band, description``
        (and ``title``); unknown keys, empty values and a ``spectral_band`` outside AVM's
        vocabulary are left out.

    Raises
    ------
    ValueError
        The WCS has no celestial axes or a frame AVM cannot name.
    """
    from pyavm import AVM

    celestial = wcs.celestial
    if celestial.naxis != 2:
        raise ValueError("WCS has no celestial axes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            avm = AVM.from_wcs(celestial, shape=shape)
    except Exception as error:  # pyavm raises a bare Exception for an unknown frame
        raise ValueError("The WCS cannot be written as AVM") from error
    cd = linear_matrix(celestial)
    cdelt1, cdelt2, rotation = scale_and_rotation(cd)
    avm.Spatial.Scale = [cdelt1, cdelt2]
    avm.Spatial.Rotation = rotation
    if np.linalg.det(cd) > 0:  # mirrored parity: Scale and Rotation cannot say it
        avm.Spatial.CDMatrix = [float(v) for v in cd.reshape(-1)]
    _set_metadata(avm, metadata)
    return bytes(avm.to_xmp()).decode("utf-8")
