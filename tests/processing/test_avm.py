"""AVM 1.2 XMP: scale and rotation from the full WCS, scaling to output size, round trips."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from astropy.wcs import WCS
from numpy.testing import assert_allclose
from PIL import Image

from app.processing.avm import avm_xmp, display_wcs, scale_and_rotation
from app.processing.encoding import encode_jpeg, encode_png
from tests.support.avm_reader import parse_avm_xmp, wcs_from_avm


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
        matrix = wcs.pixel_scale_matrix
        cd_wcs = WCS(naxis=2)
        cd_wcs.wcs.ctype = list(wcs.wcs.ctype)
        cd_wcs.wcs.crval = list(wcs.wcs.crval)
        cd_wcs.wcs.crpix = list(wcs.wcs.crpix)
        cd_wcs.wcs.cd = matrix
        cd_wcs.wcs.set()
        return cd_wcs
    return wcs


@pytest.mark.parametrize("crota2", [0.0, 17.5, -63.0, 135.0])
@pytest.mark.parametrize("use_cd", [False, True])
def test_rotation_and_scale_match_the_wcs(crota2: float, use_cd: bool) -> None:
    wcs = crota_wcs(crota2, use_cd=use_cd)
    fields = parse_avm_xmp(avm_xmp(wcs, (300, 400)))
    assert fields["Spatial.Rotation"] == pytest.approx(crota2, abs=0.01)
    assert_allclose(fields["Spatial.Scale"], [-2e-5, 2e-5], rtol=1e-9)
    assert fields["Spatial.ReferenceDimension"] == [400.0, 300.0]
    assert fields["Spatial.ReferencePixel"] == [200.5, 150.5]
    assert fields["Spatial.CoordinateFrame"] == "ICRS"
    assert fields["Spatial.CoordsystemProjection"] == "TAN"
    assert "Spatial.CDMatrix" not in fields
    rebuilt = wcs_from_avm(fields)
    assert_allclose(rebuilt.pixel_scale_matrix, wcs.pixel_scale_matrix, rtol=1e-9, atol=1e-15)
    sky_a = wcs.pixel_to_world(10.0, 250.0)
    sky_b = rebuilt.pixel_to_world(10.0, 250.0)
    assert sky_a.separation(sky_b).arcsec < 1e-6


def test_rotation_is_the_y_axis_position_angle_sign_convention() -> None:
    # CROTA2 = +30: moving up the image points 30 degrees west of north (east is to the left)
    wcs = crota_wcs(30.0)
    centre = wcs.pixel_to_world(200.0, 150.0)
    up = wcs.pixel_to_world(200.0, 151.0)
    pa = centre.position_angle(up).deg
    rotation = parse_avm_xmp(avm_xmp(wcs, (300, 400)))["Spatial.Rotation"]
    assert ((-pa - rotation + 180) % 360 - 180) == pytest.approx(0.0, abs=0.01)


def test_scale_and_rotation_of_mirrored_parity() -> None:
    cdelt1, cdelt2, rotation = scale_and_rotation(np.array([[2e-5, 0.0], [0.0, 2e-5]]))
    assert cdelt1 > 0
    assert cdelt2 > 0
    assert rotation == pytest.approx(0.0)
    fields = parse_avm_xmp(avm_xmp(crota_wcs(0.0, cdelt=(2e-5, 2e-5)), (10, 10)))
    assert_allclose(fields["Spatial.CDMatrix"], [2e-5, 0.0, 0.0, 2e-5])
    assert_allclose(wcs_from_avm(fields).pixel_scale_matrix, [[2e-5, 0], [0, 2e-5]])


def test_display_wcs_scales_to_output() -> None:
    wcs = crota_wcs(40.0)
    out = display_wcs(wcs, (300, 400), (150, 200))
    assert_allclose(out.pixel_scale_matrix, wcs.pixel_scale_matrix * 2.0)
    # the same sky position at the corresponding (scaled) pixel, in the 1-based FITS convention
    x, y = 123.0, 77.0
    sky = wcs.pixel_to_world(x, y)
    sky_out = out.pixel_to_world((x + 0.5) / 2 - 0.5, (y + 0.5) / 2 - 0.5)
    assert sky.separation(sky_out).arcsec < 1e-6
    fields = parse_avm_xmp(avm_xmp(out, (150, 200)))
    assert fields["Spatial.Rotation"] == pytest.approx(40.0, abs=0.01)
    assert_allclose(fields["Spatial.Scale"], [-4e-5, 4e-5])


def test_display_wcs_unflipped_image() -> None:
    wcs = crota_wcs(0.0)
    out = display_wcs(wcs, (300, 400), (300, 400), flipped=False)
    sky = wcs.pixel_to_world(10.0, 20.0)
    assert sky.separation(out.pixel_to_world(10.0, 300 - 1 - 20.0)).arcsec < 1e-6


def test_metadata_and_embedding_round_trip() -> None:
    wcs = crota_wcs(12.0)
    meta = {"target_name": "Orion <Bar> & co", "facility": "JWST", "instrument": "NIRCam", "filter": "F200W",
            "spectral_band": "Infrared", "description": "A test", "unknown": "x", "empty": ""}  # fmt: skip
    xmp = avm_xmp(wcs, (30, 40), metadata=meta)
    for data in (
        encode_png(np.zeros((30, 40, 3), np.uint8), xmp=xmp),
        encode_jpeg(np.zeros((30, 40, 3), np.uint8), xmp=xmp),
    ):
        image = Image.open(io.BytesIO(data))
        fields = parse_avm_xmp(image.info["xmp"])
        assert fields["Subject.Name"] == ["Orion <Bar> & co"]
        assert fields["Facility"] == ["JWST"]
        assert fields["Instrument"] == ["NIRCam"]
        assert fields["Spectral.Bandpass"] == ["F200W"]
        assert fields["Spectral.Band"] == ["Infrared"]
        assert fields["MetadataVersion"] == 1.2
        assert fields["Spatial.Rotation"] == pytest.approx(12.0, abs=0.01)
    assert "dc:description" in xmp
    assert "A test" in xmp
    with pytest.raises(ValueError, match="no x:xmpmeta element"):
        parse_avm_xmp("<nothing/>")


def test_galactic_frame() -> None:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    wcs.wcs.cdelt = [-0.01, 0.01]
    wcs.wcs.crpix = [5, 5]
    wcs.wcs.crval = [10, 0]
    fields = parse_avm_xmp(avm_xmp(wcs, (10, 10)))
    assert fields["Spatial.CoordinateFrame"] == "GAL"
    assert fields["Spatial.CoordsystemProjection"] == "CAR"
    assert math.isclose(fields["Spatial.Rotation"], 0.0, abs_tol=1e-9)
