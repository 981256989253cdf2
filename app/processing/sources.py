"""Inputs of composites and mosaics, known from their headers: image HDU, celestial WCS, weights.

Weights are inverse variances where the file carries them: ``1/ERR**2``, else ``1/sum(VAR_*)``
(the Poisson, read-noise and flat variances of a JWST product), else the ``WHT`` map of a drizzled
or resampled image.

:func:`load_source` reads only headers, so a job can size its grid and check its budget before
any pixel is read; :func:`read_factor` says how much to block-average a source while reading it
onto a coarser grid.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from app.processing.errors import InvalidInput, NoImageData
from app.processing.fits_io import HduChoice, ImageInfo, celestial_wcs, image_info, open_fits
from app.processing.reprojection import Grid

#: The 1-sigma error extension: its inverse square is the preferred weight.
ERROR_EXTENSION = "ERR"
#: Variance extensions of a JWST product: their sum is the pixel's variance (ERR squared).
VARIANCE_EXTENSIONS = ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")
#: A drizzle or resample weight map (exposure time or inverse variance): the weight used last.
WEIGHT_EXTENSION = "WHT"
#: Image extensions that are not science: a mosaic of one of them is not weighted.
NOT_SCIENCE = (ERROR_EXTENSION, *VARIANCE_EXTENSIONS, WEIGHT_EXTENSION, "DQ", "CON")

WeightKind = Literal["ERR", "VAR", "WHT"]


@dataclass(frozen=True)
class WeightMap:
    """Where a source's per-pixel weights come from: ``1/ERR**2``, ``1/sum(VAR_*)`` or ``WHT``."""

    kind: WeightKind
    hdu_indices: tuple[int, ...]


class NoCelestialWcs(InvalidInput):
    """The image HDU has no usable celestial WCS."""


@dataclass(frozen=True)
class ImageSource:
    """One input file: its local path, display name, image HDU facts and celestial WCS."""

    path: str
    info: ImageInfo
    wcs: WCS
    name: str = ""
    weights: WeightMap | None = None
    """The extensions with per-pixel weights of the same shape (:func:`find_weight_hdu`), if any."""
    version: str = ""
    """What changes when the stored file does (storage's version); empty: the local file's mtime and size."""

    @property
    def shape(self) -> tuple[int, int]:
        """Return ``(ny, nx)`` of the image plane."""
        return (self.info.ny, self.info.nx)

    @property
    def pixel_scale_deg(self) -> float:
        """Return the smaller pixel scale of the WCS, in degrees."""
        return float(np.min(np.abs(proj_plane_pixel_scales(self.wcs))))

    def identity(self) -> tuple[str, str, int]:
        """Return what changes when the file does: path, version (or modification time and size) and HDU."""
        version = self.version
        if not version:
            stat = os.stat(self.path)
            version = f"{stat.st_mtime_ns}:{stat.st_size}"
        return (self.path, version, self.info.hdu_index)


def load_source(
    path: Path | str,
    name: str,
    *,
    with_weights: bool = False,
    version: str = "",
    choice: HduChoice | None = None,
) -> ImageSource:
    """Read the headers of ``path``: its image HDU (``choice``, else the default) and celestial WCS (and weights).

    Raises
    ------
    NoImageData
        No image HDU (the message names ``name``).
    NoCelestialWcs
        The image has no celestial WCS.
    InvalidFits
        The file is not readable FITS.
    InvalidInput
        ``choice`` names an HDU the file does not have.
    """
    try:
        info = image_info(path, choice=choice)
    except NoImageData as error:
        if choice is not None and not choice.is_default:  # the chosen HDU: say which one it was
            raise NoImageData(f"{error.message} (file {name})") from error
        raise NoImageData(f"No image data found in FITS file: {name}") from error
    wcs = celestial_wcs(info.header)
    if wcs is None:
        raise NoCelestialWcs(f"No celestial WCS found in FITS file: {name}")
    weights = find_weight_hdu(path, info) if with_weights else None
    return ImageSource(str(path), info, wcs, name, weights, version)


class NotASkyFrame(InvalidInput):
    """The celestial WCS is in a frame that does not convert to ICRS (helioprojective, planetary, ...)."""


def icrs_of_pixels(source: ImageSource, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ICRS RA in ``[0, 360)`` and Dec (degrees) of 0-based pixels of ``source``.

    Whatever the file's frame (FK5, FK4, galactic, ecliptic, ICRS), the answer is ICRS, so
    footprints of files in different frames can be compared and bounded together.

    Raises
    ------
    NotASkyFrame
        The WCS's frame is not one astropy can convert to ICRS (the Sun's helioprojective
        coordinates, for instance) or the pixels have no finite sky position.
    """
    from astropy.coordinates import ICRS, SkyCoord
    from astropy.wcs.utils import wcs_to_celestial_frame

    ctypes = "/".join(str(c).split("-")[0] for c in source.wcs.wcs.ctype)
    try:
        frame = wcs_to_celestial_frame(source.wcs)
    except ValueError as error:
        raise NotASkyFrame(
            f"The coordinates of {source.name} ({ctypes}) are not on the celestial sphere (RA/Dec, "
            "galactic or ecliptic), so they have no RA/Dec footprint"
        ) from error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lon, lat = source.wcs.pixel_to_world_values(xs, ys)
        icrs = SkyCoord(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), unit="deg", frame=frame)
        icrs = icrs.transform_to(ICRS())
    ra = np.asarray(icrs.ra.deg, dtype=float) % 360.0
    dec = np.asarray(icrs.dec.deg, dtype=float)
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise NotASkyFrame(f"No celestial WCS found in FITS file: {source.name}")
    return ra, dec


def find_weight_hdu(path: Path | str, info: ImageInfo) -> WeightMap | None:
    """Return the weight extensions of the science image ``info`` (headers only), by preference.

    ``ERR`` (weight ``1/ERR**2``), else every ``VAR_*`` extension (``1/sum``), else ``WHT``; each
    must have the image's shape and EXTVER. ``None`` when there is none, or when the image itself
    is not a science extension (an ``ERR`` or ``WHT`` plane chosen by name).
    """
    if (info.extname or "").strip().upper() in NOT_SCIENCE:
        return None
    version = int(info.header.get("EXTVER", 1) or 1)
    found: dict[str, list[int]] = {}
    try:
        with open_fits(path) as hdul:
            for index, hdu in enumerate(hdul):
                header = hdu.header
                name = str(header.get("EXTNAME", "")).strip().upper()
                if name not in NOT_SCIENCE or index == info.hdu_index or int(header.get("EXTVER", 1) or 1) != version:
                    continue
                dims = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS", 0)) + 1)]
                if tuple(reversed(dims)) == info.shape:
                    found.setdefault(name, []).append(index)
    except Exception:  # weights are optional; an unreadable extension list means none
        return None
    if ERROR_EXTENSION in found:
        return WeightMap("ERR", (found[ERROR_EXTENSION][0],))
    variances = tuple(found[name][0] for name in VARIANCE_EXTENSIONS if name in found)
    if variances:
        return WeightMap("VAR", variances)
    if WEIGHT_EXTENSION in found:
        return WeightMap("WHT", (found[WEIGHT_EXTENSION][0],))
    return None


def read_factor(source: ImageSource, grid: Grid, *, max_input_pixels: int | None = None) -> int:
    """Return the block-average factor for reading ``source`` onto ``grid`` (never finer than needed).

    With ``max_input_pixels``, the factor also keeps the read plane within that many pixels.
    """
    factor = max(1, math.floor(grid.pixel_scale_deg / source.pixel_scale_deg * 1.0001))
    plane = source.info.ny * source.info.nx
    if max_input_pixels is not None and plane > max_input_pixels:
        factor = max(factor, math.ceil(math.sqrt(plane / max_input_pixels)))
    return factor


def max_side_for(source: ImageSource, factor: int) -> int | None:
    """Return the ``max_side`` of a read that block-averages ``source`` by ``factor`` (``None`` = full size)."""
    return math.ceil(max(source.shape) / factor) if factor > 1 else None
