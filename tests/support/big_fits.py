"""Write large JWST-like FITS images without holding them in memory, for tests and benchmarks.

The layout is that of :mod:`tests.support.fits_factory` (an empty primary HDU, the pixels in a
float32 ``SCI`` extension with a TAN celestial WCS), but the data are written by row bands:

* :func:`write_noise_image` writes sky, noise and Gaussian stars band by band with plain file
  writes (a 16 384² file, 1 GiB, needs one band of memory);
* :func:`write_sparse_image` makes the file sparse (``truncate``) and fills only a few row bands
  through a memory map, so a 1 GiB file is written in a fraction of a second and takes little disk;
  the rest of the plane reads as zeros.

Both return the path and are deterministic (seeded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from tests.support.fits_factory import make_wcs

BLOCK = 2880
BAND_ROWS = 256
STAR_SIGMA = 1.3
STAR_RADIUS = 6


def _headers(ny: int, nx: int, wcs: WCS | None = None) -> bytes:
    """The primary header and the ``SCI`` extension header of an ``ny x nx`` float32 image, padded."""
    primary = fits.PrimaryHDU().header
    ext = fits.Header(
        [
            ("XTENSION", "IMAGE"),
            ("BITPIX", -32),
            ("NAXIS", 2),
            ("NAXIS1", nx),
            ("NAXIS2", ny),
            ("PCOUNT", 0),
            ("GCOUNT", 1),
            ("EXTNAME", "SCI"),
            ("BUNIT", "MJy/sr"),
        ]
    )
    ext.update((wcs if wcs is not None else make_wcs((ny, nx))).to_header())
    return (primary.tostring(padding=True) + ext.tostring(padding=True)).encode("ascii")


def _padding(n_bytes: int) -> int:
    return -n_bytes % BLOCK


def _stars(ny: int, nx: int, n_stars: int, seed: int) -> np.ndarray:
    """``(x, y, peak)`` of ``n_stars`` stars, sorted by row."""
    rng = np.random.default_rng(seed + 1)
    stars = np.column_stack(
        [
            rng.uniform(STAR_RADIUS, nx - STAR_RADIUS, n_stars),
            rng.uniform(STAR_RADIUS, ny - STAR_RADIUS, n_stars),
            rng.uniform(50.0, 5000.0, n_stars),
        ]
    )
    return stars[np.argsort(stars[:, 1])]


def _add_stars(band: np.ndarray, row0: int, stars: np.ndarray) -> None:
    """Add the Gaussian stars whose stamps overlap rows ``row0 .. row0 + len(band)`` of the image."""
    rows, nx = band.shape
    lo, hi = np.searchsorted(stars[:, 1], [row0 - STAR_RADIUS, row0 + rows + STAR_RADIUS])
    offsets = np.arange(-STAR_RADIUS, STAR_RADIUS + 1)
    for x, y, peak in stars[lo:hi]:
        ys = np.clip(int(y) + offsets, row0, row0 + rows - 1)
        xs = np.clip(int(x) + offsets, 0, nx - 1)
        keep_y = (int(y) + offsets >= row0) & (int(y) + offsets < row0 + rows)
        stamp = peak * np.exp(-((xs[None, :] - x) ** 2 + (ys[:, None] - y) ** 2) / (2 * STAR_SIGMA**2))
        band[ys[keep_y] - row0, xs[0] : xs[-1] + 1] += stamp[keep_y].astype(np.float32)


def write_noise_image(
    path: Path, ny: int, nx: int | None = None, *, seed: int = 0, sky: float = 20.0, wcs: WCS | None = None
) -> Path:
    """Write an ``ny x nx`` image of sky, Gaussian noise (sigma 1) and stars, band by band; return ``path``.

    ``wcs`` defaults to :func:`~tests.support.fits_factory.make_wcs` centred on the image.
    """
    nx = ny if nx is None else nx
    rng = np.random.default_rng(seed)
    stars = _stars(ny, nx, max(10, ny * nx // 50_000), seed)
    with Path(path).open("wb") as handle:
        handle.write(_headers(ny, nx, wcs))
        for row0 in range(0, ny, BAND_ROWS):
            rows = min(BAND_ROWS, ny - row0)
            band = rng.standard_normal((rows, nx), dtype=np.float32)
            band += np.float32(sky)
            _add_stars(band, row0, stars)
            handle.write(band.astype(">f4").tobytes())
        handle.write(b"\0" * _padding(ny * nx * 4))
    return Path(path)


def write_sparse_image(
    path: Path, ny: int, nx: int | None = None, *, filled_bands: int = 4, seed: int = 0, sky: float = 20.0
) -> Path:
    """Write an ``ny x nx`` image that is zero but for ``filled_bands`` bands of sky, noise and stars."""
    nx = ny if nx is None else nx
    head = _headers(ny, nx)
    data_bytes = ny * nx * 4
    with Path(path).open("wb") as handle:
        handle.write(head)
        handle.truncate(len(head) + data_bytes + _padding(data_bytes))
    rng = np.random.default_rng(seed)
    stars = _stars(ny, nx, max(10, ny * nx // 50_000), seed)
    plane = np.memmap(path, dtype=">f4", mode="r+", offset=len(head), shape=(ny, nx))
    try:
        for k in range(filled_bands):
            row0 = (k * ny) // filled_bands
            rows = min(BAND_ROWS, ny - row0)
            band = rng.standard_normal((rows, nx), dtype=np.float32) + np.float32(sky)
            _add_stars(band, row0, stars)
            plane[row0 : row0 + rows] = band
        plane.flush()
    finally:
        del plane
    return Path(path)
