"""Pure helpers of the viewer jobs: sizes, WCS block, cube labels, AVM metadata parsing."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from app.viewer.render import block_factor, fit_box, pixel_wcs, resize, slice_label, slice_unit
from app.viewer.service import parse_avm_metadata


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
def test_fit_box(shape: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit_box(shape[0], shape[1], box[0], box[1]) == expected


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


def test_pixel_wcs_fallbacks() -> None:
    cd_only = fits.Header({"CRPIX1": 10.0, "CRPIX2": 5.0, "CRVAL1": 1.0, "CRVAL2": 2.0, "CD1_1": -1e-5, "CD2_2": 1e-5,
                           "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN"})  # fmt: skip
    block = pixel_wcs(cd_only)
    assert block is not None
    assert (block["cdelt1"], block["cdelt2"], block["cd1_2"], block["cd2_1"]) == (-1e-5, 1e-5, 0.0, 0.0)
    cdelt_only = fits.Header({"CRPIX1": 10.0, "CRVAL1": 1.0, "CDELT1": -2e-5, "CDELT2": 2e-5})
    block = pixel_wcs(cdelt_only)
    assert block is not None and (block["cd1_1"], block["cd2_2"]) == (-2e-5, 2e-5)
    assert block["ctype1"] == "" and block["crpix2"] == 0.0
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


def test_parse_avm_metadata() -> None:
    raw = '{"target_name": "M16", "filter": "F444W", "other": "x", "instrument": null}'
    assert parse_avm_metadata(raw) == {"target_name": "M16", "filter": "F444W"}
    assert parse_avm_metadata("") is None
    assert parse_avm_metadata("{oops") is None
    assert parse_avm_metadata("[1, 2]") is None
