"""What headers say for display: the pixel-data WCS block and the cube axis labels."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from app.processing import headers
from app.processing.headers import pixel_wcs, slice_label, slice_unit
from tests.support.fits_factory import make_wcs


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


def test_linear_wcs_at_centre_of_a_tan_header_is_that_header() -> None:
    wcs = make_wcs((40, 60), ra=150.0, dec=2.0, rotation_deg=30.0)
    header = wcs.to_header()
    header["NAXIS1"], header["NAXIS2"] = 60, 40
    block = headers.linear_wcs_at_centre(header)
    assert block is not None
    assert (block["crpix1"], block["crpix2"]) == (30.5, 20.5)
    assert block["crval1"] == pytest.approx(150.0, abs=1e-9)
    assert block["crval2"] == pytest.approx(2.0, abs=1e-9)
    cd = [[block["cd1_1"], block["cd1_2"]], [block["cd2_1"], block["cd2_2"]]]
    np.testing.assert_allclose(cd, wcs.pixel_scale_matrix, rtol=1e-6, atol=1e-12)
    assert (block["ctype1"], block["ctype2"]) == ("RA---TAN", "DEC--TAN")


def test_pixel_wcs_without_any_wcs_is_none() -> None:
    assert headers.pixel_wcs(fits.Header({"NAXIS1": 10, "NAXIS2": 10})) is None
