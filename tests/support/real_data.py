"""Real astronomical FITS files that ship inside installed packages, as a small test corpus.

Two kinds of helper:

* :func:`extract_candels_cutout` splits astroquery's HST CANDELS GOODS-N astrocut zip
  (``astroquery/mast/tests/data/astrocut_189.49206_62.20615_100x100px_f.zip``: one FITS file with
  three 100 x 100 ``CUTOUT`` extensions, ACS F606W, F814W and F850LP at 30 mas/pixel) into three
  single-image FITS files, each with its extension's full header (and so its WCS) in the primary HDU;
* :data:`CORPUS` names single real files of astropy, astroquery and reproject test data (a
  globular cluster, the Sun, a galactic-plane radio map, a DSS plate, an LZW ``.Z`` file, ...), and
  :func:`copy_corpus` copies the wanted ones into a storage root under their corpus names.
  :func:`dss_plate_only` writes the DSS file with only its plate solution (the linear WCS cards
  removed), which is how many archive DSS cutouts come.
"""

from __future__ import annotations

import io
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import astropy
import astroquery
import pyvo
import reproject
from astropy.io import fits

ZIP_NAME = "astrocut_189.49206_62.20615_100x100px_f.zip"
#: sha256 of that zip as recorded from astroquery 0.4.11.
ZIP_SHA256 = "ade621fa67b2ae017c12231dd58fb70bae2d0d97368153953c9b0c3ba925429d"
#: Filters of the cutout, bluest first, and their pivot wavelengths in micrometres.
FILTERS: dict[str, float] = {"f606w": 0.592, "f814w": 0.806, "f850lp": 0.904}

_ROOTS = {
    "astropy": Path(astropy.__file__).parent,
    "astroquery": Path(astroquery.__file__).parent,
    "reproject": Path(reproject.__file__).parent,
    "pyvo": Path(pyvo.__file__).parent,
}


@dataclass(frozen=True)
class RealFile:
    """One real file of an installed package: where it is and what it shows."""

    package: str
    relative: str
    what: str
    version: str = ""
    """Version of ``package`` the file was recorded from."""
    sha256: str = ""
    """sha256 of the file as recorded: a package release that changes it fails ``tests/test_real_corpus.py``."""

    @property
    def path(self) -> Path:
        """Absolute path of the file in the installed package."""
        return _ROOTS[self.package] / self.relative

    @property
    def suffix(self) -> str:
        """File name ending kept when copied (``.fits``, ``.fits.gz``, ``.fits.Z``)."""
        name = Path(self.relative).name
        for ending in (".fits.gz", ".fits.Z"):
            if name.endswith(ending):
                return ending
        return ".fits"


#: Real files by corpus name.
CORPUS: dict[str, RealFile] = {
    "m13": RealFile(
        "astropy",
        "io/fits/hdu/compressed/tests/data/m13.fits",
        "globular cluster M13, 300 x 300 int16, RA/Dec TAN; a bright core on a dark sky",
        "8.0.2",
        "eb3e208edbe302cae0ea45d17ab618930d85847da3f5e6ffd53d9410ec0a5a45",
    ),
    "sun_aia171": RealFile(
        "reproject",
        "tests/data/aia_171_level1.fits",
        "the Sun by SDO/AIA 171 A, 128 x 128, helioprojective",
        "0.21.0",
        "71d7f9f56908bd22d5dcac015884117c57c45f30951131bf4abdc06c55cb0280",
    ),
    "magpis_galactic": RealFile(
        "astroquery",
        "magpis/tests/data/image.fits",
        "MAGPIS 20 cm radio map of the galactic plane at l=10.5, 300 x 300, GLON/GLAT SIN",
        "0.4.11",
        "0db725192586c67eb03cbaf2dfb48fd3e9caed3fe9c9cb32a007f54aaa8087ed",
    ),
    "ukidss": RealFile(
        "astroquery",
        "ukidss/tests/data/image.fits",
        "UKIDSS near-IR image, 300 x 300 int32, ZPN",
        "0.4.11",
        "04c43f942a64f5dc1b6a5a0240c19e6bf8bf6d56ac0cd3644efd7ca1a18330c8",
    ),
    "irsa_dust": RealFile(
        "astroquery",
        "ipac/irsa/irsa_dust/tests/data/test.fits",
        "IRAS dust map, 202 x 202",
        "0.4.11",
        "dd91fd28010f8a6830c0417cd34a0fbf08f05c47c1833b41637242184a94b574",
    ),
    "first": RealFile(
        "astroquery",
        "image_cutouts/first/tests/data/image.fits",
        "VLA FIRST cutout, 33 x 33",
        "0.4.11",
        "7e19ba1a58a2c219098b46a65d8f3f3814859723d6d41b36da2491694acbe61a",
    ),
    "dss": RealFile(
        "astropy",
        "wcs/tests/data/dss.14.29.56-62.41.05.fits.gz",
        "DSS plate scan, 100 x 100 int16, gzip",
        "8.0.2",
        "d9e8a9adced55200b418517d5fba5f61a403842aa5eb57df9281eb38beb8d68a",
    ),
    "lzw": RealFile(
        "astropy",
        "io/fits/tests/data/lzw.fits.Z",
        "a FITS file compressed with Unix compress (LZW)",
        "8.0.2",
        "6458ac94e039a3d1cae6324ce383bb6ec73766521b1505d8b3ab8e0b4d4da7c5",
    ),
    "no_wcs": RealFile(
        "pyvo",
        "dal/tests/data/querydata/image.fits",
        "a 256 x 256 image with no WCS at all",
        "1.9.1",
        "9214afbfad8fa75c4e39f78ae24608b358d03addb11342f74b67af5347a46ebc",
    ),
    "azp": RealFile(
        "astropy",
        "modeling/tests/data/1904-66_AZP.fits",
        "a 192 x 192 image in the AZP projection",
        "8.0.2",
        "51d95450d35cb6c8c60a59e72e693b7127ae7607cece5905206f646b0a4c0246",
    ),
}


def copy_corpus(dest: Path, names: Iterable[str] | None = None) -> dict[str, Path]:
    """Copy the named corpus files (all by default) into ``dest`` as ``<name><suffix>``; returns ``{name: path}``."""
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in names if names is not None else CORPUS:
        real = CORPUS[name]
        target = dest / f"{name}{real.suffix}"
        shutil.copyfile(real.path, target)
        out[name] = target
    return out


_LINEAR_WCS_CARD = re.compile(r"^(CTYPE|CRPIX|CRVAL|CDELT|CROTA|CUNIT|CD\d_\d|PC\d)")


def dss_plate_only(dest: Path) -> Path:
    """Write the real DSS plate scan with its linear WCS cards removed (only the plate solution left)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(CORPUS["dss"].path) as hdul:
            header = hdul[0].header.copy()
            data = hdul[0].data.copy()
    for key in [k for k in header if _LINEAR_WCS_CARD.match(k)]:
        del header[key]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.PrimaryHDU(data=data, header=header).writeto(dest, overwrite=True, output_verify="silentfix")
    return dest


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
