"""What FITS headers say for display: the flat WCS block of pixel data and the third axis of cubes.

Only header cards are read here; values that are missing, non-numeric or not finite fall back to
a stated default, so a damaged card never reaches a client as NaN.
"""

from __future__ import annotations

import math
from typing import Any


def _num(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def pixel_wcs(header: Any) -> dict[str, Any] | None:
    """Build the contract's flat WCS block (CDELT falls back to CD, CD to PC x CDELT); ``None`` without a WCS."""
    crpix1, crval1 = _num(header.get("CRPIX1")), _num(header.get("CRVAL1"))
    if crpix1 == 0.0 and crval1 == 0.0:
        return None
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
    """Human label of the browsed axis from its CTYPEn (CTYPE3 in contract 6.5)."""
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


def cube_axis(header: Any, axis: int = 3) -> dict[str, Any] | None:
    """Describe the browsed axis ``axis`` (CRVALn, CDELTn or CDn_n, CRPIXn, CUNITn, CTYPEn).

    The keys keep the contract's names (``crval3``, ...) whichever FITS axis is browsed (the
    spectral axis 3 of a radio cube whose Stokes axis 4 has length 1, for instance); ``None``
    without CRVALn and a step.
    """
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
