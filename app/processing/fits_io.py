"""Read FITS images with bounded memory.

Everything starts from the headers: :func:`image_info` finds the image HDU and its shape without
reading a pixel, so callers can check budgets (413) first. :func:`read_plane` then reads one 2-D
plane (a cube slice), optionally downscaled by striding or block-averaging a memory map in row
bands, so a 10k x 10k file never becomes a full-size float64 copy. Integer images are scaled with
BSCALE/BZERO and BLANK pixels become NaN; the result is always float32.

This module raises the domain errors of :mod:`app.core.exceptions` (``InvalidFitsError``,
``NoImageDataError``, ``FitsTooLargeError``) so every endpoint reports bad files the same way.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from app.core.exceptions import FitsTooLargeError, InvalidFitsError, InvalidRequestError, NoImageDataError

logger = logging.getLogger("app.processing.fits_io")

DownscaleMethod = Literal["stride", "block"]

#: Bytes of raw pixels processed at once when block-averaging (bounds temporary memory).
BAND_BYTES = 64 * 1024 * 1024
_IMAGE_HDU_TYPES = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)


@dataclass(frozen=True)
class ImageInfo:
    """What the headers say about the chosen image HDU (no pixel read)."""

    hdu_index: int
    shape: tuple[int, ...]
    bitpix: int
    header: fits.Header
    extname: str | None

    @property
    def ny(self) -> int:
        return self.shape[-2]

    @property
    def nx(self) -> int:
        return self.shape[-1]

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def n_slices(self) -> int:
        """Length of the leading axis for data with 3 or more dimensions, else 1."""
        return self.shape[0] if len(self.shape) >= 3 else 1

    @property
    def is_cube(self) -> bool:
        return len(self.shape) >= 3


@dataclass
class Plane:
    """One 2-D float32 plane read from a file, possibly downscaled."""

    data: np.ndarray
    info: ImageInfo
    slice_index: int
    factor: int
    """Downscale factor along each axis (1 = full resolution)."""

    @property
    def original_shape(self) -> tuple[int, int]:
        return (self.info.ny, self.info.nx)


@contextmanager
def open_fits(path: Path | str, *, memmap: bool = True) -> Iterator[fits.HDUList]:
    """Open a FITS file lazily; any parsing failure becomes :class:`InvalidFitsError` (400)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            hdul = fits.open(
                path, memmap=memmap, do_not_scale_image_data=True, lazy_load_hdus=True, mode="readonly"
            )
    except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError) as error:
        logger.info("fits_open_failed", extra={"error": type(error).__name__})
        raise InvalidFitsError(f"Not a valid FITS file: {Path(path).name}") from error
    try:
        yield hdul
    finally:
        hdul.close()


def _hdu_shape(hdu: Any) -> tuple[int, ...] | None:
    if not isinstance(hdu, _IMAGE_HDU_TYPES):
        return None
    header = hdu.header  # for CompImageHDU astropy already presents the image header
    dims = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS", 0)) + 1)]
    if len(dims) < 2 or any(d <= 0 for d in dims):
        return None
    return tuple(reversed(dims))


def _iter_hdus(hdul: fits.HDUList) -> Iterator[tuple[int, Any]]:
    index = 0
    while True:
        try:
            hdu = hdul[index]
        except IndexError:
            return
        except (OSError, ValueError, TypeError) as error:
            raise InvalidFitsError("FITS file is truncated or corrupt") from error
        yield index, hdu
        index += 1


def find_image_hdu(hdul: fits.HDUList, hdu_index: int | None = None) -> tuple[int, tuple[int, ...]]:
    """Return ``(index, shape)`` of the first HDU with >= 2-D image data, or of ``hdu_index``.

    Raises
    ------
    NoImageDataError
        No such HDU, or the given one holds no image.
    InvalidRequestError
        ``hdu_index`` is out of range.
    """
    if hdu_index is not None and hdu_index >= 0:
        hdus = dict(_iter_hdus(hdul))
        if hdu_index not in hdus:
            raise InvalidRequestError(f"hdu_index {hdu_index} out of range (file has {len(hdus)} HDUs)")
        shape = _hdu_shape(hdus[hdu_index])
        if shape is None:
            raise NoImageDataError(f"HDU {hdu_index} holds no image data")
        return hdu_index, shape
    for index, hdu in _iter_hdus(hdul):
        shape = _hdu_shape(hdu)
        if shape is not None:
            return index, shape
    raise NoImageDataError()


def image_info(path: Path | str, *, hdu_index: int | None = None) -> ImageInfo:
    """Headers-only description of the image HDU of ``path``."""
    with open_fits(path) as hdul:
        index, shape = find_image_hdu(hdul, hdu_index)
        hdu = hdul[index]
        header = hdu.header.copy()
        bitpix = int(header.get("BITPIX", -32))
        extname = header.get("EXTNAME")
        return ImageInfo(index, shape, bitpix, header, str(extname) if extname else None)


def check_elements(info: ImageInfo, max_elements: int) -> None:
    """Raise :class:`FitsTooLargeError` (413) when the HDU has more than ``max_elements`` pixels."""
    if info.n_elements > max_elements:
        raise FitsTooLargeError(
            f"FITS array too large: {info.n_elements} elements exceeds the limit of {max_elements}"
        )


def resolve_slice(info: ImageInfo, slice_index: int = -1) -> int:
    """The slice actually used: -1 means the middle one; larger values are clamped."""
    if not info.is_cube:
        return 0
    if slice_index < 0:
        return info.n_slices // 2
    return min(slice_index, info.n_slices - 1)


def _leading_index(info: ImageInfo, slice_index: int) -> tuple[int, ...]:
    """Index into all axes before the last two: the chosen slice, then middle of any further axes."""
    lead = info.shape[:-2]
    if not lead:
        return ()
    return (slice_index, *(n // 2 for n in lead[1:]))


def _scale_raw(raw: np.ndarray, header: fits.Header, *, compressed: bool) -> np.ndarray:
    """Apply BLANK, BSCALE and BZERO to raw pixels; return float32."""
    out = np.asarray(raw).astype(np.float32, copy=True)
    if compressed:
        return out
    if raw.dtype.kind in "iu":
        blank = header.get("BLANK")
        bscale = float(header.get("BSCALE", 1.0))
        bzero = float(header.get("BZERO", 0.0))
        if bscale != 1.0 or bzero != 0.0:
            out = (np.asarray(raw).astype(np.float64) * bscale + bzero).astype(np.float32)
        if blank is not None:
            out[np.asarray(raw) == int(blank)] = np.nan
    else:
        bscale = float(header.get("BSCALE", 1.0))
        bzero = float(header.get("BZERO", 0.0))
        if bscale != 1.0 or bzero != 0.0:
            out = out * np.float32(bscale) + np.float32(bzero)
    return out


def downscale_factor(ny: int, nx: int, max_side: int | None) -> int:
    """Smallest integer factor that brings the longer side to at most ``max_side``."""
    if not max_side or max(ny, nx) <= max_side:
        return 1
    return math.ceil(max(ny, nx) / max_side)


def _block_mean(plane: Any, factor: int, header: fits.Header, compressed: bool) -> np.ndarray:
    """Block-average a 2-D (memory-mapped) array in row bands, ignoring NaN."""
    ny, nx = plane.shape
    out_ny, out_nx = ny // factor, nx // factor
    if out_ny == 0 or out_nx == 0:
        return _scale_raw(plane[::factor, ::factor], header, compressed=compressed)
    row_bytes = nx * max(np.dtype(plane.dtype).itemsize, 4) * 2
    band_blocks = max(1, BAND_BYTES // (row_bytes * factor))
    out = np.empty((out_ny, out_nx), dtype=np.float32)
    for start in range(0, out_ny, band_blocks):
        stop = min(out_ny, start + band_blocks)
        band = _scale_raw(plane[start * factor : stop * factor, : out_nx * factor], header, compressed=compressed)
        blocks = band.reshape(stop - start, factor, out_nx, factor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[start:stop] = np.nanmean(blocks, axis=(1, 3))
    return out


def read_plane(
    path: Path | str,
    *,
    hdu_index: int | None = None,
    slice_index: int = -1,
    max_side: int | None = None,
    method: DownscaleMethod = "block",
    max_elements: int | None = None,
) -> Plane:
    """Read one 2-D plane as float32, downscaled so its longer side is at most ``max_side``.

    Parameters
    ----------
    path
        FITS file.
    hdu_index
        HDU to read; ``None`` or negative picks the first HDU with >= 2-D data.
    slice_index
        Cube slice along the leading axis (-1 = middle, clamped above).
    max_side
        Longest side of the result; ``None`` keeps full resolution.
    method
        ``"block"`` averages factor x factor blocks (anti-aliased), ``"stride"`` takes every n-th pixel.
    max_elements
        If given, refuse (413) before reading when the HDU has more elements.
    """
    if method not in ("block", "stride"):
        raise ValueError(f"method must be 'block' or 'stride', got {method!r}")
    info = image_info(path, hdu_index=hdu_index)
    if max_elements is not None:
        check_elements(info, max_elements)
    used_slice = resolve_slice(info, slice_index)
    factor = downscale_factor(info.ny, info.nx, max_side)
    with open_fits(path) as hdul:
        hdu = hdul[info.hdu_index]
        compressed = isinstance(hdu, fits.CompImageHDU)
        lead = _leading_index(info, used_slice)
        try:
            source: Any = hdu.section if compressed else hdu.data
            if source is None:
                raise NoImageDataError()
            plane = source[lead] if lead else source
            if factor == 1:
                data = _scale_raw(plane[:, :], info.header, compressed=compressed)
            elif method == "stride":
                data = _scale_raw(plane[::factor, ::factor], info.header, compressed=compressed)
            else:
                data = _block_mean(plane, factor, info.header, compressed)
        except (OSError, ValueError, TypeError, IndexError, EOFError) as error:
            logger.info("fits_read_failed", extra={"error": type(error).__name__})
            raise InvalidFitsError("FITS data is truncated or unreadable") from error
    return Plane(data=data, info=info, slice_index=used_slice, factor=factor)


def celestial_wcs(header: fits.Header) -> WCS | None:
    """The celestial part of the header's WCS, or ``None`` when there is none (or it is broken)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            warnings.simplefilter("ignore", AstropyWarning)
            wcs = WCS(header).celestial
    except Exception as error:  # astropy raises many types for broken WCS headers
        logger.info("wcs_parse_failed", extra={"error": type(error).__name__})
        return None
    if not wcs.has_celestial or wcs.naxis != 2:
        return None
    try:
        matrix = wcs.pixel_scale_matrix
    except Exception:
        return None
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) == 0:
        return None
    return wcs


def finite_or_zero(data: np.ndarray) -> np.ndarray:
    """Replace NaN and +-Inf with 0 in place (float arrays) and return the array."""
    np.nan_to_num(data, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return data
