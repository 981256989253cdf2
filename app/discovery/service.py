"""Discovery service: recipe suggestions, computed off the event loop."""

from __future__ import annotations

import anyio.to_thread

from app.discovery import jobs
from app.discovery.schemas import SuggestRecipesRequest, SuggestRecipesResponse


async def suggest_recipes(request: SuggestRecipesRequest) -> SuggestRecipesResponse:
    """Rank composite recipes for the request's observations in a thread (400 without observations)."""
    return await anyio.to_thread.run_sync(jobs.suggest_recipes, request)
