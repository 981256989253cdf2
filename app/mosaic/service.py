"""Mosaic service: cheap validation, then the job on the executor with the storage keys.

The job checks file sizes and reads the inputs where it runs. A grid larger than one job's memory
budget is built by blocks: the first job returns the plan, every block is built as its own job (on
the Dask cluster, or the local pool) and stored under the request's scratch prefix, and a last job
assembles them. A FITS mosaic can be large, so the worker writes it to storage and the route
streams it from there and deletes it; the scratch prefix is emptied whatever happens.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from app.core.exceptions import InvalidRequestError
from app.core.executor import JobExecutor, JobSession
from app.core.settings import Settings
from app.mosaic.jobs import (
    MosaicJob,
    MosaicOutput,
    MosaicPlan,
    assemble_mosaic,
    build_mosaic,
    compute_footprints,
    mosaic_block,
)
from app.mosaic.schemas import MOSAIC_CMAPS, FootprintRequest, FootprintResponse, MosaicRequest
from app.processing import colormaps
from app.schemas import FALLBACK_STRETCH, core_stretch, resolve_stretch
from app.storage.provider import StorageProvider

STREAM_CHUNK_BYTES = 1024 * 1024
#: Storage prefix of job outputs that live only until they are streamed.
SCRATCH_PREFIX = ".scratch/mosaic"


def validate_request(request: MosaicRequest) -> None:
    """400 for a bad colormap, width/height with FITS, or inverted levels; reads no file."""
    if request.cmap not in MOSAIC_CMAPS:
        raise InvalidRequestError(f"Invalid cmap '{request.cmap}'. Allowed: {', '.join(MOSAIC_CMAPS)}")
    colormaps.canonical_name(request.cmap)
    if request.output_format == "fits" and (request.width is not None or request.height is not None):
        raise InvalidRequestError("Width/height resizing is not supported for FITS output")
    first = request.files[0]
    if not first.black_point < first.white_point:
        raise InvalidRequestError("black_point must be less than white_point")


@dataclass
class MosaicResult:
    """What the route sends: encoded bytes, or a stream of the FITS file with its media type and headers."""

    media_type: str
    headers: dict[str, str]
    content: bytes | None = None
    stream: Iterator[bytes] | None = None


def scratch_prefix() -> str:
    """Return a fresh storage prefix for one job's large outputs (streamed to the client, then deleted)."""
    return f"{SCRATCH_PREFIX}/{uuid.uuid4().hex}"


#: Reports a job's progress: ``progress(stage, done, total)`` (blocks while building by blocks).
Progress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    """Report nothing (the synchronous endpoint)."""


def build_job(request: MosaicRequest, settings: Settings, *, output_key: str | None = None) -> MosaicJob:
    """Return the job description of ``request`` (FITS output to ``output_key``, or a fresh scratch key)."""
    first = request.files[0]
    stretch, _ = resolve_stretch(first.stretch, on_unknown="fallback")
    prefix = scratch_prefix()
    if request.output_format == "fits" and output_key is None:
        output_key = f"{prefix}.fits"
    return MosaicJob(
        keys=tuple(item.file_path for item in request.files),
        hdus=tuple(item.hdu_choice() for item in request.files),
        output_format=request.output_format,
        quality=request.quality,
        width=request.width,
        height=request.height,
        combine_method=request.combine_method,
        cmap=request.cmap,
        style=core_stretch(first, stretch),
        max_output_pixels=settings.max_mosaic_output_pixels,
        max_file_bytes=settings.max_fits_file_size_bytes,
        memory_budget_bytes=settings.engine_job_memory_mb * 1024 * 1024,
        output_key=output_key if request.output_format == "fits" else None,
        scratch_prefix=prefix,
        match_background=request.match_background,
        threads=settings.engine_job_threads,
    )


async def run_mosaic(
    session: JobSession, storage: StorageProvider, request: MosaicRequest, job: MosaicJob, progress: Progress
) -> MosaicOutput:
    """Build the mosaic of ``job`` in one pass or by blocks, reporting each stage to ``progress``."""
    progress("planning", 0, 0)
    built = await session.run(build_mosaic, job)
    output = built if isinstance(built, MosaicOutput) else await _by_blocks(session, storage, job, built, progress)
    if resolve_stretch(request.files[0].stretch, on_unknown="fallback")[1] and output.fits_key is None:
        output.headers["X-Mosaic-Stretch-Fallback"] = FALLBACK_STRETCH
    return output


async def generate_mosaic(
    request: MosaicRequest, *, storage: StorageProvider, executor: JobExecutor, settings: Settings
) -> MosaicResult:
    """Validate without reading a file, build the mosaic in a worker, and stream a FITS result from storage."""
    validate_request(request)
    job = build_job(request, settings)
    async with executor.admitted() as session:
        output = await run_mosaic(session, storage, request, job, _no_progress)
    if output.fits_key is not None:
        path = await storage.resolve(output.fits_key)
        return MosaicResult(output.media_type, output.headers, stream=stream_and_delete(storage, output.fits_key, path))
    return MosaicResult(output.media_type, output.headers, content=output.content)


async def _by_blocks(
    session: JobSession, storage: StorageProvider, job: MosaicJob, plan: MosaicPlan, progress: Progress
) -> MosaicOutput:
    """Build every block of ``plan`` (on the cluster, or the local pool) and assemble them; scratch is removed."""
    total = len(plan.blocks)
    progress("blocks", 0, total)
    try:
        keys = await session.map(
            mosaic_block,
            [(job, plan, index) for index in range(total)],
            on_done=lambda done: progress("blocks", done, total),
        )
        progress("assembling", total, total)
        return await session.run(assemble_mosaic, job, plan, tuple(keys))
    finally:
        await anyio.to_thread.run_sync(_delete_prefix, storage, job.scratch_prefix)


def _delete_prefix(storage: StorageProvider, prefix: str | None) -> None:
    """Delete every key under ``prefix`` (the blocks of a job, whatever happened to it)."""
    if prefix is None:
        return
    for key in storage.list_keys(prefix):
        storage.delete(key)


def stream_and_delete(
    storage: StorageProvider, key: str, path: Path, chunk_bytes: int = STREAM_CHUNK_BYTES
) -> Iterator[bytes]:
    """Yield the bytes of ``key`` (read from its local file ``path``) in chunks, then delete the key.

    The key is deleted also when the client goes away mid-stream.
    """
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk
    finally:
        storage.delete(key)


async def footprints(request: FootprintRequest, *, executor: JobExecutor) -> FootprintResponse:
    """Footprints of every file from headers only (no size limit: pixels are never read)."""
    result = await executor.run(compute_footprints, tuple(request.file_paths))
    return FootprintResponse.model_validate(result)
