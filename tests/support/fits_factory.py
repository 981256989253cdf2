"""Write real FITS files with astropy for tests: JWST-like images with WCS, cubes, tables.

Everything is deterministic (seeded). Images follow the JWST ``_i2d`` layout by default: an
empty primary HDU and the pixels in a ``SCI`` extension with a TAN celestial WCS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS


def make_wcs(
    shape: tuple[int, int],
    *,
    ra: float = 274.7,
    dec: float = -13.8,
    pixel_scale_arcsec: float = 0.063,
    rotation_deg: float = 0.0,
    crpix: tuple[float, float] | None = None,
) -> WCS:
    """A TAN WCS with north up (rotated by ``rotation_deg``) centred on ``(ra, dec)``."""
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = list(crpix) if crpix else [(nx + 1) / 2.0, (ny + 1) / 2.0]
    scale = pixel_scale_arcsec / 3600.0
    theta = np.deg2rad(rotation_deg)
    wcs.wcs.cdelt = [-scale, scale]
    wcs.wcs.pc = [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    wcs.wcs.radesys = "ICRS"
    return wcs


def gaussian_stars(
    shape: tuple[int, int],
    *,
    n_stars: int = 50,
    fwhm: float = 3.0,
    flux_range: tuple[float, float] = (500.0, 5000.0),
    background: float = 10.0,
    noise: float = 1.0,
    seed: int = 0,
    margin: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """A float32 star field and the true ``(x, y, flux)`` of each star (0-based pixels)."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    xs = rng.uniform(margin, nx - margin, n_stars)
    ys = rng.uniform(margin, ny - margin, n_stars)
    fluxes = rng.uniform(*flux_range, n_stars)
    sigma = fwhm / 2.3548
    image = np.full(shape, background, dtype=np.float64)
    half = int(np.ceil(5 * sigma))
    for x, y, flux in zip(xs, ys, fluxes, strict=True):
        x0, x1 = max(int(x) - half, 0), min(int(x) + half + 1, nx)
        y0, y1 = max(int(y) - half, 0), min(int(y) + half + 1, ny)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        image[y0:y1, x0:x1] += flux / (2 * np.pi * sigma**2) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    image += rng.normal(0.0, noise, shape)
    return image.astype(np.float32), np.column_stack([xs, ys, fluxes])


#: Width in pixels of the low-exposure edge of :func:`exposure_edge_field`.
EDGE_WIDTH = 16


def exposure_edge_field(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stars in the interior of a 400^2 image whose 16 px edge has 1/25 of the weight (5x the noise).

    Returns the float32 image, its WHT plane (4 inside, 4/25 on the edge), the boolean edge mask
    and the true ``(x, y, flux)`` of the stars (all in the interior).
    """
    shape = (400, 400)
    data, truth = gaussian_stars(shape, n_stars=40, flux_range=(300.0, 3000.0), seed=seed, margin=EDGE_WIDTH + 5)
    edge = np.ones(shape, dtype=bool)
    edge[EDGE_WIDTH:-EDGE_WIDTH, EDGE_WIDTH:-EDGE_WIDTH] = False
    extra = np.random.default_rng(seed + 1000).normal(0.0, np.sqrt(25.0 - 1.0), shape).astype(np.float32)
    data = data + np.where(edge, extra, np.float32(0.0))
    weight = np.where(edge, np.float32(4.0 / 25.0), np.float32(4.0))
    return data, weight, edge, truth


def write_weighted_image(path: Path, data: np.ndarray, weight: np.ndarray, *, with_err: bool = True) -> Path:
    """Write a JWST i2d-like file: empty primary, ``SCI``, optionally ``ERR`` (1/sqrt(WHT)), then ``WHT``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdus: list[fits.PrimaryHDU | fits.ImageHDU] = [fits.PrimaryHDU(), fits.ImageHDU(data, name="SCI")]
    if with_err:
        hdus.append(fits.ImageHDU((1.0 / np.sqrt(weight)).astype(np.float32), name="ERR"))
    hdus.append(fits.ImageHDU(weight.astype(np.float32), name="WHT"))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def write_image(
    path: Path,
    data: np.ndarray,
    *,
    wcs: WCS | None = None,
    header: dict[str, object] | None = None,
    primary: bool = False,
    extname: str = "SCI",
    bunit: str | None = "MJy/sr",
) -> Path:
    """Write ``data`` as a JWST-like image file and return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdr = wcs.to_header() if wcs is not None else fits.Header()
    if bunit:
        hdr["BUNIT"] = bunit
    for key, value in (header or {}).items():
        hdr[key] = value
    if primary:
        hdul = fits.HDUList([fits.PrimaryHDU(data=data, header=hdr)])
    else:
        prim = fits.PrimaryHDU()
        prim.header["TELESCOP"] = "JWST"
        for key in ("INSTRUME", "FILTER", "TARGNAME"):
            if header and key in header:
                prim.header[key] = header[key]
        hdul = fits.HDUList([prim, fits.ImageHDU(data=data, header=hdr, name=extname)])
    hdul.writeto(path, overwrite=True)
    return path


def write_cube(path: Path, data: np.ndarray, *, wave_start_um: float = 1.0, wave_step_um: float = 0.01) -> Path:
    """A 3-D spectral cube (``nz, ny, nx``) with a celestial WCS and a wavelength axis."""
    _, ny, nx = data.shape
    hdr = make_wcs((ny, nx)).to_header()
    hdr["NAXIS"] = 3
    hdr["CTYPE3"] = "WAVE"
    hdr["CUNIT3"] = "um"
    hdr["CRVAL3"] = wave_start_um
    hdr["CDELT3"] = wave_step_um
    hdr["CRPIX3"] = 1.0
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data=data, header=hdr, name="SCI")])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    hdul.writeto(path, overwrite=True)
    return Path(path)


def write_radio_cube(path: Path, channels: np.ndarray, *, stokes_last: bool = True) -> Path:
    """A CASA-style radio cube: ``NAXIS=4``, RA, DEC, FREQ and a Stokes axis of length 1.

    ``channels`` is ``(n_freq, ny, nx)``. With ``stokes_last`` the FITS axes are RA, DEC, FREQ,
    STOKES (exportfits' default); otherwise RA, DEC, STOKES, FREQ.
    """
    _, ny, nx = channels.shape
    header = make_wcs((ny, nx), ra=83.8, dec=-5.4, pixel_scale_arcsec=0.5).to_header()
    freq, stokes = (3, 4) if stokes_last else (4, 3)
    header[f"CTYPE{freq}"], header[f"CUNIT{freq}"] = "FREQ", "Hz"
    header[f"CRVAL{freq}"], header[f"CDELT{freq}"], header[f"CRPIX{freq}"] = 2.3e11, 1.0e6, 1.0
    header[f"CTYPE{stokes}"], header[f"CRVAL{stokes}"] = "STOKES", 1.0
    header[f"CDELT{stokes}"], header[f"CRPIX{stokes}"] = 1.0, 1.0
    header["BUNIT"] = "Jy/beam"
    data = channels[None] if stokes_last else channels[:, None]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data=np.ascontiguousarray(data, dtype=np.float32), header=header).writeto(path, overwrite=True)
    return Path(path)


def write_table(
    path: Path, columns: dict[str, np.ndarray], *, extname: str = "CAT", units: dict[str, str] | None = None
) -> Path:
    """A FITS file whose first extension is a binary table with ``columns``."""
    cols = fits.ColDefs(
        [
            fits.Column(name=name, array=values, format=_tform(values), unit=(units or {}).get(name))
            for name, values in columns.items()
        ]
    )
    table = fits.BinTableHDU.from_columns(cols, name=extname)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, overwrite=True)
    return Path(path)


def _tform(values: np.ndarray) -> str:
    values = np.asarray(values)
    if values.dtype.kind in "US":
        width = max(1, int(values.dtype.itemsize // (4 if values.dtype.kind == "U" else 1)))
        return f"{width}A"
    return {"f8": "D", "f4": "E", "i8": "K", "i4": "J", "i2": "I", "u1": "B", "b1": "L"}[values.dtype.str[1:]]
