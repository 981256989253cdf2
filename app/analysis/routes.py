"""HTTP routes of the analysis module (thin: parse, call the service, return a model)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.analysis import service
from app.analysis.schemas import (
    DetectSourcesRequest,
    DetectSourcesResponse,
    RegionStatisticsRequest,
    RegionStatisticsResponse,
    SpectralDataResponse,
    TableDataResponse,
    TableInfoResponse,
)
from app.api.deps import ExecutorDep, SettingsDep
from app.api.responses import READS_FILES, RUNS_JOBS, errors

router = APIRouter(prefix="/analysis", tags=["analysis"])
FILE_PATH = Query(description="Storage key of the FITS file.")


def _errors(bad_request: str) -> dict[int | str, dict[str, object]]:
    return errors(READS_FILES, RUNS_JOBS, 422, meanings={400: bad_request})


@router.post(
    "/region-statistics",
    response_model=RegionStatisticsResponse,
    responses=_errors(
        "The region object for `region_type` is missing, the HDU index is out of range, there is no image, "
        "no finite pixel lies in the region, or the file is unreadable."
    ),
    summary="Statistics of a pixel region",
    description="Mean, median, std, min, max, sum and count of the finite pixels inside a rectangle, an "
    "ellipse or a polygon (0-based pixel coordinates, x = column). Only the region's bounding box is read. "
    "Cubes use the middle slice. 400 when the region object for `region_type` is missing, the HDU index is "
    "out of range, there is no image, or no finite pixel lies in the region; 413 when the bounding box "
    "exceeds `MAX_FITS_ARRAY_ELEMENTS`.",
)
async def region_statistics(
    request: RegionStatisticsRequest, executor: ExecutorDep, settings: SettingsDep
) -> RegionStatisticsResponse:
    return await service.region_statistics(request, executor=executor, settings=settings)


@router.post(
    "/detect-sources",
    response_model=DetectSourcesResponse,
    responses=_errors(
        "An unknown method, the HDU index out of range, no image, an all-NaN image, or an unreadable file."
    ),
    summary="Detect sources",
    description="Finds sources on a SEP background- and RMS-subtracted image with `daofind` (DAOStarFinder), "
    "`iraf` (IRAFStarFinder), `segmentation` (Source Extractor segmentation with deblending) or `auto` "
    "(reported as `segmentation`: a matched-filter segmentation split at every peak, for crowded fields). "
    "With a `WHT` or `ERR` extension (`weight_hdu`), the threshold follows its per-pixel noise. "
    "Sources on NaN or zero-weight pixels are dropped; the rest are sorted by flux "
    "(descending), numbered 1..n and capped at the 20 000 brightest. `estimated_fwhm` is the median "
    "moment-based FWHM. 400 for an unknown method, HDU index out of range, no image or an all-NaN image; "
    "413 above 50 000 000 pixels; 504 when the job passes its deadline.",
)
async def detect_sources(request: DetectSourcesRequest, executor: ExecutorDep) -> DetectSourcesResponse:
    return await service.detect_sources(request, executor=executor)


@router.get(
    "/table-info",
    response_model=TableInfoResponse,
    responses=_errors("An unreadable file."),
    summary="Describe the tables of a FITS file",
    description="Every binary or ASCII table HDU with its row count and columns (`dtype` is the TFORM code, "
    "`format` the TDISP value).",
)
async def table_info(executor: ExecutorDep, file_path: str = FILE_PATH) -> TableInfoResponse:
    return await service.table_info(file_path, executor=executor)


@router.get(
    "/table-data",
    response_model=TableDataResponse,
    responses=_errors(
        "page below 0, page_size outside 1-500, an HDU out of range or not a table, an unknown sort column, "
        "or an unreadable file."
    ),
    summary="One page of a FITS table",
    description="Rows of a table HDU after an optional case-insensitive search over every cell and an optional "
    "sort (`sort_direction=desc` reverses; NaN and masked values sort last). `page` is clamped to the last page; "
    "`total_rows` counts the rows after the search. NaN, Inf and masked cells are null, bytes are stripped "
    "strings, array cells are their text cut to 100 characters. 400 for page < 0, page_size outside 1-500, an "
    "HDU out of range or not a table, or an unknown sort column.",
)
async def table_data(
    executor: ExecutorDep,
    file_path: str = FILE_PATH,
    hdu_index: int = Query(0, description="The table HDU; 400 below 0.", json_schema_extra={"minimum": 0}),
    page: int = Query(0, description="0-based page; 400 below 0.", json_schema_extra={"minimum": 0}),
    page_size: int = Query(
        100, description="Rows per page; 400 outside 1-500.", json_schema_extra={"minimum": 1, "maximum": 500}
    ),
    sort_column: str | None = Query(None, description="Column to sort by; 400 for an unknown column."),
    sort_direction: str | None = Query(None, description="`desc` for descending; anything else ascending."),
    search: str | None = Query(None, description="Case-insensitive substring matched against every cell."),
) -> TableDataResponse:
    return await service.table_data(
        file_path,
        hdu_index=hdu_index,
        page=page,
        page_size=page_size,
        sort_column=sort_column,
        sort_direction=sort_direction,
        search=search,
        executor=executor,
    )


@router.get(
    "/spectral-data",
    response_model=SpectralDataResponse,
    responses=_errors(
        "A blank path, an HDU out of range or not a table, no wavelength column, more than 500 000 points, "
        "or an unreadable file."
    ),
    summary="A 1-D spectrum from a FITS table",
    description="The wavelength column (WAVELENGTH, WAVE or LAMBDA) first, then the 1-D members of the known "
    "spectral set (FLUX, FLUX_ERROR, ERROR, SURF_BRIGHT, SB_ERROR, NET, BACKGROUND, BACKGROUND_ERROR, DQ, "
    "NPIXELS, BERROR, FLUX_VAR_*, SB_VAR_*). Values are numbers or null. 400 for a blank path, an HDU out of "
    "range or not a table, no wavelength column, or more than 500 000 points.",
)
async def spectral_data(
    executor: ExecutorDep,
    file_path: str = FILE_PATH,
    hdu_index: int = Query(1, description="The table HDU; 400 below 0.", json_schema_extra={"minimum": 0}),
) -> SpectralDataResponse:
    return await service.spectral_data(file_path, hdu_index=hdu_index, executor=executor)
