"""Sky positions of input files in ICRS, whatever the frame of their WCS (app.processing.sources)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from app.processing.sources import ImageSource, NotASkyFrame, icrs_of_pixels, load_source
from tests.support.fits_factory import write_image


def _source(tmp_path: Path, ctype: tuple[str, str], crval: tuple[float, float], **cards: object) -> ImageSource:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = list(ctype)
    wcs.wcs.crval = list(crval)
    wcs.wcs.crpix = [10.5, 8.5]
    wcs.wcs.cdelt = [-1e-3, 1e-3]
    path = write_image(tmp_path / "f.fits", np.ones((16, 20), dtype=np.float32), wcs=wcs, header=dict(cards))
    return load_source(path, "f.fits")


def test_galactic_pixels_are_converted_to_icrs(tmp_path: Path) -> None:
    source = _source(tmp_path, ("GLON-TAN", "GLAT-TAN"), (10.5, 0.0))
    ra, dec = icrs_of_pixels(source, np.array([9.5]), np.array([7.5]))
    truth = SkyCoord(l=10.5, b=0.0, unit="deg", frame="galactic").icrs
    assert ra[0] == pytest.approx(truth.ra.deg, abs=1e-9)
    assert dec[0] == pytest.approx(truth.dec.deg, abs=1e-9)


def test_fk4_pixels_are_precessed_and_ra_is_wrapped(tmp_path: Path) -> None:
    source = _source(tmp_path, ("RA---TAN", "DEC--TAN"), (359.9, 20.0), RADESYS="FK4", EQUINOX=1950.0)
    ra, dec = icrs_of_pixels(source, np.array([9.5]), np.array([7.5]))
    truth = SkyCoord(359.9, 20.0, unit="deg", frame="fk4", equinox="B1950").icrs
    assert 0.0 <= ra[0] < 360.0
    assert ra[0] == pytest.approx(truth.ra.deg, abs=1e-9)
    assert dec[0] == pytest.approx(truth.dec.deg, abs=1e-9)


def test_helioprojective_is_not_a_sky_frame(tmp_path: Path) -> None:
    source = _source(tmp_path, ("HPLN-TAN", "HPLT-TAN"), (0.0, 0.0))
    with pytest.raises(NotASkyFrame, match="HPLN/HPLT"):
        icrs_of_pixels(source, np.array([0.0]), np.array([0.0]))
