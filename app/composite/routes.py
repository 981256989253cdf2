"""HTTP routes of the composite module (thin: parse, call the service, return a model)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.api.deps import ExecutorDep, SettingsDep
from app.api.responses import READS_FILES, RUNS_JOBS, binary_content, errors
from app.composite.schemas import COMPOSITE_HEADERS, NChannelCompositeRequest
from app.composite.service import generate_composite

router = APIRouter(prefix="/composite", tags=["composite"])


@router.post(
    "/generate-nchannel",
    summary="Render an N-channel colour composite",
    description=(
        "Reprojects every file of every channel once onto one optimal celestial grid (sized to the "
        "output and to the memory budget), co-adds multi-file channels, stretches each channel, maps "
        "hue or RGB colours (optional LRGB luminance; with background_neutralization the stretched "
        "sky of every colour channel is brought to one level, so the sky is grey), and returns a PNG "
        "or JPEG of exactly width x height (the sky's aspect ratio is kept, letterboxed with black bars) with AVM "
        "metadata. Headers X-Composite-* report the working grid, downscaling, cache use, stretch "
        "fallbacks and automatic stretch parameters. Channels that share no area on the sky are "
        "refused with 422 naming them."
    ),
    response_class=Response,
    responses={
        200: {
            "content": binary_content("image/png", "image/jpeg"),
            "description": "The composite, exactly width x height, with AVM metadata.",
            "headers": COMPOSITE_HEADERS,
        },
        **errors(
            READS_FILES,
            RUNS_JOBS,
            meanings={
                400: "An unreadable file, no image data, or a file without a celestial WCS.",
                413: "Request body larger than `MAX_REQUEST_BODY_BYTES`, a file above `MAX_FITS_FILE_SIZE_MB`, "
                "or a grid that cannot fit the memory budget.",
                422: "Validation failed (a list), or the channels are inconsistent (a sentence): not exactly one "
                "colour per channel, black_point not below white_point, more than one luminance channel, no "
                "colour channel, or channels that share no area on the sky.",
            },
            domain_422=True,
        ),
    },
)
async def generate_nchannel(
    request: NChannelCompositeRequest, executor: ExecutorDep, settings: SettingsDep
) -> Response:
    result = await generate_composite(request, executor=executor, settings=settings)
    return Response(content=result.content, media_type=result.media_type, headers=result.headers)
