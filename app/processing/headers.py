"""What FITS headers say for display: the flat WCS block of pixel data and the third axis of cubes.

Only header cards are read here; values that are missing, non-numeric or not finite fall back to
a stated default, so a damaged card never reaches a client as NaN. A header whose celestial WCS
has no CRPIX/CRVAL cards (a DSS plate solution) is described by astropy's WCS, linearised at the
image centre.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from app.processing.fits_io import celestial_wcs, open_fits


def _num(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def pixel_wcs(header: Any) -> dict[str, Any] | None:
    """Build the contract's flat WCS block (CDELT falls back to CD, CD to PC x CDELT); ``None`` without a WCS.

    A header without CRPIX1/CRVAL1 may still hold a celestial WCS astropy understands, such as a
    DSS plate solution (PLTRAH, AMDX1, ...): the block is then its local linear (TAN) form at the
    image centre (:func:`linear_wcs_at_centre`).
    """
    crpix1, crval1 = _num(header.get("CRPIX1")), _num(header.get("CRVAL1"))
    if crpix1 == 0.0 and crval1 == 0.0:
        return linear_wcs_at_centre(header)
    cdelt = [_num(header.get("CDELT1"), math.nan), _num(header.get("CDELT2"), math.nan)]
    has_cd = any(f"CD{i}_{j}" in header for i in (1, 2) for j in (1, 2))
    cd = [[0.0, 0.0], [0.0, 0.0]]
    for i in (1, 2):
        for j in (1, 2):
            if has_cd:
                cd[i - 1][j - 1] = _num(header.get(f"CD{i}_{j}"))
            else:
                pc = _num(header.get(f"PC{i}_{j}"), 1.0 if i == j else 0.0)
                cd[i - 1][j - 1] = pc * (cdelt[i - 1] if math.isfinite(cdelt[i - 1]) else 1.0)
    cdelt1 = cdelt[0] if math.isfinite(cdelt[0]) else cd[0][0]
    cdelt2 = cdelt[1] if math.isfinite(cdelt[1]) else cd[1][1]
    return {
        "crpix1": crpix1,
        "crpix2": _num(header.get("CRPIX2")),
        "crval1": crval1,
        "crval2": _num(header.get("CRVAL2")),
        "cdelt1": cdelt1,
        "cdelt2": cdelt2,
        "cd1_1": cd[0][0],
        "cd1_2": cd[0][1],
        "cd2_1": cd[1][0],
        "cd2_2": cd[1][1],
        "ctype1": str(header.get("CTYPE1", "")),
        "ctype2": str(header.get("CTYPE2", "")),
    }


def _world(wcs: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lon, lat = wcs.pixel_to_world_values(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def linear_wcs_at_centre(header: Any) -> dict[str, Any] | None:
    """Flat WCS block of the tangent-plane linearisation of the header's celestial WCS at the image centre.

    CRVAL is the sky position of the centre pixel (CRPIX); the CD matrix is the derivative of the
    standard coordinates (degrees) by pixel there, by central differences. ``None`` when the header
    has no celestial WCS or the centre has no finite position.
    """
    wcs = celestial_wcs(header)
    if wcs is None:
        return None
    nx, ny = _num(header.get("NAXIS1"), 1.0), _num(header.get("NAXIS2"), 1.0)
    cx, cy = (nx - 1.0) / 2.0, (ny - 1.0) / 2.0  # 0-based centre
    lon, lat = _world(wcs, np.array([cx, cx + 0.5, cx - 0.5, cx, cx]), np.array([cy, cy, cy, cy + 0.5, cy - 0.5]))
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        return None
    lon0, lat0 = np.radians(lon[0]), np.radians(lat[0])
    dlon, phi = np.radians(lon[1:]) - lon0, np.radians(lat[1:])
    # gnomonic (TAN) standard coordinates of the four neighbours about the centre, in degrees
    cos_c = np.sin(lat0) * np.sin(phi) + np.cos(lat0) * np.cos(phi) * np.cos(dlon)
    xi = np.degrees(np.cos(phi) * np.sin(dlon) / cos_c)
    eta = np.degrees((np.cos(lat0) * np.sin(phi) - np.sin(lat0) * np.cos(phi) * np.cos(dlon)) / cos_c)
    cd = [[float(xi[0] - xi[1]), float(xi[2] - xi[3])], [float(eta[0] - eta[1]), float(eta[2] - eta[3])]]
    names = [str(c).split("-")[0] for c in wcs.wcs.ctype]
    return {
        "crpix1": cx + 1.0,
        "crpix2": cy + 1.0,
        "crval1": float(lon[0]) % 360.0,
        "crval2": float(lat[0]),
        "cdelt1": cd[0][0],
        "cdelt2": cd[1][1],
        "cd1_1": cd[0][0],
        "cd1_2": cd[0][1],
        "cd2_1": cd[1][0],
        "cd2_2": cd[1][1],
        "ctype1": f"{names[0]:-<5}TAN",
        "ctype2": f"{names[1]:-<5}TAN",
    }


_UNITS = {
    "m": "m",
    "meter": "m",
    "meters": "m",
    "um": "um",
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "µm": "um",
    "nm": "nm",
    "nanometer": "nm",
    "a": "A",
    "angstrom": "A",
    "angstroms": "A",
    "hz": "Hz",
}


def slice_label(ctype3: str) -> str:
    """Human label of the browsed axis from its CTYPEn (CTYPE3 for an ordinary cube)."""
    upper = ctype3.upper()
    if "WAVE" in upper or "LAMB" in upper:
        return "Wavelength"
    if "FREQ" in upper:
        return "Frequency"
    if "VELO" in upper or "VRAD" in upper or "VOPT" in upper:
        return "Velocity"
    if "TIME" in upper or "MJD" in upper:
        return "Time"
    return ctype3.strip() or "Frame"


def slice_unit(cunit3: str) -> str:
    """CUNITn of the browsed axis normalised to ``m, um, nm, A, Hz`` where recognised, else the raw value."""
    raw = cunit3.strip()
    return _UNITS.get(raw.lower(), raw)


#: Where a ``-TAB`` axis keeps its values when the header does not say (the JWST ``_s3d`` layout).
DEFAULT_TABLE_EXTNAME = "WCS-TABLE"
DEFAULT_TABLE_COLUMN = "wavelength"


def tabulated_values(path: Any, header: Any, axis: int, n_values: int) -> np.ndarray | None:
    """Return the ``n_values`` coordinates of a tabulated (``CTYPEn = '...-TAB'``) axis, or ``None``.

    The values are the first row of column ``PSn_1`` of the table extension ``PSn_0`` (default
    ``WCS-TABLE`` and ``wavelength``, where a JWST ``_s3d`` cube with a non-linear wavelength grid
    keeps them). They are read directly: the cube-building pipeline writes the array's ``TDIM`` in
    an order that astropy's ``-TAB`` reader does not accept.
    """
    if not str(header.get(f"CTYPE{axis}", "")).upper().endswith("-TAB"):
        return None
    extname = str(header.get(f"PS{axis}_0", DEFAULT_TABLE_EXTNAME)).strip()
    column = str(header.get(f"PS{axis}_1", DEFAULT_TABLE_COLUMN)).strip()
    try:
        with open_fits(path) as hdul:
            table = hdul[extname]
            names = {name.lower(): name for name in table.columns.names}
            values = np.ravel(np.asarray(table.data[names[column.lower()]][0], dtype=np.float64))
    except (KeyError, IndexError, TypeError, ValueError, OSError, AttributeError):
        return None
    if values.size != n_values or not np.all(np.isfinite(values)):
        return None
    return values


def cube_axis(header: Any, axis: int = 3, tabulated: np.ndarray | None = None) -> dict[str, Any] | None:
    """Describe the browsed axis ``axis`` (CRVALn, CDELTn or CDn_n, CRPIXn, CUNITn, CTYPEn).

    The keys keep the contract's names (``crval3``, ...) whichever FITS axis is browsed (the
    spectral axis 3 of a radio cube whose Stokes axis 4 has length 1, for instance); ``None``
    without CRVALn and a step. A tabulated axis (``tabulated``, from :func:`tabulated_values`) is
    described by its first value and its mean step, at pixel 1.
    """
    if tabulated is not None and tabulated.size >= 2:
        return {
            "crval3": float(tabulated[0]),
            "cdelt3": float((tabulated[-1] - tabulated[0]) / (tabulated.size - 1)),
            "crpix3": 1.0,
            "cunit3": str(header.get(f"CUNIT{axis}", "") or ""),
            "ctype3": str(header.get(f"CTYPE{axis}", "") or ""),
        }
    step = header.get(f"CDELT{axis}", header.get(f"CD{axis}_{axis}"))
    if f"CRVAL{axis}" not in header or step is None:
        return None
    return {
        "crval3": _num(header.get(f"CRVAL{axis}")),
        "cdelt3": _num(step),
        "crpix3": _num(header.get(f"CRPIX{axis}"), 1.0),
        "cunit3": str(header.get(f"CUNIT{axis}", "") or ""),
        "ctype3": str(header.get(f"CTYPE{axis}", "") or ""),
    }
