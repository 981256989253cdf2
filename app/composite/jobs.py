"""The N-channel composite job: headers -> one grid -> one reprojection per file -> colour -> bytes.

:func:`render_composite` runs in an executor worker in four named steps:

1. :func:`plan` reads only headers, computes one optimal celestial grid for all files of all
   channels and sizes the working grid to the output, to ``MAX_COMPOSITE_REPROJECT_PIXELS`` and to
   a byte budget (:mod:`app.composite.planning`; 413 when even the smallest grid cannot fit);
2. :func:`reproject_or_cache` reads each file downscaled to about the grid's pixel scale,
   reprojects it once (:func:`app.processing.reprojection.reproject_fast`) and co-adds the files of
   a channel with coverage weights, or takes the channel from the on-disk cache shared by all
   workers (:mod:`app.composite.channel_cache`, keyed by file identities, read factors and grid, so
   re-stretching the same inputs skips the reprojection and a full-size export never reuses a
   preview-resolution grid);
3. :func:`colour` stretches, colours, blends and letterboxes the channels;
4. :func:`encode` writes PNG or JPEG with AVM metadata and the ``X-Composite-*`` headers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from app.composite.channel_cache import DiskChannelCache
from app.composite.planning import MIB, GridPlan, plan_grid
from app.core.exceptions import InvalidRequestError, UnprocessableError
from app.processing import avm, compositing, encoding
from app.processing.enhancement import StretchSettings
from app.processing.errors import InvalidFits, NoImageData, UnsupportedEncoding
from app.processing.fits_io import HduChoice, read_plane
from app.processing.reprojection import Grid, downscale_wcs, footprint_bbox, optimal_celestial_grid, reproject_fast
from app.processing.sources import ImageSource, NoCelestialWcs, load_source, max_side_for
from app.worker.context import local_file
from app.worker.errors import job_entry

logger = logging.getLogger("app.composite.jobs")

#: Why an input file is left out of its channel, by the core error that says so.
SKIP_REASONS: dict[type[Exception], str] = {
    NoImageData: "no_image",
    InvalidFits: "no_image",
    UnsupportedEncoding: "no_image",
    NoCelestialWcs: "no_wcs",
}


@dataclass(frozen=True)
class ChannelJob:
    """One channel as the job sees it: display name, storage keys of its files, style and image HDU."""

    name: str
    keys: tuple[str, ...]
    style: compositing.ChannelStyle
    hdu: HduChoice = field(default_factory=HduChoice)
    """The image HDU read from every file of the channel (the default one when nothing was chosen)."""


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
    threads: int = 1
    """Threads for the per-channel work (``ENGINE_JOB_THREADS``), as many as the memory budget allows."""


@dataclass
class CompositeOutput:
    """Encoded image and the response headers that say what happened."""

    content: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompositePlan:
    """The usable sources of each channel and the working grid chosen for them."""

    sources: list[list[ImageSource]]
    grid_plan: GridPlan

    @property
    def grid(self) -> Grid:
        """Return the working grid."""
        return self.grid_plan.grid


@dataclass
class Coloured:
    """The letterboxed image and what the colour step decided."""

    image: np.ndarray
    box: tuple[int, int, int, int]
    """``(top, left, height, width)`` of the content inside the canvas."""
    exposed: bool
    auto_notes: list[str]


# --------------------------------------------------------------------------- 1. plan


def _usable_sources(channel: ChannelJob) -> list[ImageSource]:
    """Return the files of ``channel`` that have image data and a celestial WCS (the others are logged).

    Raises
    ------
    InvalidRequestError
        No file of the channel is usable; the message says why (no celestial WCS, or no image data).
    """
    sources = []
    reasons: set[str] = set()
    for key in channel.keys:
        file = local_file(key)  # a bad key is the client's error: 403, 404 or 400
        try:
            sources.append(load_source(file.path, channel.name, version=file.version, choice=channel.hdu))
        except (NoImageData, InvalidFits, NoCelestialWcs) as error:
            if isinstance(error, NoImageData) and not channel.hdu.is_default:
                raise  # the extension the client chose holds no image: say so, do not skip the file
            reason = SKIP_REASONS[type(error)]
            reasons.add(reason)
            logger.warning("composite_file_skipped", extra={"reason": reason, "channel": channel.name})
    if not sources:
        if reasons == {"no_wcs"}:
            raise InvalidRequestError(
                f"No celestial WCS (RA/Dec or other sky coordinates) in the files of channel {channel.name}: "
                "a composite aligns its channels on the sky"
            )
        raise InvalidRequestError(f"No usable image data for channel {channel.name}")
    return sources


def _channels_apart(job: CompositeJob, sources: list[list[ImageSource]], grid: Grid) -> list[tuple[str, str]]:
    """Return the pairs of channels whose files cover no common area of ``grid`` (bounding boxes, from headers)."""
    boxes = [[footprint_bbox(s.wcs, s.shape, grid, pad=0) for s in channel] for channel in sources]
    names = [channel.name for channel in job.channels]

    def overlap(a: list[tuple[int, int, int, int] | None], b: list[tuple[int, int, int, int] | None]) -> bool:
        return any(
            p is not None and q is not None and max(p[0], q[0]) < min(p[1], q[1]) and max(p[2], q[2]) < min(p[3], q[3])
            for p in a
            for q in b
        )

    return [(names[i], names[j]) for i, j in combinations(range(len(boxes)), 2) if not overlap(boxes[i], boxes[j])]


def plan(job: CompositeJob) -> CompositePlan:
    """Read the headers, find one grid for every channel and size it to the output and the budgets.

    Raises
    ------
    UnprocessableError
        Two channels do not overlap on the sky (a composite of them would be black where colours meet).
    """
    sources = [_usable_sources(channel) for channel in job.channels]
    try:
        grid0 = optimal_celestial_grid([(s.wcs, s.shape) for channel in sources for s in channel])
    except ValueError as error:
        logger.info("composite_grid_failed", extra={"error": type(error).__name__})
        raise InvalidRequestError("Could not determine common WCS for the composite inputs") from error
    apart = _channels_apart(job, sources, grid0)
    if apart:
        pairs = "; ".join(f"{a} and {b}" for a, b in apart)
        raise UnprocessableError(f"Channels do not overlap on the sky: {pairs}")
    grid_plan = plan_grid(
        grid0,
        sources,
        width=job.width,
        height=job.height,
        max_reproject_pixels=job.max_reproject_pixels,
        max_input_pixels=job.max_input_pixels,
        memory_budget_bytes=job.memory_budget_bytes,
        threads=job.threads,
    )
    return CompositePlan(sources, grid_plan)


# --------------------------------------------------------------------------- 2. reproject or cache


def channel_cache(job: CompositeJob) -> DiskChannelCache | None:
    """Return the on-disk channel cache shared by all worker processes, or ``None`` when the job has none."""
    if job.cache_dir is None:
        return None
    return DiskChannelCache(
        job.cache_dir,
        ttl_seconds=job.cache_ttl_seconds,
        max_entries=job.cache_max_entries,
        max_bytes=job.cache_max_bytes,
    )


def reproject_channel(sources: list[ImageSource], factors: tuple[int, ...], grid: Grid, threads: int = 1) -> np.ndarray:
    """Read each file downscaled, reproject it once onto ``grid`` and co-add with coverage weights.

    A channel of one file is reprojected straight into the channel array. Reads and reprojection
    work on row bands, ``threads`` of them at once.
    """
    if len(sources) == 1:
        channel = np.empty(grid.shape, dtype=np.float32)
        if _reproject_file(sources[0], factors[0], grid, threads, into=channel) is None:
            channel.fill(np.nan)
        return channel
    total: np.ndarray | None = None
    weight: np.ndarray | None = None
    for source, factor in zip(sources, factors, strict=True):
        reprojected = _reproject_file(source, factor, grid, threads)
        if reprojected is None:
            continue
        (y0, y1, x0, x1), part = reprojected
        if total is None or weight is None:
            total = np.zeros(grid.shape, dtype=np.float32)
            weight = np.zeros(grid.shape, dtype=np.float32)
        covered = np.isfinite(part)
        np.add(total[y0:y1, x0:x1], part, out=total[y0:y1, x0:x1], where=covered)
        weight[y0:y1, x0:x1] += covered
    if total is None or weight is None:
        return np.full(grid.shape, np.nan, dtype=np.float32)
    return compositing.co_add(total, weight)


def _reproject_file(
    source: ImageSource, factor: int, grid: Grid, threads: int, *, into: np.ndarray | None = None
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Return the box of ``grid`` the file covers and the file reprojected onto it (None when it misses the grid).

    With ``into`` (an array of ``grid.shape``), the file is reprojected straight into its box and
    the rest of ``into`` is set to NaN.
    """
    plane = read_plane(source.path, info=source.info, max_side=max_side_for(source, factor), threads=threads)
    wcs = downscale_wcs(source.wcs, plane.factor)
    bbox = footprint_bbox(wcs, plane.data.shape, grid)
    if bbox is None:
        return None
    y0, y1, x0, x1 = bbox
    target = None
    if into is not None:
        if (y1 - y0, x1 - x0) != grid.shape:
            into.fill(np.nan)
        target = into[y0:y1, x0:x1]
    return bbox, reproject_fast(plane.data, wcs, grid.cutout(y0, y1, x0, x1), threads=threads, out=target)


def reproject_or_cache(job: CompositeJob, composite: CompositePlan) -> tuple[list[np.ndarray], list[str]]:
    """Return each channel on the working grid, and ``hit``/``miss`` per channel for the cache header.

    Channels are done one after the other, each on ``composite.grid_plan.threads`` threads.
    """
    grid = composite.grid
    cache = channel_cache(job)
    states: list[str] = []
    channels: list[np.ndarray] = []
    for sources, factors in zip(composite.sources, composite.grid_plan.read_factors, strict=True):
        key = (tuple(s.identity() for s in sources), factors, grid.key())
        cached = cache.get(key, grid.shape) if cache is not None else None
        if cached is None:
            cached = reproject_channel(sources, factors, grid, composite.grid_plan.threads)
            if cache is not None:
                cache.put(key, cached)
            states.append("miss")
        else:
            states.append("hit")
        channels.append(cached)
    return channels, states


# --------------------------------------------------------------------------- 3. colour


def colour(job: CompositeJob, channels: list[np.ndarray]) -> Coloured:
    """Stretch and colour every channel, neutralise the sky colour, blend, apply ``overall``, letterbox."""
    displays, styles, luminance, masks = [], [], None, []
    auto_notes = []
    threads = job.threads
    finite = [np.isfinite(data) for data in channels]
    for index, (channel, data, mask) in enumerate(zip(job.channels, channels, finite, strict=True)):
        display, auto = compositing.channel_display(data, channel.style, threads=threads)
        if auto is not None:
            auto_notes.append(f"{index}:{auto.describe()}")  # by index: labels may not be ASCII
        if channel.style.luminance:
            luminance = (display, channel.style)
        else:
            displays.append(display)
            styles.append(channel.style)
            masks.append(mask)
    if job.background_neutralization:
        compositing.neutralize_sky(displays, masks, threads=threads)
    del masks
    # Auto-exposure only when every channel keeps the default tones: explicit levels, gamma or
    # curves are the user's choice and are respected as given.
    exposed = all(compositing.has_default_tones(channel.style) for channel in job.channels)
    covered: np.ndarray | None = None
    if exposed:
        covered = np.logical_or.reduce(finite) if len(finite) > 1 else finite[0]
    del finite
    planes = compositing.mix_linear(displays, styles, luminance=luminance, threads=threads)
    del displays, luminance
    if covered is not None:
        compositing.auto_expose(planes, covered, threads=threads)
    del covered
    if job.overall is None:
        pixels = compositing.srgb8(planes, threads=threads)
    else:  # the overall stretch works on sRGB-encoded values
        encoded = compositing.apply_overall(compositing.srgb_encode(planes), job.overall)
        pixels = np.rint(np.clip(encoded, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    del planes
    image, box = compositing.letterbox_planes(pixels, job.width, job.height)
    return Coloured(image, box, exposed, auto_notes)


# --------------------------------------------------------------------------- 4. encode


def _avm_packet(grid: Grid, job: CompositeJob, box: tuple[int, int, int, int]) -> str | None:
    """Return the AVM XMP of the letterboxed output: the grid WCS scaled to the content and shifted by the bars."""
    top, left, h, w = box
    try:
        bottom = job.height - top - h
        wcs = avm.shifted(avm.display_wcs(grid.wcs, grid.shape, (h, w)), float(left), float(bottom))
        return avm.avm_xmp(wcs, (job.height, job.width))
    except (ValueError, ArithmeticError) as error:
        logger.info("composite_avm_failed", extra={"error": type(error).__name__})
        return None


def encode(job: CompositeJob, composite: CompositePlan, coloured: Coloured, cache_states: list[str]) -> CompositeOutput:
    """Encode the image with its AVM packet and say in headers what the job did."""
    grid, grid_plan = composite.grid, composite.grid_plan
    xmp = _avm_packet(grid, job, coloured.box)
    content = encoding.encode_image(
        coloured.image, job.output_format, quality=job.quality, xmp=xmp, threads=composite.grid_plan.threads
    )
    media_type = encoding.MEDIA_TYPES[job.output_format]
    _, _, h, w = coloured.box
    headers = {
        "X-Composite-Output-Shape": f"{job.width}x{job.height}",
        "X-Composite-Content-Shape": f"{w}x{h}",
        "X-Composite-Grid-Shape": f"{grid.nx}x{grid.ny}",
        "X-Composite-Downscaled": "true" if grid_plan.factor > 1.0 else "false",
        "X-Composite-Downscale-Factor": f"{grid_plan.factor:.3f}",
        "X-Composite-Memory-Estimate-MB": str(grid_plan.estimate_bytes // MIB),
        "X-Composite-Cache": ",".join(cache_states),
        "X-Composite-Auto-Exposure": "on" if coloured.exposed else "off",
        **dict(job.extra_headers),
    }
    if coloured.auto_notes:
        headers["X-Composite-Auto-Stretch"] = "; ".join(coloured.auto_notes)
    return CompositeOutput(content=content, media_type=media_type, headers=headers)


# --------------------------------------------------------------------------- the job


@job_entry
def render_composite(job: CompositeJob) -> CompositeOutput:
    """Run a whole composite job (in a worker process) and return the encoded image."""
    started = time.perf_counter()
    composite = plan(job)
    channels, cache_states = reproject_or_cache(job, composite)
    coloured = colour(job, channels)
    del channels
    output = encode(job, composite, coloured, cache_states)
    logger.info(
        "composite_done",
        extra={
            "grid": f"{composite.grid.nx}x{composite.grid.ny}",
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return output
