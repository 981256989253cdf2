"""Analysis job entry points: picklable, run by the executor, the only place a file becomes arrays.

Each takes a storage key and plain parameters, opens the key where it runs
(:func:`app.worker.context.local_path`), reads what it needs through
:mod:`app.processing.fits_io` (headers first, so budgets hold before any pixel is read), and hands
arrays or open HDUs to the numeric core (:mod:`app.processing.regions`, ``detection``,
``tables``). Core errors leave as domain errors (:func:`app.worker.errors.job_entry`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from app.core.exceptions import FitsTooLargeError, InvalidRequestError
from app.processing import detection, regions, tables
from app.processing.fits_io import ImageInfo, image_info, open_fits, read_plane, read_window
from app.processing.sources import WeightMap, find_weight_hdu
from app.worker.context import local_path
from app.worker.deadline import Deadline
from app.worker.errors import job_entry

#: Images with more pixels are refused (413) before any read.
MAX_DETECTION_PIXELS = 50_000_000
#: ``EXTNAME`` of the extensions ``weight_hdu`` may name.
WEIGHT_KINDS = ("WHT", "ERR")
#: Default wall-clock budget of one detection job, in seconds.
DETECTION_DEADLINE_SECONDS = 120.0


@job_entry
def region_statistics(
    key: str, region: regions.Region, *, hdu_index: int = -1, max_elements: int
) -> dict[str, float | int]:
    """Statistics of ``region`` on the image of ``path`` (``POST /analysis/region-statistics``).

    Only the region's bounding box is read, in row bands that are masked as they arrive, and
    only the finite pixels of the region are kept (float32), so peak memory stays near 4 bytes
    per region pixel.

    Parameters
    ----------
    key
        Storage key of the FITS file.
    region
        The pixel region.
    hdu_index
        Image HDU (-1 = the first HDU with 2-D data).
    max_elements
        Budget for the pixels of the bounding box (413 above it).
    """
    path = local_path(key)
    info = image_info(path, hdu_index=hdu_index if hdu_index >= 0 else None)
    box = regions.bounding_box(region, (info.ny, info.nx))
    if box.is_empty:
        raise InvalidRequestError(regions.NO_VALID_PIXELS)
    if box.n_pixels > max_elements:
        raise FitsTooLargeError(f"Region too large: {box.n_pixels} pixels exceeds the limit of {max_elements}")
    rows_per_band = max(1, regions.BAND_PIXELS // (box.x1 - box.x0))
    parts: list[np.ndarray] = []
    for y0 in range(box.y0, box.y1, rows_per_band):
        band = regions.Box(box.x0, y0, box.x1, min(box.y1, y0 + rows_per_band))
        data = read_window(path, info, rows=slice(band.y0, band.y1), cols=slice(band.x0, band.x1))
        values = data[regions.region_mask(region, band)]
        parts.append(values[np.isfinite(values)])
    return regions.finite_statistics(np.concatenate(parts) if len(parts) > 1 else parts[0])


@job_entry
def detect_sources(
    key: str,
    *,
    hdu_index: int = -1,
    method: str = "auto",
    threshold_sigma: float = 5.0,
    fwhm: float = 3.0,
    npixels: int = 10,
    deblend: bool = True,
    weight_hdu: int | str = "auto",
    max_pixels: int = MAX_DETECTION_PIXELS,
    deadline_seconds: float = DETECTION_DEADLINE_SECONDS,
) -> detection.DetectionResult:
    """Read the image of ``key`` (middle slice of a cube) and detect sources (``POST /analysis/detect-sources``).

    The image size is checked from the headers first (413 above ``max_pixels``); the deadline is
    checked after the read and between the detection stages (504 past it). ``weight_hdu`` names
    the per-pixel noise: ``"auto"`` (a ``WHT`` or ``ERR`` extension of the image's shape, if any),
    ``"none"``, or an HDU index whose ``EXTNAME`` is ``WHT`` or ``ERR``.
    """
    deadline = Deadline(deadline_seconds, what="Source detection")
    path = local_path(key)
    info = image_info(path, hdu_index=hdu_index if hdu_index >= 0 else None)
    if info.ny * info.nx > max_pixels:
        side = math.isqrt(max_pixels)
        raise FitsTooLargeError(
            f"Image {info.nx}x{info.ny} is too large for source detection: the detection budget is at most "
            f"{max_pixels} pixels (e.g. {side}x{side}); detect on a cutout or a downscaled copy"
        )
    plane = read_plane(path, hdu_index=info.hdu_index, slice_index=-1)
    noise = _noise_plane(path, info, weight_hdu)
    deadline.check("read")
    return detection.detect(
        plane.data,
        method=method,
        threshold_sigma=threshold_sigma,
        fwhm=fwhm,
        npixels=npixels,
        deblend=deblend,
        checkpoint=deadline.check,
        noise=noise,
    )


def _weight_extension(path: Path, info: ImageInfo, weight_hdu: int | str) -> WeightMap | None:
    """Return the noise extension(s) ``weight_hdu`` asks for (``ERR``, ``VAR_*`` or ``WHT``), or ``None``."""
    if weight_hdu == "none":
        return None
    if weight_hdu == "auto":
        return find_weight_hdu(path, info) if not info.is_cube else None
    if not isinstance(weight_hdu, int):
        raise InvalidRequestError("weight_hdu must be 'auto', 'none' or an HDU index")
    with open_fits(path) as hdul:
        if not 0 <= weight_hdu < len(hdul):
            raise InvalidRequestError(f"weight_hdu {weight_hdu} out of range (file has {len(hdul)} HDUs)")
        header = hdul[weight_hdu].header
        kind = str(header.get("EXTNAME", "")).strip().upper()
        shape = tuple(int(header.get(f"NAXIS{i}", 0)) for i in range(int(header.get("NAXIS", 0)), 0, -1))
    if kind not in WEIGHT_KINDS:
        raise InvalidRequestError(f"weight_hdu {weight_hdu} is not a WHT or ERR extension")
    if shape != (info.ny, info.nx):
        raise InvalidRequestError(f"weight_hdu {weight_hdu} has shape {shape}, the image {(info.ny, info.nx)}")
    return WeightMap("ERR" if kind == "ERR" else "WHT", (weight_hdu,))


def _noise_plane(path: Path, info: ImageInfo, weight_hdu: int | str) -> np.ndarray | None:
    """Per-pixel noise up to a constant: ``ERR`` as is, ``sqrt(sum(VAR_*))``, ``1/sqrt(WHT)``."""
    found = _weight_extension(path, info, weight_hdu)
    if found is None:
        return None
    planes = [read_plane(path, hdu_index=index).data for index in found.hdu_indices]
    if found.kind == "ERR":
        return planes[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        if found.kind == "VAR":
            return np.asarray(np.sqrt(np.sum(planes, axis=0)), dtype=np.float32)
        return np.asarray(np.float32(1.0) / np.sqrt(planes[0]), dtype=np.float32)


@job_entry
def table_info(key: str) -> dict[str, Any]:
    """``{file_name, table_hdus}``: every table HDU of ``key`` and its columns (``GET /analysis/table-info``)."""
    with open_fits(local_path(key)) as hdul:
        hdus = tables.describe_tables(hdul)
    return {"file_name": Path(key).name, "table_hdus": hdus}


@job_entry
def table_page(
    key: str,
    *,
    hdu_index: int = 0,
    page: int = 0,
    page_size: int = 100,
    sort_column: str | None = None,
    sort_direction: str | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    """One page of a table HDU after optional search and sort; see :func:`tables.table_page`."""
    with open_fits(local_path(key)) as hdul:
        return tables.table_page(
            hdul,
            hdu_index=hdu_index,
            page=page,
            page_size=page_size,
            sort_column=sort_column,
            sort_direction=sort_direction,
            search=search,
        )


@job_entry
def spectral_data(key: str, *, hdu_index: int = 1) -> dict[str, Any]:
    """Read the wavelength column and the 1-D spectral columns of a table HDU (``GET /analysis/spectral-data``)."""
    with open_fits(local_path(key)) as hdul:
        return tables.spectrum(hdul, hdu_index=hdu_index)
