"""The N-channel compositor job: headers -> one grid -> one reprojection per file -> colour -> bytes.

:func:`render_composite` runs in an executor worker process. It reads only headers first, computes
one optimal celestial grid for all files of all channels, sizes the working grid to the output
(never much larger than width x height), to ``MAX_COMPOSITE_REPROJECT_PIXELS`` and to a byte
budget (413 when even the smallest grid cannot fit), then reads each file downscaled to about the
grid's pixel scale, reprojects it once (:func:`app.processing.reprojection.reproject_fast`) and
co-adds the files of a channel with coverage weights. Reprojected channels are cached on disk,
shared by all worker processes (:mod:`app.composite.channel_cache`, bounded by entries, bytes and
age) under a key of file identities, read factors and the grid, so re-stretching the same inputs
skips the reprojection on any worker and a full-size export never reuses a preview-resolution grid.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from app.composite.channel_cache import DiskChannelCache
from app.core.exceptions import InvalidFitsError, InvalidRequestError, NoImageDataError, PayloadTooLargeError
from app.processing import avm, compositing, encoding
from app.processing.enhancement import StretchSettings
from app.processing.fits_io import ImageInfo, celestial_wcs, image_info, read_plane
from app.processing.reprojection import Grid, downscale_wcs, footprint_bbox, optimal_celestial_grid, reproject_fast

logger = logging.getLogger("app.composite.compositor")

MIB = 1024 * 1024
#: Memory of a worker process before the job allocates anything (interpreter, numpy, astropy).
BASELINE_BYTES = 200 * MIB
#: Fixed temporary memory of the reprojection (coordinate bands) and of FITS band reads.
FIXED_WORK_BYTES = 96 * MIB
#: Bytes per working-grid pixel, beyond the channel arrays (accumulators, colour stage, flip copy).
GRID_BYTES_PER_PIXEL = 64
#: Bytes per pixel of the output canvas (canvas, resized image, encoder buffers).
OUTPUT_BYTES_PER_PIXEL = 16
#: Bytes per pixel of an input plane held during its reprojection (data, NaN-free copy, weights).
INPUT_BYTES_PER_PIXEL = 13
#: Smallest working grid side the budget may shrink to before answering 413.
MIN_GRID_SIDE = 16


@dataclass(frozen=True)
class ChannelJob:
    """One channel as the job sees it: display name, local files and style."""

    name: str
    paths: tuple[str, ...]
    style: compositing.ChannelStyle


@dataclass(frozen=True)
class CompositeJob:
    """Everything :func:`render_composite` needs (picklable)."""

    channels: tuple[ChannelJob, ...]
    overall: StretchSettings | None
    background_neutralization: bool
    output_format: str
    quality: int
    width: int
    height: int
    max_reproject_pixels: int
    max_input_pixels: int
    memory_budget_bytes: int
    cache_ttl_seconds: float
    cache_max_entries: int
    cache_max_bytes: int
    cache_dir: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass
class CompositeOutput:
    """Encoded image and the response headers that say what happened."""

    content: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Source:
    path: str
    info: ImageInfo
    wcs: WCS

    @property
    def shape(self) -> tuple[int, int]:
        return (self.info.ny, self.info.nx)

    @property
    def pixel_scale_deg(self) -> float:
        from astropy.wcs.utils import proj_plane_pixel_scales

        return float(np.min(np.abs(proj_plane_pixel_scales(self.wcs))))

    def identity(self) -> tuple[str, int, int, int]:
        stat = os.stat(self.path)
        return (self.path, stat.st_mtime_ns, stat.st_size, self.info.hdu_index)


@dataclass(frozen=True)
class GridPlan:
    """The working grid chosen for a job and its memory estimate."""

    grid: Grid
    factor: float
    estimate_bytes: int
    read_factors: tuple[tuple[int, ...], ...]


# --------------------------------------------------------------------------- headers pass


def _usable_sources(channel: ChannelJob) -> list[_Source]:
    sources = []
    for path in channel.paths:
        try:
            info = image_info(path)
        except (NoImageDataError, InvalidFitsError):
            logger.warning("composite_file_skipped", extra={"reason": "no_image", "channel": channel.name})
            continue
        wcs = celestial_wcs(info.header)
        if wcs is None:
            logger.warning("composite_file_skipped", extra={"reason": "no_wcs", "channel": channel.name})
            continue
        sources.append(_Source(path, info, wcs))
    return sources


def read_factor(source: _Source, grid: Grid, max_input_pixels: int) -> int:
    """Integer block-average factor for reading ``source`` onto ``grid`` (never finer than needed)."""
    ratio = grid.pixel_scale_deg / source.pixel_scale_deg
    factor = max(1, math.floor(ratio * 1.0001))
    plane = source.info.ny * source.info.nx
    if plane > max_input_pixels:
        factor = max(factor, math.ceil(math.sqrt(plane / max_input_pixels)))
    return factor


def estimate_bytes(
    grid: Grid, sources: list[list[_Source]], *, width: int, height: int, max_input_pixels: int
) -> tuple[int, tuple[tuple[int, ...], ...]]:
    """Peak memory of a composite job on ``grid``, from headers only; also the read factors."""
    n_channels = len(sources)
    factors = tuple(tuple(read_factor(s, grid, max_input_pixels) for s in channel) for channel in sources)
    largest_input = 0
    for channel, channel_factors in zip(sources, factors, strict=True):
        for source, f in zip(channel, channel_factors, strict=True):
            largest_input = max(largest_input, math.ceil(source.info.ny / f) * math.ceil(source.info.nx / f))
    total = (
        BASELINE_BYTES
        + FIXED_WORK_BYTES
        + grid.n_pixels * (8 * n_channels + GRID_BYTES_PER_PIXEL)
        + largest_input * INPUT_BYTES_PER_PIXEL
        + width * height * OUTPUT_BYTES_PER_PIXEL
    )
    return int(total), factors


def plan_grid(
    grid0: Grid,
    sources: list[list[_Source]],
    *,
    width: int,
    height: int,
    max_reproject_pixels: int,
    max_input_pixels: int,
    memory_budget_bytes: int,
) -> GridPlan:
    """Downscale ``grid0`` to the output size, the pixel budget and the byte budget (413 if impossible)."""
    n_channels = len(sources)
    factor = max(1.0, grid0.nx / width, grid0.ny / height)
    factor = max(factor, math.sqrt(n_channels * grid0.n_pixels / max_reproject_pixels))
    while True:
        grid = grid0.rescaled(factor)
        estimate, factors = estimate_bytes(grid, sources, width=width, height=height, max_input_pixels=max_input_pixels)
        if estimate <= memory_budget_bytes:
            return GridPlan(grid, factor, estimate, factors)
        if max(grid.shape) <= MIN_GRID_SIDE:
            raise PayloadTooLargeError(
                f"Composite needs about {estimate // MIB} MB even at the smallest working grid, "
                f"more than the memory budget of {memory_budget_bytes // MIB} MB"
            )
        factor *= 1.25


# --------------------------------------------------------------------------- cache


def channel_cache(job: CompositeJob) -> DiskChannelCache | None:
    """The on-disk channel cache shared by all worker processes, or ``None`` when the job has none."""
    if job.cache_dir is None:
        return None
    return DiskChannelCache(
        job.cache_dir,
        ttl_seconds=job.cache_ttl_seconds,
        max_entries=job.cache_max_entries,
        max_bytes=job.cache_max_bytes,
    )


# --------------------------------------------------------------------------- reprojection


def reproject_channel(sources: list[_Source], factors: tuple[int, ...], grid: Grid) -> np.ndarray:
    """Read each file downscaled, reproject it once onto ``grid`` and co-add with coverage weights."""
    total: np.ndarray | None = None
    weight: np.ndarray | None = None
    for source, factor in zip(sources, factors, strict=True):
        max_side = math.ceil(max(source.shape) / factor) if factor > 1 else None
        plane = read_plane(source.path, hdu_index=source.info.hdu_index, max_side=max_side)
        wcs = downscale_wcs(source.wcs, plane.factor)
        bbox = footprint_bbox(wcs, plane.data.shape, grid)
        if bbox is None:
            continue
        y0, y1, x0, x1 = bbox
        part = reproject_fast(plane.data, wcs, grid.cutout(y0, y1, x0, x1))
        del plane
        if total is None or weight is None:
            total = np.zeros(grid.shape, dtype=np.float32)
            weight = np.zeros(grid.shape, dtype=np.float32)
        covered = np.isfinite(part)
        total[y0:y1, x0:x1] += np.nan_to_num(part, copy=False, nan=0.0)
        weight[y0:y1, x0:x1] += covered
    if total is None or weight is None:
        return np.full(grid.shape, np.nan, dtype=np.float32)
    return compositing.co_add(total, weight)


# --------------------------------------------------------------------------- the job


def render_composite(job: CompositeJob) -> CompositeOutput:
    """Run a whole composite job (in a worker process) and return the encoded image."""
    started = time.perf_counter()
    sources = []
    for channel in job.channels:
        usable = _usable_sources(channel)
        if not usable:
            raise InvalidRequestError(f"No usable image data for channel {channel.name}")
        sources.append(usable)
    try:
        grid0 = optimal_celestial_grid([(s.wcs, s.shape) for channel in sources for s in channel])
    except ValueError as error:
        logger.info("composite_grid_failed", extra={"error": type(error).__name__})
        raise InvalidRequestError("Could not determine common WCS for the composite inputs") from error
    plan = plan_grid(
        grid0,
        sources,
        width=job.width,
        height=job.height,
        max_reproject_pixels=job.max_reproject_pixels,
        max_input_pixels=job.max_input_pixels,
        memory_budget_bytes=job.memory_budget_bytes,
    )
    grid = plan.grid
    cache = channel_cache(job)
    cache_state = []
    reprojected = []
    for channel_sources, factors in zip(sources, plan.read_factors, strict=True):
        key = (tuple(s.identity() for s in channel_sources), factors, grid.key())
        cached = cache.get(key, grid.shape) if cache is not None else None
        if cached is None:
            data = reproject_channel(channel_sources, factors, grid)
            if cache is not None:
                cache.put(key, data)
            cache_state.append("miss")
        else:
            data = cached
            cache_state.append("hit")
        reprojected.append(data)

    colour_displays, colour_styles, luminance = [], [], None
    auto_notes = []
    for index, (channel, data) in enumerate(zip(job.channels, reprojected, strict=True)):
        display, auto = compositing.channel_display(
            data, channel.style, background_neutralization=job.background_neutralization
        )
        if auto is not None:
            auto_notes.append(f"{index}:{auto.describe()}")  # by index: labels may not be ASCII
        if channel.style.luminance:
            luminance = (display, channel.style)
        else:
            colour_displays.append(display)
            colour_styles.append(channel.style)
    # Auto-exposure only when every channel keeps the default tones: explicit levels, gamma or
    # curves are the user's choice and are respected as given.
    expose = all(compositing.has_default_tones(channel.style) for channel in job.channels)
    covered: np.ndarray | None = None
    if expose:
        covered = np.zeros(grid.shape, dtype=bool)
        for data in reprojected:
            covered |= np.isfinite(data)
    rgb = compositing.mix_channels(colour_displays, colour_styles, luminance=luminance, covered=covered)
    del colour_displays, luminance, covered
    if job.overall is not None:
        rgb = compositing.apply_overall(rgb, job.overall)
    image, (top, left, h, w) = compositing.letterbox(rgb, job.width, job.height)
    del rgb
    xmp = _avm_packet(grid, job, top, left, h, w)
    if job.output_format == "jpeg":
        content = encoding.encode_jpeg(image, quality=job.quality, xmp=xmp)
        media_type = "image/jpeg"
    else:
        content = encoding.encode_png(image, xmp=xmp)
        media_type = "image/png"
    headers = {
        "X-Composite-Output-Shape": f"{job.width}x{job.height}",
        "X-Composite-Content-Shape": f"{w}x{h}",
        "X-Composite-Grid-Shape": f"{grid.nx}x{grid.ny}",
        "X-Composite-Downscaled": "true" if plan.factor > 1.0 else "false",
        "X-Composite-Downscale-Factor": f"{plan.factor:.3f}",
        "X-Composite-Memory-Estimate-MB": str(plan.estimate_bytes // MIB),
        "X-Composite-Cache": ",".join(cache_state),
        "X-Composite-Auto-Exposure": "on" if expose else "off",
        **dict(job.extra_headers),
    }
    if auto_notes:
        headers["X-Composite-Auto-Stretch"] = "; ".join(auto_notes)
    logger.info(
        "composite_done",
        extra={"grid": f"{grid.nx}x{grid.ny}", "seconds": round(time.perf_counter() - started, 3)},
    )
    return CompositeOutput(content=content, media_type=media_type, headers=headers)


def _avm_packet(grid: Grid, job: CompositeJob, top: int, left: int, h: int, w: int) -> str | None:
    """AVM XMP of the letterboxed output: the grid WCS scaled to the content box and shifted by the bars."""
    try:
        wcs = avm.display_wcs(grid.wcs, grid.shape, (h, w))
        bottom = job.height - top - h
        wcs.wcs.crpix = np.asarray(wcs.wcs.crpix) + np.array([left, bottom], dtype=float)
        wcs.wcs.set()
        return avm.avm_xmp(wcs, (job.height, job.width))
    except (ValueError, ArithmeticError) as error:
        logger.info("composite_avm_failed", extra={"error": type(error).__name__})
        return None


def source_path(path: Path | str) -> str:
    """Local paths travel to workers as strings."""
    return str(path)
