"""Analysis job entry points: picklable, run by the executor, the only place a file becomes arrays.

Each takes a storage key and plain parameters, opens the key where it runs
(:func:`app.worker.context.local_path`), reads what it needs through
:mod:`app.processing.fits_io` (headers first, so budgets hold before any pixel is read), and hands
arrays or open HDUs to the numeric core (:mod:`app.processing.regions`, ``detection``,
``tables``). Core errors leave as domain errors (:func:`app.worker.errors.job_entry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from app.core.exceptions import FitsTooLargeError, InvalidRequestError
from app.processing import detection, regions, tables
from app.processing.fits_io import image_info, open_fits, read_plane, read_window
from app.worker.context import local_path
from app.worker.deadline import Deadline
from app.worker.errors import job_entry

#: Images with more pixels are refused (413) before any read.
MAX_DETECTION_PIXELS = 50_000_000
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
    max_pixels: int = MAX_DETECTION_PIXELS,
    deadline_seconds: float = DETECTION_DEADLINE_SECONDS,
) -> detection.DetectionResult:
    """Read the image of ``key`` (middle slice of a cube) and detect sources (``POST /analysis/detect-sources``).

    The image size is checked from the headers first (413 above ``max_pixels``); the deadline is
    checked after the read and between the detection stages (504 past it).
    """
    deadline = Deadline(deadline_seconds, what="Source detection")
    path = local_path(key)
    info = image_info(path, hdu_index=hdu_index if hdu_index >= 0 else None)
    if info.ny * info.nx > max_pixels:
        raise FitsTooLargeError(
            f"Image too large for source detection: {info.ny * info.nx} pixels exceeds the limit of {max_pixels}"
        )
    plane = read_plane(path, hdu_index=info.hdu_index, slice_index=-1)
    deadline.check("read")
    return detection.detect(
        plane.data,
        method=method,
        threshold_sigma=threshold_sigma,
        fwhm=fwhm,
        npixels=npixels,
        deblend=deblend,
        checkpoint=deadline.check,
    )


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
