"""Request and response models of the semantic search endpoints (``/semantic/*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Largest ``embed-batch`` accepted. The previous engine refused more than 1000 items (422), which
#: broke the backend's full re-index; this engine takes up to this bound and still answers 422 beyond it.
MAX_BATCH_ITEMS = 50_000
MAX_QUERY_CHARS = 500


class FileMetadata(BaseModel):
    """Metadata of one file as the backend sends it: every key present, most of them possibly null."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    file_id: str = Field(min_length=1, description="Mongo id of the file; re-embedding it replaces its vector.")
    target_name: str | None = None
    instrument: str | None = Field(default=None, description="e.g. `NIRCAM`, `MIRI/IMAGE`.")
    filter_name: str | None = Field(default=None, description="e.g. `F444W`, `F090W;CLEAR`.")
    exposure_time: float | None = Field(default=None, description="Seconds.")
    wavelength_range: str | None = None
    processing_level: str | None = Field(default=None, description="`L1`, `L2a`, `L2b`, `L3` or `unknown`.")
    calibration_level: int | None = None
    observation_date: str | None = Field(default=None, description="`yyyy-MM-dd`.")
    proposal_pi: str | None = None
    proposal_id: str | None = None
    observation_title: str | None = None
    data_type: str | None = None
    file_name: str | None = None


class EmbedRequest(BaseModel):
    """Body of ``POST /semantic/embed``."""

    metadata: FileMetadata


class EmbedResponse(BaseModel):
    """Answer of ``POST /semantic/embed``."""

    file_id: str
    success: bool = True
    total_indexed: int


class EmbedBatchRequest(BaseModel):
    """Body of ``POST /semantic/embed-batch``."""

    items: list[FileMetadata] | None = Field(
        default=None,
        max_length=MAX_BATCH_ITEMS,
        description=f"Files to (re-)embed, at most {MAX_BATCH_ITEMS}; more gives 422, an empty list 400.",
    )


class EmbedBatchResponse(BaseModel):
    """Answer of ``POST /semantic/embed-batch``."""

    embedded_count: int
    total_indexed: int
    errors: list[str]


class SearchRequest(BaseModel):
    """Body of ``POST /semantic/search``."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=20, ge=1, le=100)
    min_score: float = Field(default=0.3, ge=0.0, le=1.0)


class SearchResult(BaseModel):
    """One hit of ``POST /semantic/search``."""

    file_id: str
    score: float
    matched_text: str


class SearchResponse(BaseModel):
    """Answer of ``POST /semantic/search``."""

    results: list[SearchResult]
    query: str
    embed_time_ms: float
    search_time_ms: float
    total_indexed: int


class IndexStatusResponse(BaseModel):
    """Answer of ``GET /semantic/index-status``."""

    total_indexed: int
    model_loaded: bool
    index_file_exists: bool
    model_name: str
    embedding_dim: int
