"""Request and response models of the semantic search endpoints: embed, embed-batch, search, index-status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.core.json_types import JsonInt

#: Largest ``embed-batch`` accepted. The previous engine refused more than 1000 items (422), which
#: broke the backend's full re-index; this engine takes up to this bound and still answers 422 beyond it.
MAX_BATCH_ITEMS = 50_000
MAX_QUERY_CHARS = 500
#: The metadata of one file, as the examples of the OpenAPI document show it.
EXAMPLE_METADATA: dict[str, JsonValue] = {
    "file_id": "665f1c2ab4e8d93a1c0f7e21",
    "target_name": "NGC 3132",
    "instrument": "NIRCAM",
    "filter_name": "F444W",
    "exposure_time": 1288.5,
    "wavelength_range": "INFRARED",
    "processing_level": "L3",
    "calibration_level": 3,
    "observation_date": "2022-06-03",
    "proposal_pi": "Pontoppidan, Klaus",
    "proposal_id": "2733",
    "observation_title": "Webb Early Release Observations: Southern Ring Nebula",
    "data_type": "image",
    "file_name": "jw02733-o001_t001_nircam_clear-f444w_i2d.fits",
}


def _numbers_as_text(schema: dict[str, Any]) -> None:
    """Document that the text fields also take numbers (read as their text)."""
    for prop in schema.get("properties", {}).values():
        if prop.get("type") == "string":
            text = {key: prop.pop(key) for key in ("type", "minLength") if key in prop}
            prop["anyOf"] = [text, {"type": "number"}]
        elif {"type": "string"} in prop.get("anyOf", []):
            prop["anyOf"].insert(1, {"type": "number"})


class FileMetadata(BaseModel):
    """Metadata of one file as the backend sends it: every key present, most of them possibly null.

    A number where text is expected is read as its text (``"proposal_id": 2733``).
    """

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, json_schema_extra=_numbers_as_text)

    file_id: str = Field(min_length=1, description="Mongo id of the file; re-embedding it replaces its vector.")
    target_name: str | None = Field(default=None, description="Target name, e.g. `NGC 3132`.")
    instrument: str | None = Field(default=None, description="e.g. `NIRCAM`, `MIRI/IMAGE`.")
    filter_name: str | None = Field(default=None, description="e.g. `F444W`, `F090W;CLEAR`.")
    exposure_time: float | None = Field(default=None, strict=True, description="Seconds.")
    wavelength_range: str | None = Field(default=None, description="e.g. `INFRARED`.")
    processing_level: str | None = Field(default=None, description="`L1`, `L2a`, `L2b`, `L3` or `unknown`.")
    calibration_level: JsonInt | None = Field(default=None, description="MAST calibration level (0-4).")
    observation_date: str | None = Field(default=None, description="`yyyy-MM-dd`.")
    proposal_pi: str | None = Field(default=None, description="Principal investigator.")
    proposal_id: str | None = Field(default=None, description="JWST proposal (program) id.")
    observation_title: str | None = Field(default=None, description="Title of the proposal.")
    data_type: str | None = Field(default=None, description="e.g. `image`, `spectrum`, `cube`.")
    file_name: str | None = Field(
        default=None, description="File name, e.g. `jw02733-o001_t001_nircam_f444w_i2d.fits`."
    )


class EmbedRequest(BaseModel):
    """Body of ``POST /semantic/embed``."""

    metadata: FileMetadata = Field(description="The file's metadata.")

    model_config = ConfigDict(strict=True, json_schema_extra={"examples": [{"metadata": EXAMPLE_METADATA}]})


class EmbedResponse(BaseModel):
    """Answer of ``POST /semantic/embed``."""

    file_id: str = Field(description="The file embedded.")
    success: bool = Field(default=True, description="Always true (failures are HTTP errors).")
    total_indexed: int = Field(description="Files in the index afterwards.")


class EmbedBatchRequest(BaseModel):
    """Body of ``POST /semantic/embed-batch``."""

    items: list[FileMetadata] | None = Field(
        default=None,
        max_length=MAX_BATCH_ITEMS,
        description=f"Files to (re-)embed, at most {MAX_BATCH_ITEMS}; more gives 422, an empty list 400.",
    )

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        EXAMPLE_METADATA,
                        {**EXAMPLE_METADATA, "file_id": "665f1c2ab4e8d93a1c0f7e22", "filter_name": "F090W"},
                    ]
                }
            ]
        },
    )


class EmbedBatchResponse(BaseModel):
    """Answer of ``POST /semantic/embed-batch``."""

    embedded_count: int = Field(description="Items embedded.")
    total_indexed: int = Field(description="Files in the index afterwards.")
    errors: list[str] = Field(description="`<file_id>: no embeddable text` for each item skipped.")


class SearchRequest(BaseModel):
    """Body of ``POST /semantic/search``."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="What to look for, in words.")
    top_k: JsonInt = Field(default=20, ge=1, le=100, description="Most results returned.")
    min_score: float = Field(default=0.3, ge=0.0, le=1.0, description="Smallest cosine similarity returned.")

    model_config = ConfigDict(
        strict=True,
        json_schema_extra={
            "examples": [{"query": "deep NIRCam images of planetary nebulae", "top_k": 10, "min_score": 0.3}]
        },
    )


class SearchResult(BaseModel):
    """One hit of a search."""

    file_id: str = Field(description="The file found.")
    score: float = Field(description="Cosine similarity to the query (0-1).")
    matched_text: str = Field(description="The prose that was embedded for the file.")


class SearchResponse(BaseModel):
    """Answer of ``POST /semantic/search``."""

    results: list[SearchResult] = Field(description="The hits, best first.")
    query: str = Field(description="The query, echoed.")
    embed_time_ms: float = Field(description="Time to embed the query (milliseconds).")
    search_time_ms: float = Field(description="Time to search the index (milliseconds).")
    total_indexed: int = Field(description="Files in the index.")


class IndexStatusResponse(BaseModel):
    """Answer of ``GET /semantic/index-status``."""

    total_indexed: int = Field(description="Files in the index.")
    model_loaded: bool = Field(description="Whether this process has loaded the embedding model.")
    index_file_exists: bool = Field(description="Whether the index is stored on disk.")
    model_name: str = Field(description="Name of the embedding model.")
    embedding_dim: int = Field(description="Length of each vector.")
