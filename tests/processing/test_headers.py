"""What headers say for display: the pixel-data WCS block and the cube axis labels."""

from __future__ import annotations

import pytest
from astropy.io import fits

from app.processing.headers import pixel_wcs, slice_label, slice_unit


def test_pixel_wcs_fallbacks() -> None:
    cd_only = fits.Header({"CRPIX1": 10.0, "CRPIX2": 5.0, "CRVAL1": 1.0, "CRVAL2": 2.0, "CD1_1": -1e-5, "CD2_2": 1e-5,
                           "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"})  # fmt: skip
    block = pixel_wcs(cd_only)
    assert block is not None
    assert (block["cdelt1"], block["cdelt2"], block["cd1_2"], block["cd2_1"]) == (-1e-5, 1e-5, 0.0, 0.0)
    cdelt_only = fits.Header({"CRPIX1": 10.0, "CRVAL1": 1.0, "CDELT1": -2e-5, "CDELT2": 2e-5})
    block = pixel_wcs(cdelt_only)
    assert block is not None
    assert (block["cd1_1"], block["cd2_2"]) == (-2e-5, 2e-5)
    assert block["ctype1"] == ""
    assert block["crpix2"] == 0.0
    assert pixel_wcs(fits.Header({"CDELT1": 1.0})) is None
    assert pixel_wcs(fits.Header({"CRPIX1": 0.0, "CRVAL1": 0.0, "CTYPE1": "RA---TAN"})) is None


@pytest.mark.parametrize(
    ("ctype", "label"),
    [("WAVE", "Wavelength"), ("LAMBDA", "Wavelength"), ("FREQ", "Frequency"),
     ("VRAD", "Velocity"), ("VELO-LSR", "Velocity"), ("TIME", "Time"), ("MJD", "Time"), ("STOKES", "STOKES"),
     ("", "Frame")],
)  # fmt: skip
def test_slice_label(ctype: str, label: str) -> None:
    assert slice_label(ctype) == label


@pytest.mark.parametrize(
    ("cunit", "unit"),
    [("um", "um"), ("micron", "um"), ("m", "m"), ("nm", "nm"), ("Angstrom", "A"), ("Hz", "Hz"), ("km/s", "km/s"),
     ("", "")],
)  # fmt: skip
def test_slice_unit(cunit: str, unit: str) -> None:
    assert slice_unit(cunit) == unit
