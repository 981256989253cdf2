"""AVM written by pyavm from the output WCS: scale, rotation, projection, parity, metadata, read back by pyavm."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from numpy.testing import assert_allclose
from PIL import Image

from app.processing.avm import avm_xmp, display_wcs, shifted
from app.processing.encoding import encode_jpeg, encode_png
from tests.support.avm_reader import assert_sky_matches, avm_wcs, read_avm, resized
from tests.support.real_data import CORPUS


def crota_wcs(crota2: float, *, cdelt: tuple[float, float] = (-2e-5, 2e-5), use_cd: bool = False) -> WCS:
    """A TAN WCS defined with CDELT + CROTA2 (wcslib converts it), optionally re-expressed as CD."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [83.8, -5.4]
    wcs.wcs.crpix = [200.5, 150.5]
    wcs.wcs.cdelt = list(cdelt)
    wcs.wcs.crota = [0.0, crota2]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    if use_cd:
        cd_wcs = WCS(naxis=2)
        cd_wcs.wcs.ctype = list(wcs.wcs.ctype)
        cd_wcs.wcs.crval = list(wcs.wcs.crval)
        cd_wcs.wcs.crpix = list(wcs.wcs.crpix)
        cd_wcs.wcs.cd = wcs.pixel_scale_matrix
        cd_wcs.wcs.set()
        return cd_wcs
    return wcs


def png_with(wcs: WCS, shape: tuple[int, int], **kwargs: object) -> bytes:
    return encode_png(np.zeros((*shape, 3), np.uint8), xmp=avm_xmp(wcs, shape, **kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize("crota2", [0.0, 17.5, -63.0, 135.0])
@pytest.mark.parametrize("use_cd", [False, True])
def test_rotation_and_scale_match_the_wcs(crota2: float, use_cd: bool) -> None:
    wcs = crota_wcs(crota2, use_cd=use_cd)
    content = png_with(display_wcs(wcs, (300, 400), (300, 400)), (300, 400))
    avm = read_avm(content)
    assert avm.Spatial.Rotation == pytest.approx(crota2 % 360, abs=0.01)
    assert_allclose(avm.Spatial.Scale, [-2e-5, 2e-5], rtol=1e-9)
    assert list(avm.Spatial.ReferenceDimension) == [400, 300]
    assert avm.Spatial.CoordinateFrame == "ICRS"
    assert avm.Spatial.CoordsystemProjection == "TAN"
    assert avm.Spatial.CDMatrix is None
    rebuilt = avm_wcs(content)
    assert_allclose(rebuilt.pixel_scale_matrix, wcs.pixel_scale_matrix, rtol=1e-9, atol=1e-15)
    assert wcs.pixel_to_world(10.0, 250.0).separation(rebuilt.pixel_to_world(10.0, 250.0)).arcsec < 1e-6


def cd_pc_cdelt_header() -> fits.Header:
    """A header carrying CD, PC and CDELT at once; wcslib uses PC x CDELT (a 0.1"/px, 30 deg rotated grid)."""
    header = fits.Header()
    header["NAXIS"] = 2
    header["NAXIS1"] = 400
    header["NAXIS2"] = 300
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = 210.8, 54.3
    header["CRPIX1"], header["CRPIX2"] = 200.5, 150.5
    header["CDELT1"], header["CDELT2"] = -0.1 / 3600, 0.1 / 3600
    c, s = np.cos(np.radians(30.0)), np.sin(np.radians(30.0))
    header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = c, -s, s, c
    header["CD1_1"], header["CD1_2"], header["CD2_1"], header["CD2_2"] = 1.0, 0.0, 0.0, 1.0  # stale, ignored
    return header


def test_a_header_with_cd_pc_and_cdelt_together() -> None:
    """Regression: the CD matrix was rescaled while wcslib used PC, putting pixels ~2000" off."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(cd_pc_cdelt_header())
    out_shape = (150, 200)
    content = png_with(display_wcs(wcs, (300, 400), out_shape), out_shape)
    assert assert_sky_matches(content, out_shape, wcs, resized((300, 400), out_shape)) < 0.01
    assert read_avm(content).Spatial.Scale[1] == pytest.approx(0.2 / 3600, rel=1e-9)


def sip_wcs() -> WCS:
    header = fits.Header()
    for key, value in {
        "CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRVAL1": 150.1, "CRVAL2": 2.2,
        "CRPIX1": 512.5, "CRPIX2": 512.5, "CD1_1": -1.4e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1.4e-5,
        "A_ORDER": 2, "B_ORDER": 2, "A_2_0": 2e-6, "A_0_2": -1e-6, "B_1_1": 1.5e-6, "B_2_0": 5e-7,
    }.items():  # fmt: skip
        header[key] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(header)


def test_tan_sip_is_written_as_tan_fitted_to_the_distortion() -> None:
    wcs = sip_wcs()
    out_shape = (256, 256)
    content = png_with(display_wcs(wcs, (1024, 1024), out_shape), out_shape)
    assert read_avm(content).Spatial.CoordsystemProjection == "TAN"
    assert assert_sky_matches(content, out_shape, wcs, resized((1024, 1024), out_shape), samples=9) < 0.5


def test_zpn_of_a_real_file_is_written_as_a_fitted_tan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.getheader(CORPUS["ukidss"].path, 1)
        wcs = WCS(header).celestial
    assert "ZPN" in wcs.wcs.ctype[0]
    in_shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
    out_shape = (150, 150)
    content = png_with(display_wcs(wcs, in_shape, out_shape), out_shape)
    assert read_avm(content).Spatial.CoordsystemProjection == "TAN"
    assert_sky_matches(content, out_shape, wcs, resized(in_shape, out_shape), samples=7)


def test_display_wcs_unflipped_image_and_shift() -> None:
    wcs = crota_wcs(0.0)
    out = display_wcs(wcs, (300, 400), (300, 400), flipped=False)
    assert wcs.pixel_to_world(10.0, 20.0).separation(out.pixel_to_world(10.0, 300 - 1 - 20.0)).arcsec < 1e-6
    moved = shifted(out, 5.0, -3.0)
    assert out.pixel_to_world(10.0, 20.0).separation(moved.pixel_to_world(15.0, 17.0)).arcsec < 1e-6


def test_mirrored_parity_carries_the_cd_matrix() -> None:
    wcs = crota_wcs(0.0, cdelt=(2e-5, 2e-5))
    content = png_with(wcs, (10, 10))
    assert_allclose(read_avm(content).Spatial.CDMatrix, [2e-5, 0.0, 0.0, 2e-5])
    assert_allclose(avm_wcs(content).pixel_scale_matrix, [[2e-5, 0], [0, 2e-5]])


def test_metadata_and_embedding_round_trip() -> None:
    wcs = crota_wcs(12.0)
    meta = {"target_name": "Orion <Bar> & co", "facility": "JWST", "instrument": "NIRCam", "filter": "F200W",
            "spectral_band": "Infrared", "description": "A test", "unknown": "x", "empty": ""}  # fmt: skip
    xmp = avm_xmp(wcs, (30, 40), metadata=meta)
    for data in (
        encode_png(np.zeros((30, 40, 3), np.uint8), xmp=xmp),
        encode_jpeg(np.zeros((30, 40, 3), np.uint8), xmp=xmp),
    ):
        avm = read_avm(data)
        assert list(avm.Subject.Name) == ["Orion <Bar> & co"]
        assert list(avm.Facility) == ["JWST"]
        assert list(avm.Instrument) == ["NIRCam"]
        assert list(avm.Spectral.Bandpass) == ["F200W"]
        assert list(avm.Spectral.Band) == ["Infrared"]
        assert avm.Description == "A test"
        assert avm.Spatial.Rotation == pytest.approx(12.0, abs=0.01)
        assert Image.open(io.BytesIO(data)).size == (40, 30)


def test_a_band_outside_the_vocabulary_is_left_out() -> None:
    avm = read_avm(png_with(crota_wcs(0.0), (10, 10), metadata={"spectral_band": "Bogus", "filter": "F1"}))
    assert avm.Spectral.Band is None
    assert list(avm.Spectral.Bandpass) == ["F1"]


def test_galactic_frame_and_a_frame_avm_cannot_name() -> None:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    wcs.wcs.cdelt = [-0.01, 0.01]
    wcs.wcs.crpix = [5, 5]
    wcs.wcs.crval = [10, 0]
    avm = read_avm(png_with(display_wcs(wcs, (10, 10), (10, 10)), (10, 10)))
    assert avm.Spatial.CoordinateFrame == "GAL"
    assert avm.Spatial.CoordsystemProjection == "CAR"
    sun = WCS(naxis=2)
    sun.wcs.ctype = ["HPLN-TAN", "HPLT-TAN"]
    sun.wcs.cdelt = [1e-3, 1e-3]
    with pytest.raises(ValueError, match="AVM"):
        avm_xmp(sun, (10, 10))


def test_no_avm_leaves_the_encoding_unchanged() -> None:
    pixels = np.arange(30 * 40 * 3, dtype=np.uint8).reshape(30, 40, 3)
    assert encode_png(pixels) == encode_png(pixels, xmp=None)
    assert b"xpacket" not in encode_png(pixels)
    assert b"xpacket" not in encode_jpeg(pixels)
