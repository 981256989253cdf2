"""Semantic search service: metadata -> prose -> MiniLM vector -> exact cosine index.

Where the work runs, and why. Embedding and search run on a small pool of *threads* of the API
process (a :class:`~app.core.executor.JobExecutor` of kind ``"thread"``, so a full pool still answers
429 with ``Retry-After``), not on the engine's process pool:

- the model (≈90 MB) and the index matrix (150 MB per 100 000 files) are loaded once per engine
  process instead of once per worker process, and ``index-status`` can truthfully say whether the
  model is loaded;
- the hot paths are BLAS matrix products (numpy releases the GIL) and Rust tokenisation, so the
  event loop keeps answering while they run;
- searches do not queue behind long image jobs on the process pool.

Several engine processes may share ``SEMANTIC_DATA_DIR``: the index catches up with the files on
every call (see :mod:`app.semantic.index`). Nothing here imports FastAPI.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from app.core.exceptions import InvalidRequestError, StorageError
from app.core.executor import JobExecutor
from app.semantic import encoder as encoder_module
from app.semantic.encoder import EMBEDDING_DIM, MODEL_NAME
from app.semantic.index import IndexCorruptError, VectorIndex
from app.semantic.schemas import (
    EmbedBatchResponse,
    EmbedResponse,
    FileMetadata,
    IndexStatusResponse,
    SearchResponse,
    SearchResult,
)
from app.semantic.text import metadata_to_text

logger = logging.getLogger("app.semantic")

NO_TEXT_DETAIL = "No embeddable text from metadata"
ITEMS_REQUIRED_DETAIL = "items list is required"
#: Texts encoded per call of the encoder inside a batch (the encoder batches 64 at a time within it).
ENCODE_CHUNK = 1024


def embed_items(index: VectorIndex, items: Sequence[FileMetadata]) -> EmbedBatchResponse:
    """Embed ``items`` and upsert them into ``index`` in one write (all or nothing).

    Items without embeddable text are skipped and reported as ``"<file_id>: no embeddable text"``.
    If the encoder fails, nothing is written, ``embedded_count`` is 0 and the error says
    ``"Encoding failed: <error type>"``.
    """
    errors: list[str] = []
    ids: list[str] = []
    texts: list[str] = []
    for item in items:
        text = metadata_to_text(item)
        if text:
            ids.append(item.file_id)
            texts.append(text)
        else:
            errors.append(f"{item.file_id}: no embeddable text")
    if not ids:
        return EmbedBatchResponse(embedded_count=0, total_indexed=_count(index), errors=errors)
    try:
        encoder = encoder_module.get_encoder()
        chunks = [encoder.encode(texts[i : i + ENCODE_CHUNK]) for i in range(0, len(texts), ENCODE_CHUNK)]
    except Exception as error:  # the text of an internal error never reaches the client
        logger.exception("semantic_encoding_failed", extra={"items": len(ids)})
        errors.append(f"Encoding failed: {type(error).__name__}")
        return EmbedBatchResponse(embedded_count=0, total_indexed=_count(index), errors=errors)
    total = _upsert(index, ids, texts, np.concatenate(chunks))
    return EmbedBatchResponse(embedded_count=len(ids), total_indexed=total, errors=errors)


def embed_one(index: VectorIndex, item: FileMetadata) -> EmbedResponse:
    """Embed one file (E17); :class:`InvalidRequestError` when its metadata has no text."""
    text = metadata_to_text(item)
    if not text:
        raise InvalidRequestError(NO_TEXT_DETAIL)
    vector = encoder_module.get_encoder().encode([text])
    total = _upsert(index, [item.file_id], [text], vector)
    return EmbedResponse(file_id=item.file_id, success=True, total_indexed=total)


def search_index(index: VectorIndex, query: str, *, top_k: int, min_score: float) -> SearchResponse:
    """Embed ``query`` and return the best matches (E19); an empty index answers at once with zero times."""
    total = _count(index)
    if total == 0:
        return SearchResponse(results=[], query=query, embed_time_ms=0.0, search_time_ms=0.0, total_indexed=0)
    encoder = encoder_module.get_encoder()  # loading the model is not part of embed_time_ms
    started = time.perf_counter()
    vector = encoder.encode([query])[0]
    embedded = time.perf_counter()
    with _index_errors():
        hits = index.search(vector, top_k=top_k, min_score=min_score)
        total = index.count()
    searched = time.perf_counter()
    return SearchResponse(
        results=[SearchResult(file_id=h.file_id, score=round(h.score, 6), matched_text=h.text) for h in hits],
        query=query,
        embed_time_ms=round((embedded - started) * 1000.0, 3),
        search_time_ms=round((searched - embedded) * 1000.0, 3),
        total_indexed=total,
    )


def index_status(index: VectorIndex) -> IndexStatusResponse:
    """State of the index and of the model in this process (E20); never loads the model."""
    return IndexStatusResponse(
        total_indexed=_count(index),
        model_loaded=encoder_module.encoder_loaded(),
        index_file_exists=index.exists(),
        model_name=MODEL_NAME,
        embedding_dim=EMBEDDING_DIM,
    )


@contextmanager
def _index_errors() -> Iterator[None]:
    """Turn an unreadable or unwritable index into a 503 with a fixed message (details go to the log)."""
    try:
        yield
    except IndexCorruptError as error:
        logger.error("semantic_index_corrupt", extra={"error": type(error).__name__})
        raise StorageError("Semantic index is unreadable") from error
    except OSError as error:
        logger.error("semantic_index_io_failed", extra={"error": type(error).__name__})
        raise StorageError("Semantic index is not accessible") from error


def _count(index: VectorIndex) -> int:
    with _index_errors():
        return index.count()


def _upsert(index: VectorIndex, ids: list[str], texts: list[str], vectors: np.ndarray) -> int:
    with _index_errors():
        return index.upsert(ids, texts, vectors)


class SemanticService:
    """The semantic endpoints' work, run on a small thread pool with an admission gate.

    Parameters
    ----------
    data_dir
        ``SEMANTIC_DATA_DIR``: where the index lives.
    workers
        Threads running embeds and searches.
    queue_size
        Calls allowed to wait for a thread before new ones get 429.
    """

    def __init__(self, data_dir: Path, *, workers: int = 2, queue_size: int = 32, retry_after: int = 5) -> None:
        self.index = VectorIndex(data_dir, dim=EMBEDDING_DIM)
        self.executor = JobExecutor(workers=workers, queue_size=queue_size, kind="thread", retry_after=retry_after)

    async def embed(self, item: FileMetadata) -> EmbedResponse:
        """E17: embed one file."""
        return await self.executor.run(embed_one, self.index, item)

    async def embed_batch(self, items: list[FileMetadata] | None) -> EmbedBatchResponse:
        """E18: embed many files; 400 for a missing or empty list."""
        if not items:
            raise InvalidRequestError(ITEMS_REQUIRED_DETAIL)
        return await self.executor.run(embed_items, self.index, items)

    async def search(self, query: str, *, top_k: int, min_score: float) -> SearchResponse:
        """E19: the files whose metadata best matches ``query``."""
        return await self.executor.run(search_index, self.index, query, top_k=top_k, min_score=min_score)

    async def status(self) -> IndexStatusResponse:
        """E20: index size and model state."""
        return await self.executor.run(index_status, self.index)

    def shutdown(self) -> None:
        """Stop the thread pool."""
        self.executor.shutdown()
