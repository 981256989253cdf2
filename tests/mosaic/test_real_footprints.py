"""``POST /mosaic/footprint`` on real files in several frames: every footprint is ICRS, RA in [0, 360).

The MAGPIS cutout is a galactic-plane radio map (GLON/GLAT) centred on l = 10.5, b = 0, which is
RA 272.2; M13's and the DSS plate's headers are FK5 J2000; the SDO/AIA image of the Sun is in
helioprojective coordinates, which have no RA/Dec and are refused clearly.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from fastapi.testclient import TestClient

from main import create_app
from tests.support.engine_settings import make_settings
from tests.support.fits_factory import make_wcs, write_image
from tests.support.real_data import copy_corpus, dss_plate_only

URL = "/mosaic/footprint"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("frames") / "data"
    copy_corpus(data, ["magpis_galactic", "m13", "sun_aia171"])
    dss_plate_only(data / "dss_plate.fits")
    image = np.ones((50, 60), dtype=np.float32)
    write_image(data / "across_ra0.fits", image, wcs=make_wcs((50, 60), ra=0.0, dec=10.0, pixel_scale_arcsec=1.0))
    return data


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(root)), raise_server_exceptions=False) as test_client:
        yield test_client


def _expected_icrs(path: Path) -> SkyCoord:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.getheader(path)
        wcs = WCS(header).celestial
        h, w = header["NAXIS2"], header["NAXIS1"]
        return wcs.pixel_to_world([0, w - 1, w - 1, 0], [0, 0, h - 1, h - 1]).icrs


def test_galactic_footprint_is_reported_in_icrs(client: TestClient, root: Path) -> None:
    body = client.post(URL, json={"file_paths": ["magpis_galactic.fits"]}).json()
    (fp,) = body["footprints"]
    centre = SkyCoord(l=10.5, b=0.0, unit="deg", frame="galactic").icrs
    assert abs(fp["center_ra"] - centre.ra.deg) < 0.05  # 272.2, not l = 10.5
    assert abs(fp["center_dec"] - centre.dec.deg) < 0.05
    expected = _expected_icrs(root / "magpis_galactic.fits")
    np.testing.assert_allclose(fp["corners_ra"], expected.ra.deg, atol=1e-8)
    np.testing.assert_allclose(fp["corners_dec"], expected.dec.deg, atol=1e-8)


def test_mixed_frames_share_one_icrs_box(client: TestClient) -> None:
    keys = ["magpis_galactic.fits", "m13.fits", "dss_plate.fits"]
    body = client.post(URL, json={"file_paths": keys}).json()
    assert body["n_files"] == 3
    ras = [ra for fp in body["footprints"] for ra in fp["corners_ra"]]
    assert all(0.0 <= ra < 360.0 for ra in ras)
    box = body["bounding_box"]
    assert 0.0 <= box["min_ra"] < box["max_ra"] < 360.0
    assert box["min_ra"] == pytest.approx(min(ras))
    assert box["max_ra"] == pytest.approx(max(ras))
    m13 = SkyCoord(250.4235, 36.4613, unit="deg")  # M13 (ICRS)
    m13_fp = body["footprints"][1]
    assert SkyCoord(m13_fp["center_ra"], m13_fp["center_dec"], unit="deg").separation(m13).deg < 0.05


def test_box_across_ra_zero_stays_in_range(client: TestClient) -> None:
    box = client.post(URL, json={"file_paths": ["across_ra0.fits"]}).json()["bounding_box"]
    assert 359.9 < box["min_ra"] < 360.0
    assert 0.0 <= box["max_ra"] < 0.1  # a box across RA = 0 has min_ra > max_ra


def test_non_celestial_frame_is_refused_clearly(client: TestClient) -> None:
    response = client.post(URL, json={"file_paths": ["m13.fits", "sun_aia171.fits"]})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "sun_aia171.fits" in detail
    assert "HPLN/HPLT" in detail
    assert "not on the celestial sphere" in detail
