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
every call (see :mod:`app.semantic.index`). The work itself is in :mod:`app.semantic.jobs`.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from app.core.exceptions import InvalidRequestError
from app.core.executor import JobExecutor
from app.semantic import jobs
from app.semantic.encoder import EMBEDDING_DIM
from app.semantic.index import VectorIndex
from app.semantic.schemas import (
    EmbedBatchResponse,
    EmbedResponse,
    FileMetadata,
    IndexStatusResponse,
    SearchResponse,
)

ITEMS_REQUIRED_DETAIL = "items list is required"


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
        """``POST /semantic/embed``: embed one file."""
        return await self.executor.run(jobs.embed_one, self.index, item)

    async def embed_batch(self, items: list[FileMetadata] | None) -> EmbedBatchResponse:
        """``POST /semantic/embed-batch``: embed many files; 400 for a missing or empty list."""
        if not items:
            raise InvalidRequestError(ITEMS_REQUIRED_DETAIL)
        stop = threading.Event()
        try:
            return await self.executor.run(jobs.embed_items, self.index, items, stop.is_set)
        except asyncio.CancelledError:  # the client left: the thread stops at its next chunk
            stop.set()
            raise

    async def search(self, query: str, *, top_k: int, min_score: float) -> SearchResponse:
        """``POST /semantic/search``: the files whose metadata best matches ``query``."""
        return await self.executor.run(jobs.search_index, self.index, query, top_k=top_k, min_score=min_score)

    async def status(self) -> IndexStatusResponse:
        """``GET /semantic/index-status``: index size and model state."""
        return await self.executor.run(jobs.index_status, self.index)

    def shutdown(self) -> None:
        """Stop the thread pool."""
        self.executor.shutdown()
