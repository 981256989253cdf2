"""HTTP routes of the discovery module (thin: parse, call the service, return a model)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.responses import errors
from app.discovery import service
from app.discovery.schemas import SuggestRecipesRequest, SuggestRecipesResponse

router = APIRouter(prefix="/discovery", tags=["discovery"])


@router.post(
    "/suggest-recipes",
    response_model=SuggestRecipesResponse,
    responses=errors(413, 422, meanings={400: "`observations list is required`: no observations were sent."}),
    summary="Suggest colour-composite recipes",
    description="Ranks composite recipes (all filters, classic 3-colour, narrowband, broadband per instrument, "
    "and all filters across instruments) built from the given observations. Spectral, proprietary (future "
    "`t_obs_release`), calibration and background observations are skipped; observations with `ra`/`dec` are "
    "grouped into fields. Wavelengths come from `wavelength_um` or the JWST filter name. Each recipe's `score` "
    "(filter count, wavelength span, coverage overlap, pixel-scale match) decides its integer `rank`; colours "
    "run from blue (shortest wavelength) to red. 400 `observations list is required` without observations.",
)
async def suggest_recipes(request: SuggestRecipesRequest) -> SuggestRecipesResponse:
    return await service.suggest_recipes(request)
