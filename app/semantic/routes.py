"""HTTP routes of the semantic module (thin: parse, call the service, return a model)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import SemanticDep
from app.api.responses import errors
from app.semantic.schemas import (
    MAX_BATCH_ITEMS,
    EmbedBatchRequest,
    EmbedBatchResponse,
    EmbedRequest,
    EmbedResponse,
    IndexStatusResponse,
    SearchRequest,
    SearchResponse,
)

router = APIRouter(prefix="/semantic", tags=["semantic"])


@router.post(
    "/embed",
    response_model=EmbedResponse,
    responses=errors(413, 422, 429, meanings={400: "`No embeddable text from metadata`: no field carries text."}),
    summary="Embed one file's metadata",
    description="Builds prose from the metadata (instrument long name, filter wavelength, exposure depth, "
    "calibration words, target, date, PI, title, file name), embeds it with all-MiniLM-L6-v2 and stores the "
    "vector, replacing any earlier one of the same `file_id`. 400 `No embeddable text from metadata` when "
    "no field carries text.",
)
async def embed(body: EmbedRequest, service: SemanticDep) -> EmbedResponse:
    return await service.embed(body.metadata)


@router.post(
    "/embed-batch",
    response_model=EmbedBatchResponse,
    responses=errors(
        413,
        429,
        meanings={
            400: "`items list is required`: no items were sent.",
            422: f"Validation failed, e.g. more than {MAX_BATCH_ITEMS} items.",
        },
    ),
    summary="Embed many files' metadata",
    description=f"Embeds up to {MAX_BATCH_ITEMS} items in one call (the backend's full re-index) and writes "
    "them to the index in one step. More items give 422; an empty list gives 400 `items list is required`. "
    "Items without text are listed in `errors` as `<file_id>: no embeddable text`. Large batches also need "
    "`MAX_REQUEST_BODY_BYTES` to admit the body.",
)
async def embed_batch(body: EmbedBatchRequest, service: SemanticDep) -> EmbedBatchResponse:
    return await service.embed_batch(body.items)


@router.post(
    "/search",
    response_model=SearchResponse,
    responses=errors(413, 422, 429),
    summary="Semantic search over file metadata",
    description="Embeds the query and returns the `top_k` files (1–100, default 20) with the highest cosine "
    "similarity of at least `min_score` (0–1, default 0.3), best first, by exact search over every vector. "
    "An empty index answers `results: []` with zero times.",
)
async def search(body: SearchRequest, service: SemanticDep) -> SearchResponse:
    return await service.search(body.query, top_k=body.top_k, min_score=body.min_score)


@router.get(
    "/index-status",
    response_model=IndexStatusResponse,
    summary="State of the semantic index",
    description="Number of indexed files, whether the embedding model is loaded in this process, whether an "
    "index file exists, the model name and the embedding dimension. Never loads the model.",
)
async def index_status(service: SemanticDep) -> IndexStatusResponse:
    return await service.status()
