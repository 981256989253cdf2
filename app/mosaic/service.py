"""Mosaic service: cheap validation, key resolution and size checks, then the job on the executor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread

from app.core.exceptions import FitsTooLargeError, InvalidRequestError
from app.core.executor import JobExecutor
from app.core.settings import Settings
from app.mosaic.jobs import MosaicJob, MosaicOutput, build_mosaic, compute_footprints
from app.mosaic.schemas import FootprintRequest, FootprintResponse, MosaicRequest
from app.processing import colormaps
from app.schemas import FALLBACK_STRETCH, core_stretch, resolve_stretch
from app.storage.provider import StorageProvider

#: Colormaps accepted by the mosaic (contract: the preview list).
MOSAIC_CMAPS = ("grayscale", "gray", "inferno", "magma", "viridis", "plasma", "hot", "cool", "rainbow", "jet")
STREAM_CHUNK_BYTES = 1024 * 1024


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


def _size_checked(path: Path, key: str, limit_bytes: int, limit_mb: int) -> str:
    size = path.stat().st_size
    if size > limit_bytes:
        raise FitsTooLargeError(
            f"File too large: {Path(key).name} is {size / (1024 * 1024):.0f} MB, over the limit of {limit_mb} MB"
        )
    return str(path)


async def generate_mosaic(
    request: MosaicRequest, *, storage: StorageProvider, executor: JobExecutor, settings: Settings
) -> MosaicOutput:
    """Validate, resolve and size-check every file, then build the mosaic in a worker."""
    validate_request(request)
    paths = []
    for item in request.files:
        path = await storage.resolve(item.file_path)
        paths.append(
            await anyio.to_thread.run_sync(
                _size_checked, path, item.file_path, settings.max_fits_file_size_bytes, settings.max_fits_file_size_mb
            )
        )
    first = request.files[0]
    stretch, fell_back = resolve_stretch(first.stretch, on_unknown="fallback")
    job = MosaicJob(
        paths=tuple(paths),
        names=tuple(Path(item.file_path).name for item in request.files),
        output_format=request.output_format,
        quality=request.quality,
        width=request.width,
        height=request.height,
        combine_method=request.combine_method,
        cmap=request.cmap,
        style=core_stretch(first, stretch),
        max_output_pixels=settings.max_mosaic_output_pixels,
        match_background=request.match_background,
    )
    output = await executor.run(build_mosaic, job)
    if fell_back and output.fits_path is None:
        output.headers["X-Mosaic-Stretch-Fallback"] = FALLBACK_STRETCH
    return output


def stream_and_delete(path: str, chunk_bytes: int = STREAM_CHUNK_BYTES) -> Iterator[bytes]:
    """Yield a file's bytes in chunks and delete it afterwards (also when the client goes away)."""
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk
    finally:
        Path(path).unlink(missing_ok=True)


async def footprints(
    request: FootprintRequest, *, storage: StorageProvider, executor: JobExecutor
) -> FootprintResponse:
    """Footprints of every file from headers only (no size limit: pixels are never read)."""
    paths = [str(await storage.resolve(key)) for key in request.file_paths]
    result = await executor.run(compute_footprints, tuple(paths), tuple(request.file_paths))
    return FootprintResponse.model_validate(result)
