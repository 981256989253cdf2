"""HTTP routes of the mosaic module (thin: parse, call the service, return a model)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from app.api.deps import ExecutorDep, SettingsDep, StorageDep
from app.api.responses import READS_FILES, RUNS_JOBS, binary_content, errors, header
from app.mosaic.schemas import MOSAIC_HEADERS, FootprintRequest, FootprintResponse, MosaicRequest
from app.mosaic.service import footprints, generate_mosaic

router = APIRouter(prefix="/mosaic", tags=["mosaic"])


@router.post(
    "/generate",
    summary="Build a WCS mosaic",
    description=(
        "Reprojects every file onto one optimal north-up celestial grid, streaming them one at a time "
        "into the combine (mean, sum, first, last, min, max, median; exact zeros masked). Returns a "
        "float32 FITS file with WCS, provenance cards and a SRCMETA table (streamed), or a PNG/JPEG "
        "rendered with the first file's stretch and the colormap, with AVM metadata of its pixel grid. "
        "413 when a file exceeds "
        "MAX_FITS_FILE_SIZE_MB or the grid exceeds MAX_MOSAIC_OUTPUT_PIXELS."
    ),
    response_class=Response,
    responses={
        200: {
            "content": binary_content("image/png", "image/jpeg", "application/fits"),
            "description": "The mosaic: an image, or a float32 FITS file (streamed, `mosaic_i2d.fits`).",
            "headers": {
                **MOSAIC_HEADERS,
                "Content-Disposition": header('`attachment; filename="mosaic_i2d.fits"` for FITS output.'),
            },
        },
        **errors(
            READS_FILES,
            RUNS_JOBS,
            422,
            meanings={
                400: "An unknown cmap, width/height with FITS output, an unreadable file, no image data or no "
                "celestial WCS.",
                413: "Request body larger than `MAX_REQUEST_BODY_BYTES`, a file above `MAX_FITS_FILE_SIZE_MB`, "
                "or a grid above `MAX_MOSAIC_OUTPUT_PIXELS`.",
            },
        ),
    },
)
async def generate(
    request: MosaicRequest, storage: StorageDep, executor: ExecutorDep, settings: SettingsDep
) -> Response:
    result = await generate_mosaic(request, storage=storage, executor=executor, settings=settings)
    if result.stream is not None:
        return StreamingResponse(
            result.stream,
            media_type=result.media_type,
            headers={**result.headers, "Content-Disposition": 'attachment; filename="mosaic_i2d.fits"'},
        )
    return Response(content=result.content, media_type=result.media_type, headers=result.headers)


@router.post(
    "/footprint",
    summary="Sky footprints of FITS files",
    description=(
        "Corners (pixels (0,0), (w-1,0), (w-1,h-1), (0,h-1)) and centre (w/2, h/2) of each file in "
        "ICRS RA/Dec degrees (a galactic, ecliptic or FK4/FK5 header is converted; RA in [0, 360)), plus "
        "the bounding box (min_ra > max_ra when it crosses RA 0), computed from headers only. A file "
        "whose coordinates are not on the sky (helioprojective, for instance) gets 400."
    ),
    response_model=FootprintResponse,
    responses=errors(
        READS_FILES,
        RUNS_JOBS,
        422,
        meanings={400: "An unreadable file, or a file whose coordinates are not on the sky."},
    ),
)
async def footprint(request: FootprintRequest, executor: ExecutorDep) -> FootprintResponse:
    return await footprints(request, executor=executor)
