"""Analysis services: validate per the contract, then run the job on the executor with the storage key.

Validation order follows the contract: request-level checks (region object present, method in
the set, page ranges) answer 400 before any file is resolved; then the key is resolved (403,
404, 400 for a directory); then the numeric job runs in a worker.
"""

from __future__ import annotations

import logging

from app.analysis import jobs
from app.analysis.schemas import (
    DetectSourcesRequest,
    DetectSourcesResponse,
    RegionStatisticsRequest,
    RegionStatisticsResponse,
    SpectralDataResponse,
    TableDataResponse,
    TableInfoResponse,
)
from app.core.exceptions import InvalidRequestError
from app.core.executor import JobExecutor
from app.core.settings import Settings
from app.processing import detection, regions

logger = logging.getLogger("app.analysis")

MAX_PAGE_SIZE = 500


def build_region(request: RegionStatisticsRequest) -> regions.Region:
    """Build the numeric region of the request, or raise a 400 when its object is missing or malformed."""
    if request.region_type == "rectangle":
        if request.rectangle is None:
            raise InvalidRequestError("Rectangle region parameters required")
        r = request.rectangle
        return regions.Rectangle(r.x, r.y, r.width, r.height)
    if request.region_type == "ellipse":
        if request.ellipse is None:
            raise InvalidRequestError("Ellipse region parameters required")
        e = request.ellipse
        return regions.Ellipse(e.cx, e.cy, e.rx, e.ry)
    if request.polygon is None:
        raise InvalidRequestError("Polygon region parameters required")
    if len(request.polygon) < 3:
        raise InvalidRequestError("Polygon region needs at least 3 vertices")
    return regions.Polygon(tuple((float(x), float(y)) for x, y in request.polygon))


async def region_statistics(
    request: RegionStatisticsRequest, *, executor: JobExecutor, settings: Settings
) -> RegionStatisticsResponse:
    """``POST /analysis/region-statistics``: statistics of the finite pixels inside a region."""
    region = build_region(request)
    hdu_index = -1 if request.hdu_index is None else request.hdu_index
    stats = await executor.run(
        jobs.region_statistics,
        request.file_path,
        region,
        hdu_index=hdu_index,
        max_elements=settings.max_fits_array_elements,
    )
    return RegionStatisticsResponse.model_validate(stats)


async def detect_sources(request: DetectSourcesRequest, *, executor: JobExecutor) -> DetectSourcesResponse:
    """``POST /analysis/detect-sources``: detect sources on the image (middle slice of a cube)."""
    method = "auto" if request.method is None else request.method
    if method not in detection.METHODS:
        raise InvalidRequestError(f"Invalid method '{method}'. Must be one of: {', '.join(detection.METHODS)}")
    result = await executor.run(
        jobs.detect_sources,
        request.file_path,
        hdu_index=-1 if request.hdu_index is None else request.hdu_index,
        method=method,
        threshold_sigma=5.0 if request.threshold_sigma is None else request.threshold_sigma,
        fwhm=3.0 if request.fwhm is None else request.fwhm,
        npixels=10 if request.npixels is None else request.npixels,
        deblend=True if request.deblend is None else request.deblend,
        weight_hdu="auto" if request.weight_hdu is None else request.weight_hdu,
        deadline_seconds=jobs.DETECTION_DEADLINE_SECONDS,
    )
    logger.info("sources_detected", extra={"method": result.method, "n_sources": len(result.sources)})
    return DetectSourcesResponse.model_validate(
        {
            "sources": result.sources,
            "n_sources": len(result.sources),
            "method": result.method,
            "threshold_sigma": result.threshold_sigma,
            "threshold_value": result.threshold_value,
            "estimated_fwhm": result.estimated_fwhm,
        }
    )


async def table_info(file_path: str, *, executor: JobExecutor) -> TableInfoResponse:
    """``GET /analysis/table-info``: every table HDU of the file and its columns."""
    return TableInfoResponse.model_validate(await executor.run(jobs.table_info, file_path))


async def table_data(
    file_path: str,
    *,
    hdu_index: int,
    page: int,
    page_size: int,
    sort_column: str | None,
    sort_direction: str | None,
    search: str | None,
    executor: JobExecutor,
) -> TableDataResponse:
    """``GET /analysis/table-data``: one page of a table HDU after optional search and sort."""
    if page < 0:
        raise InvalidRequestError("page must be >= 0")
    if page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise InvalidRequestError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    if hdu_index < 0:
        raise InvalidRequestError(f"HDU index {hdu_index} out of range")
    result = await executor.run(
        jobs.table_page,
        file_path,
        hdu_index=hdu_index,
        page=page,
        page_size=page_size,
        sort_column=sort_column or None,
        sort_direction=sort_direction or None,
        search=search or None,
    )
    return TableDataResponse.model_validate(result)


async def spectral_data(file_path: str, *, hdu_index: int, executor: JobExecutor) -> SpectralDataResponse:
    """``GET /analysis/spectral-data``: the wavelength column and the 1-D spectral columns of a table HDU."""
    if not file_path or not file_path.strip():
        raise InvalidRequestError("file_path is required")
    if hdu_index < 0:
        raise InvalidRequestError(f"HDU index {hdu_index} out of range")
    return SpectralDataResponse.model_validate(await executor.run(jobs.spectral_data, file_path, hdu_index=hdu_index))
