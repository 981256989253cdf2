"""HTTP routes of the viewer module (thin: parse, call the service, return a model or Response).

``POST /thumbnail``, ``GET /preview/{data_id}``, ``GET /histogram/{data_id}``,
``GET /pixeldata/{data_id}``, ``GET /cubeinfo/{data_id}``. Range checks answer 400 (before the
file is looked up); a missing ``file_path`` is FastAPI's 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from app.api.deps import ExecutorDep, SettingsDep
from app.api.query import query_model
from app.api.responses import READS_FILES, RUNS_JOBS, binary_content, errors, header
from app.viewer import service
from app.viewer.schemas import (
    CubeInfoQuery,
    CubeInfoResponse,
    HistogramQuery,
    HistogramResponse,
    PixelDataQuery,
    PixelDataResponse,
    PreviewQuery,
    ThumbnailRequest,
    ThumbnailResponse,
)

router = APIRouter(tags=["viewer"])

FILE_PATH = Query(..., description="Storage key of the FITS file, relative to the storage root.")
PreviewQueryDep = Annotated[PreviewQuery, Depends(query_model(PreviewQuery))]
HistogramQueryDep = Annotated[HistogramQuery, Depends(query_model(HistogramQuery))]
PixelDataQueryDep = Annotated[PixelDataQuery, Depends(query_model(PixelDataQuery))]
CubeInfoQueryDep = Annotated[CubeInfoQuery, Depends(query_model(CubeInfoQuery))]
#: Said by every viewer route: how the extension is chosen.
HDU_NOTE = (
    " The extension is the SCI image HDU when the file has one (a JWST or HST product), else the first image "
    "HDU; hdu_index, or extname (with extver), chooses another (400 for an index past the last HDU, an HDU "
    "without image data, or an unknown extname, whose message lists the file's extensions). In a JWST product, "
    "pixels its DQ extension flags DO_NOT_USE, NON_SCIENCE, DEAD or HOT are blank (NaN)."
)
DataId = Annotated[str, Path(description="The backend's id of the file; echoed, not used to find it.")]

#: What a viewer read can answer besides 200.
VIEWER_ERRORS = errors(
    READS_FILES,
    RUNS_JOBS,
    422,
    meanings={400: "A parameter out of range or not allowed, an unreadable file, or no image data."},
)
CUBE_HEADERS = {
    "X-Cube-Slices": header("Number of slices of the cube (1 for an image).", kind="integer", required=True),
    "X-Cube-Current": header("0-based slice rendered.", kind="integer", required=True),
}


@router.post(
    "/thumbnail",
    response_model=ThumbnailResponse,
    responses=errors(READS_FILES, RUNS_JOBS, 422, meanings={400: "Unreadable file or no image data."}),
    summary="Thumbnail of a FITS image",
    description="A ~256 px grayscale PNG (zscale, origin lower, aspect kept) of the image HDU, "
    "middle slice of cubes; base64 without a data: prefix." + HDU_NOTE,
)
async def post_thumbnail(body: ThumbnailRequest, executor: ExecutorDep) -> ThumbnailResponse:
    return await service.thumbnail(executor, body)


@router.get(
    "/preview/{data_id}",
    response_class=Response,
    responses={
        200: {
            "content": binary_content("image/png", "image/jpeg"),
            "description": "The rendered image.",
            "headers": CUBE_HEADERS,
        },
        **VIEWER_ERRORS,
    },
    summary="Render a preview image",
    description="Stretch, colour-map and encode one plane of a FITS image as PNG or JPEG fitting the "
    "width x height box (aspect kept). Headers X-Cube-Slices and X-Cube-Current give the cube position. "
    "Optional AVM metadata (XMP, written by pyavm) of the picture's pixel grid from the file's WCS." + HDU_NOTE,
)
async def get_preview(
    data_id: DataId,
    query: PreviewQueryDep,
    executor: ExecutorDep,
    settings: SettingsDep,
    file_path: str = FILE_PATH,
) -> Response:
    image = await service.preview(executor, settings, file_path, query)
    return Response(content=image.content, media_type=image.media_type, headers=image.headers)


@router.get(
    "/histogram/{data_id}",
    response_model=HistogramResponse,
    responses=VIEWER_ERRORS,
    summary="Histograms of a FITS plane",
    description="Histogram of the min-max normalised raw data and of the stretched data (after levels and "
    "gamma, in 0-1), plus percentiles (keys p0, p1, p5, p25, p50, p75, p95, p99; p0 holds the 0.5th and p99 "
    "the 99.5th) and min/max/mean/std, both of the stretched data. All are computed on a sample of at most "
    "about 1 000 000 pixels spread over the whole plane: every n-th pixel of every n-th row at full resolution, "
    "n = ceil(sqrt(pixels / 1 000 000)) (every pixel of a smaller plane), so the counts add up to the sample "
    "size. With smoothing, the plane is stride-sampled to 4096 px, smoothed, then sampled the same way." + HDU_NOTE,
)
async def get_histogram(
    data_id: DataId,
    query: HistogramQueryDep,
    executor: ExecutorDep,
    settings: SettingsDep,
    file_path: str = FILE_PATH,
) -> HistogramResponse:
    return await service.histogram(executor, settings, data_id, file_path, query)


@router.get(
    "/pixeldata/{data_id}",
    response_model=PixelDataResponse,
    responses=VIEWER_ERRORS,
    summary="Downsampled pixel values",
    description="One plane reduced so its longer side is at most max_size, as base64 float32 "
    "little-endian row-major values (NaN/Inf -> 0), with the original shape, scale factor, WCS and units." + HDU_NOTE,
)
async def get_pixel_data(
    data_id: DataId,
    query: PixelDataQueryDep,
    executor: ExecutorDep,
    settings: SettingsDep,
    file_path: str = FILE_PATH,
) -> PixelDataResponse:
    return await service.pixel_data(executor, settings, data_id, file_path, query)


@router.get(
    "/cubeinfo/{data_id}",
    response_model=CubeInfoResponse,
    responses=errors(READS_FILES, RUNS_JOBS, 422, meanings={400: "Unreadable file."}),
    summary="Cube axis description",
    description="Whether the file holds a cube (an HDU with more than one plane along an axis besides the two "
    "image axes), its slice count and the "
    "browsed axis (CRVAL3, CDELT3, CRPIX3, CUNIT3, CTYPE3, or axis n's cards when axes of length 1 "
    "such as a radio cube's Stokes axis are skipped) with a label and a normalised unit. The cube is the SCI "
    "HDU when it has 3 or more dimensions (a JWST _s3d cube: its wavelength axis), else the first such HDU; "
    "hdu_index or extname (with extver) describes another one, a 2-D one as not a cube. A tabulated axis "
    "(CTYPE3 = 'WAVE-TAB', values in the WCS-TABLE extension) is given by its first value and mean step.",
)
async def get_cube_info(
    data_id: DataId, query: CubeInfoQueryDep, executor: ExecutorDep, file_path: str = FILE_PATH
) -> CubeInfoResponse:
    return await service.cube_info(executor, data_id, file_path, query)
