"""Discovery job entry point: rank composite recipes for a set of observations.

The ranking (:mod:`app.discovery.recipe_engine`) is pure Python over the request's rows. It is light
for the backend's usual requests, but a body may carry many thousands of observations, so the
service runs it in a thread rather than on the event loop.
"""

from __future__ import annotations

import logging

from app.discovery.recipe_engine import suggest_recipes as rank_recipes
from app.discovery.schemas import SuggestRecipesRequest, SuggestRecipesResponse

logger = logging.getLogger("app.discovery")


def suggest_recipes(request: SuggestRecipesRequest) -> SuggestRecipesResponse:
    """Return ranked composite recipes for the request's observations (400 without observations)."""
    response = rank_recipes(request)
    logger.info(
        "recipes_suggested",
        extra={"n_observations": len(request.observations or []), "n_recipes": len(response.recipes)},
    )
    return response
