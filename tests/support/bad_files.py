"""A corpus of awkward and broken FITS files, written by code (no committed binaries).

:func:`write_bad_corpus` writes every case into a directory and returns ``{name: path}``. Each
case is something a real archive or a careless upload can produce; every engine endpoint must
answer each one with a 200 (data usable) or a clear 4xx, never a 500 or a crash.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy.io import fits

from tests.support.fits_factory import gaussian_stars, make_wcs

SHAPE = (64, 80)


def _good_image() -> tuple[np.ndarray, fits.Header]:
    data, _ = gaussian_stars(SHAPE, n_stars=8, seed=3)
    return data, make_wcs(SHAPE).to_header()


def _write(path: Path, hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU]) -> None:
    fits.HDUList(hdus).writeto(path, overwrite=True)


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes())


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def truncated_header(path: Path) -> None:
    data, header = _good_image()
    full = path.with_suffix(".full")
    _write(full, [fits.PrimaryHDU(data=data, header=header)])
    path.write_bytes(full.read_bytes()[:1500])
    full.unlink()


def truncated_data(path: Path) -> None:
    data, header = _good_image()
    full = path.with_suffix(".full")
    _write(full, [fits.PrimaryHDU(data=data, header=header)])
    raw = full.read_bytes()
    path.write_bytes(raw[: 2880 * 2 + 4000])
    full.unlink()


def huge_header(path: Path) -> None:
    """A header claiming 100000 x 100000 float32 (40 GB) with no data behind it."""
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = 100_000
    header["NAXIS2"] = 100_000
    header.update(make_wcs((100_000, 100_000)).to_header())
    path.write_bytes(header.tostring(padding=True).encode("ascii"))


def scaled_integers(path: Path) -> None:
    raw = np.arange(SHAPE[0] * SHAPE[1], dtype=np.int16).reshape(SHAPE) % 1000
    raw[10:20, 10:20] = -32768
    hdu = fits.PrimaryHDU(data=raw, header=make_wcs(SHAPE).to_header())
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 100.0
    hdu.header["BLANK"] = -32768
    _write(path, [hdu])


def tile_compressed(path: Path) -> None:
    data, header = _good_image()
    _write(path, [fits.PrimaryHDU(), fits.CompImageHDU(data=data, header=header, name="SCI")])


def gzip_compressed(path: Path) -> None:
    data, header = _good_image()
    plain = path.with_suffix(".plain")
    _write(plain, [fits.PrimaryHDU(), fits.ImageHDU(data=data, header=header, name="SCI")])
    path.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()


def damaged_tiles(path: Path) -> None:
    """A RICE tile-compressed image whose compressed tiles are overwritten with noise."""
    data, header = _good_image()
    _write(
        path, [fits.PrimaryHDU(), fits.CompImageHDU(data=data, header=header, name="SCI", compression_type="RICE_1")]
    )
    raw = bytearray(path.read_bytes())
    with fits.open(path, disable_image_compression=True) as hdul:
        table = hdul[1]
        heap_start = table.fileinfo()["datLoc"] + table.header["NAXIS1"] * table.header["NAXIS2"]
        heap_bytes = int(table.header["PCOUNT"])
    noise = np.random.default_rng(5).integers(0, 256, heap_bytes, dtype=np.uint8).tobytes()
    raw[heap_start : heap_start + heap_bytes] = noise
    path.write_bytes(bytes(raw))


def unparsable_card(path: Path) -> None:
    """A good image whose ``CRPIX1`` card reads ``NAN``, which no FITS parser accepts as a number."""
    data, header = _good_image()
    _write(path, [fits.PrimaryHDU(data=data, header=header)])
    raw = path.read_bytes()
    at = raw.index(b"CRPIX1  =")
    path.write_bytes(raw[:at] + b"CRPIX1  =                  NAN".ljust(80) + raw[at + 80 :])


def tables_only(path: Path) -> None:
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="WAVELENGTH", format="D", array=np.linspace(1, 2, 10)),
            fits.Column(name="FLUX", format="D", array=np.ones(10)),
        ],
        name="EXTRACT1D",
    )
    _write(path, [fits.PrimaryHDU(), table])


def one_dimensional(path: Path) -> None:
    _write(path, [fits.PrimaryHDU(data=np.arange(100, dtype=np.float32))])


def cube_3d(path: Path) -> None:
    data = np.random.default_rng(1).normal(size=(5, *SHAPE)).astype(np.float32)
    header = make_wcs(SHAPE).to_header()
    header["CTYPE3"] = "WAVE"
    header["CUNIT3"] = "um"
    header["CRVAL3"] = 1.0
    header["CDELT3"] = 0.1
    header["CRPIX3"] = 1.0
    _write(path, [fits.PrimaryHDU(), fits.ImageHDU(data=data, header=header, name="SCI")])


def cube_4d(path: Path) -> None:
    data = np.random.default_rng(2).normal(size=(2, 3, *SHAPE)).astype(np.float32)
    _write(path, [fits.PrimaryHDU(data=data)])


def all_nan(path: Path) -> None:
    _write(path, [fits.PrimaryHDU(data=np.full(SHAPE, np.nan, dtype=np.float32), header=make_wcs(SHAPE).to_header())])


def with_infinities(path: Path) -> None:
    data, header = _good_image()
    data[5:10, 5:10] = np.inf
    data[20:25, 20:25] = -np.inf
    data[30:35, 30:35] = np.nan
    _write(path, [fits.PrimaryHDU(data=data, header=header)])


def no_celestial_wcs(path: Path) -> None:
    data, _ = _good_image()
    header = fits.Header()
    header["CTYPE1"] = "LINEAR"
    header["CTYPE2"] = "LINEAR"
    header["CRPIX1"] = 1.0
    header["CRPIX2"] = 1.0
    header["CRVAL1"] = 0.0
    header["CRVAL2"] = 0.0
    header["CDELT1"] = 1.0
    header["CDELT2"] = 1.0
    _write(path, [fits.PrimaryHDU(data=data, header=header)])


def sip_distortion(path: Path) -> None:
    data, header = _good_image()
    header["CTYPE1"] = "RA---TAN-SIP"
    header["CTYPE2"] = "DEC--TAN-SIP"
    header["A_ORDER"] = 2
    header["B_ORDER"] = 2
    header["A_2_0"] = 1e-5
    header["B_0_2"] = -1e-5
    _write(path, [fits.PrimaryHDU(data=data, header=header)])


def singular_cd(path: Path) -> None:
    data, _ = _good_image()
    header = fits.Header()
    header["CTYPE1"] = "RA---TAN"
    header["CTYPE2"] = "DEC--TAN"
    header["CRPIX1"] = 40.0
    header["CRPIX2"] = 32.0
    header["CRVAL1"] = 10.0
    header["CRVAL2"] = 20.0
    header["CD1_1"] = 1e-5
    header["CD1_2"] = 1e-5
    header["CD2_1"] = 1e-5
    header["CD2_2"] = 1e-5
    _write(path, [fits.PrimaryHDU(data=data, header=header)])


def many_cards(path: Path) -> None:
    data, header = _good_image()
    for i in range(10_000):
        header[f"HIERARCH JUNK{i:05d}"] = i
    _write(path, [fits.PrimaryHDU(data=data, header=header)])


def header_only(path: Path) -> None:
    prim = fits.PrimaryHDU()
    prim.header["TELESCOP"] = "JWST"
    _write(path, [prim])


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "random_bytes": ("random.fits", random_bytes),
    "empty_file": ("empty.fits", empty_file),
    "truncated_header": ("trunc_header.fits", truncated_header),
    "truncated_data": ("trunc_data.fits", truncated_data),
    "huge_header": ("huge.fits", huge_header),
    "scaled_integers": ("scaled_int.fits", scaled_integers),
    "tile_compressed": ("compressed.fits", tile_compressed),
    "gzip_compressed": ("gzipped.fits.gz", gzip_compressed),
    "damaged_tiles": ("damaged_tiles.fits", damaged_tiles),
    "unparsable_card": ("nan_card.fits", unparsable_card),
    "tables_only": ("tables_x1d.fits", tables_only),
    "one_dimensional": ("oned.fits", one_dimensional),
    "cube_3d": ("cube3d_s3d.fits", cube_3d),
    "cube_4d": ("cube4d.fits", cube_4d),
    "all_nan": ("allnan.fits", all_nan),
    "with_infinities": ("inf.fits", with_infinities),
    "no_celestial_wcs": ("nocel.fits", no_celestial_wcs),
    "sip_distortion": ("sip.fits", sip_distortion),
    "singular_cd": ("singular.fits", singular_cd),
    "many_cards": ("many_cards.fits", many_cards),
    "header_only": ("header_only.fits", header_only),
}


def write_bad_corpus(directory: Path) -> dict[str, Path]:
    """Write every case of :data:`CASES` into ``directory``; return ``{case: path}``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, (filename, writer) in CASES.items():
        path = directory / filename
        writer(path)
        paths[name] = path
    return paths
