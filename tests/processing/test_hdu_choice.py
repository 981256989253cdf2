"""Choosing the image HDU and masking JWST DQ flags in app.processing.fits_io, on files written with astropy.

The files mimic the layouts without the JWST library: an HST-style file whose DQ bits mean other
things, a gzip-compressed JWST file (read through astropy, not plain file reads), a file whose
SCI is not its first image, several EXTVERs. The stdatamodels-written products are in tests/jwst.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from app.processing import fits_io
from app.processing.errors import InvalidInput, NoImageData
from app.processing.fits_io import HduChoice
from app.processing.sources import find_weight_hdu
from tests.support.fits_factory import make_wcs

SHAPE = (40, 60)
HOT = (12, 18)


def _planes(telescope: str) -> fits.HDUList:
    """A product with SCI (1, hot pixel 1e6), ERR, DQ (HOT | DO_NOT_USE at ``HOT``) and WHT, all of SHAPE."""
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = telescope
    sci = np.ones(SHAPE, np.float32)
    sci[HOT] = 1e6
    dq = np.zeros(SHAPE, np.uint32)
    dq[HOT] = 2048 | 1
    header = make_wcs(SHAPE).to_header()
    return fits.HDUList(
        [
            primary,
            fits.ImageHDU(np.full(SHAPE, 5.0, np.float32), name="WHT"),
            fits.ImageHDU(sci, header=header, name="SCI"),
            fits.ImageHDU(np.full(SHAPE, 0.5, np.float32), name="ERR"),
            fits.ImageHDU(dq, name="DQ"),  # astropy writes uint32 as int32 with BZERO = 2**31
        ]
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hdu_choice")
    out = {"jwst": root / "jwst.fits", "hst": root / "hst.fits", "gz": root / "jwst.fits.gz"}
    _planes("JWST").writeto(out["jwst"])
    _planes("HST").writeto(out["hst"])
    out["gz"].write_bytes(gzip.compress(out["jwst"].read_bytes()))
    two = fits.HDUList([fits.PrimaryHDU()])
    for ver, value in ((1, 1.0), (2, 2.0)):
        two.append(fits.ImageHDU(np.full((8, 9), value, np.float32), name="SCI", ver=ver))
    out["two_chips"] = root / "two_chips.fits"
    two.writeto(out["two_chips"])
    return out


def test_sci_is_the_default_whatever_its_index(files: dict[str, Path]) -> None:
    info = fits_io.image_info(files["jwst"])
    assert (info.hdu_index, info.extname) == (2, "SCI")  # not WHT, the first image


def test_by_name_case_and_version(files: dict[str, Path]) -> None:
    assert fits_io.image_info(files["jwst"], choice=HduChoice(extname="wht")).hdu_index == 1
    second = fits_io.read_plane(files["two_chips"], choice=HduChoice(extname="SCI", extver=2))
    assert np.all(second.data == 2.0)
    assert np.all(fits_io.read_plane(files["two_chips"]).data == 1.0)  # the first SCI
    with pytest.raises(InvalidInput, match=r"SCI,3 .*: PRIMARY, SCI, SCI,2"):
        fits_io.image_info(files["two_chips"], choice=HduChoice(extname="SCI", extver=3))
    with pytest.raises(InvalidInput, match="out of range"):
        fits_io.image_info(files["jwst"], choice=HduChoice(index=5))
    with pytest.raises(NoImageData):
        fits_io.image_info(files["jwst"], choice=HduChoice(index=0))


def test_err_borrows_the_sci_wcs(files: dict[str, Path]) -> None:
    err = fits_io.image_info(files["jwst"], choice=HduChoice(extname="ERR"))
    assert err.header["CTYPE1"] == "RA---TAN"
    assert fits_io.celestial_wcs(err.header) is not None


@pytest.mark.parametrize("name", ["jwst", "gz"])
def test_jwst_dq_flags_are_nan_in_every_read(files: dict[str, Path], name: str) -> None:
    path = files[name]
    info = fits_io.image_info(path)
    assert info.dq is not None
    assert info.dq.bzero == 2**31
    full = fits_io.read_plane(path).data
    assert np.isnan(full[HOT])
    assert np.isnan(full).sum() == 1
    # block average: the flagged pixel is left out of its block, not averaged in
    block = fits_io.read_plane(path, factor=2).data
    assert block[HOT[0] // 2, HOT[1] // 2] == pytest.approx(1.0)
    stride = fits_io.read_plane(path, factor=6, method="stride").data  # the DQ read with the same stride
    assert np.isnan(stride[2, 3])
    assert np.isnan(stride).sum() == 1
    window = fits_io.read_window(path, info, rows=slice(11, 14), cols=slice(17, 20))
    assert np.isnan(window[1, 1])
    assert np.isfinite(window).sum() == 8


def test_hst_dq_bits_are_left_alone(files: dict[str, Path]) -> None:
    info = fits_io.image_info(files["hst"])
    assert info.dq is None
    assert fits_io.read_plane(files["hst"]).data[HOT] == 1e6


def test_weights_prefer_err_then_variances_then_wht(files: dict[str, Path], tmp_path: Path) -> None:
    info = fits_io.image_info(files["jwst"])
    weights = find_weight_hdu(files["jwst"], info)
    assert weights is not None
    assert (weights.kind, weights.hdu_indices) == ("ERR", (3,))
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(np.ones(SHAPE, np.float32), name="SCI"),
            fits.ImageHDU(np.ones(SHAPE, np.float32), name="WHT"),
            fits.ImageHDU(np.ones(SHAPE, np.float32), name="VAR_POISSON"),
            fits.ImageHDU(np.ones(SHAPE, np.float32), name="VAR_RNOISE"),
        ]
    )
    hdul.writeto(tmp_path / "var.fits")
    var = find_weight_hdu(tmp_path / "var.fits", fits_io.image_info(tmp_path / "var.fits"))
    assert var is not None
    assert (var.kind, var.hdu_indices) == ("VAR", (3, 4))
    err_plane = fits_io.image_info(files["jwst"], choice=HduChoice(extname="ERR"))
    assert find_weight_hdu(files["jwst"], err_plane) is None  # the ERR plane itself is not weighted
