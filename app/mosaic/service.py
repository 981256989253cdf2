"""Mosaic service: cheap validation, then the job on the executor with the storage keys.

The job checks file sizes and reads the inputs where it runs. A FITS mosaic can be large, so the
worker writes it to storage under a scratch key and the route streams it from there and deletes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.core.exceptions import InvalidRequestError
from app.core.executor import JobExecutor
from app.core.settings import Settings
from app.mosaic.jobs import MosaicJob, build_mosaic, compute_footprints
from app.mosaic.schemas import FootprintRequest, FootprintResponse, MosaicRequest
from app.processing import colormaps
from app.schemas import FALLBACK_STRETCH, core_stretch, resolve_stretch
from app.storage.provider import StorageProvider

#: Colormaps accepted by the mosaic (contract: the preview list).
MOSAIC_CMAPS = ("grayscale", "gray", "inferno", "magma", "viridis", "plasma", "hot", "cool", "rainbow", "jet")
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


def scratch_key() -> str:
    """Return a fresh storage key for a job's large output (streamed to the client, then deleted)."""
    return f"{SCRATCH_PREFIX}/{uuid.uuid4().hex}.fits"


async def generate_mosaic(
    request: MosaicRequest, *, storage: StorageProvider, executor: JobExecutor, settings: Settings
) -> MosaicResult:
    """Validate without reading a file, build the mosaic in a worker, and stream a FITS result from storage."""
    validate_request(request)
    first = request.files[0]
    stretch, fell_back = resolve_stretch(first.stretch, on_unknown="fallback")
    job = MosaicJob(
        keys=tuple(item.file_path for item in request.files),
        output_format=request.output_format,
        quality=request.quality,
        width=request.width,
        height=request.height,
        combine_method=request.combine_method,
        cmap=request.cmap,
        style=core_stretch(first, stretch),
        max_output_pixels=settings.max_mosaic_output_pixels,
        max_file_bytes=settings.max_fits_file_size_bytes,
        output_key=scratch_key() if request.output_format == "fits" else None,
        match_background=request.match_background,
    )
    output = await executor.run(build_mosaic, job)
    if output.fits_key is not None:
        path = await storage.resolve(output.fits_key)
        return MosaicResult(output.media_type, output.headers, stream=stream_and_delete(storage, output.fits_key, path))
    if fell_back:
        output.headers["X-Mosaic-Stretch-Fallback"] = FALLBACK_STRETCH
    return MosaicResult(output.media_type, output.headers, content=output.content)


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
