"""Discovery service: recipe suggestions are light pure-Python work, answered on the event loop."""

from __future__ import annotations

import logging

from app.discovery.recipe_engine import suggest_recipes as rank_recipes
from app.discovery.schemas import SuggestRecipesRequest, SuggestRecipesResponse

logger = logging.getLogger("app.discovery")


def suggest_recipes(request: SuggestRecipesRequest) -> SuggestRecipesResponse:
    """E16: ranked composite recipes for the request's observations (400 without observations)."""
    response = rank_recipes(request)
    logger.info(
        "recipes_suggested",
        extra={"n_observations": len(request.observations or []), "n_recipes": len(response.recipes)},
    )
    return response
