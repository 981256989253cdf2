"""Real HST data shipped with astroquery's test data: a three-filter CANDELS GOODS-N cutout.

``astroquery/mast/tests/data/astrocut_189.49206_62.20615_100x100px_f.zip`` holds one astrocut FITS
file with three 100 x 100 ``CUTOUT`` extensions (ACS F606W, F814W and F850LP at 30 mas/pixel, in
that order). :func:`extract_candels_cutout` splits it into three single-image FITS files, each with
its extension's full header (and so its WCS) in the primary HDU.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import astroquery
from astropy.io import fits

ZIP_NAME = "astrocut_189.49206_62.20615_100x100px_f.zip"
#: Filters of the cutout, bluest first, and their pivot wavelengths in micrometres.
FILTERS: dict[str, float] = {"f606w": 0.592, "f814w": 0.806, "f850lp": 0.904}


def cutout_zip() -> Path:
    """Path of the zip inside the installed astroquery package."""
    return Path(astroquery.__file__).parent / "mast" / "tests" / "data" / ZIP_NAME


def _filter_name(header: fits.Header) -> str:
    names = [str(header.get(key, "")).strip() for key in ("FILTER", "FILTER1", "FILTER2")]
    real = [name for name in names if name and not name.upper().startswith("CLEAR")]
    if len(real) != 1:
        raise ValueError(f"cannot tell the filter of a cutout extension from {names}")
    return real[0].lower()


def extract_candels_cutout(dest: Path) -> dict[str, Path]:
    """Write one FITS file per filter under ``dest`` (``<filter>.fits``); returns ``{filter: path}``."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(cutout_zip()) as archive:
        (member,) = [name for name in archive.namelist() if name.endswith(".fits")]
        raw = archive.read(member)
    written: dict[str, Path] = {}
    with fits.open(io.BytesIO(raw)) as hdul:
        for hdu in hdul[1:]:
            if hdu.name != "CUTOUT" or hdu.data is None:
                continue
            name = _filter_name(hdu.header)
            path = dest / f"{name}.fits"
            header = hdu.header.copy()
            for key in ("XTENSION", "PCOUNT", "GCOUNT"):
                header.remove(key, ignore_missing=True)
            fits.PrimaryHDU(data=hdu.data, header=header).writeto(path, overwrite=True)
            written[name] = path
    if sorted(written) != sorted(FILTERS):
        raise ValueError(f"unexpected filters in the cutout: {sorted(written)}")
    return written
