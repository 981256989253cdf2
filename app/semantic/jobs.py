"""Semantic job entry points: metadata -> prose -> MiniLM vector -> exact cosine index.

They run on the semantic service's thread pool (see :mod:`app.semantic.service` for why threads,
not the engine's process pool). An unreadable or unwritable index becomes a 503 with a fixed
message; the details go to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from app.core.exceptions import InvalidRequestError, StorageError
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
#: Texts encoded per call of the encoder inside a batch (the encoder batches 64 at a time within it).
ENCODE_CHUNK = 64  # about 2 s of encoding on one core: how long a batch outlives a client that left


class BatchStopped(Exception):  # noqa: N818 - a signal, not an error
    """A batch whose caller stopped waiting; nothing was written."""


def embed_items(
    index: VectorIndex, items: Sequence[FileMetadata], stopped: Callable[[], bool] = lambda: False
) -> EmbedBatchResponse:
    """Embed ``items`` and upsert them into ``index`` in one write (all or nothing).

    ``stopped`` is asked between chunks: when it says so (the client left), the batch ends without
    writing anything (:class:`BatchStopped`).

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
        chunks = []
        for start in range(0, len(texts), ENCODE_CHUNK):
            if stopped():
                logger.info("semantic_batch_stopped", extra={"items": len(ids), "encoded": start})
                raise BatchStopped()
            chunks.append(encoder.encode(texts[start : start + ENCODE_CHUNK]))
    except BatchStopped:
        raise
    except Exception as error:  # the text of an internal error never reaches the client
        logger.exception("semantic_encoding_failed", extra={"items": len(ids)})
        errors.append(f"Encoding failed: {type(error).__name__}")
        return EmbedBatchResponse(embedded_count=0, total_indexed=_count(index), errors=errors)
    total = _upsert(index, ids, texts, np.concatenate(chunks))
    return EmbedBatchResponse(embedded_count=len(ids), total_indexed=total, errors=errors)


def embed_one(index: VectorIndex, item: FileMetadata) -> EmbedResponse:
    """Embed one file (``POST /semantic/embed``); :class:`InvalidRequestError` when its metadata has no text."""
    text = metadata_to_text(item)
    if not text:
        raise InvalidRequestError(NO_TEXT_DETAIL)
    vector = encoder_module.get_encoder().encode([text])
    total = _upsert(index, [item.file_id], [text], vector)
    return EmbedResponse(file_id=item.file_id, success=True, total_indexed=total)


def search_index(index: VectorIndex, query: str, *, top_k: int, min_score: float) -> SearchResponse:
    """Embed ``query`` and return the best matches ; an empty index answers at once with zero times."""
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
    """State of the index and of the model in this process (``GET /semantic/index-status``); never loads the model."""
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
