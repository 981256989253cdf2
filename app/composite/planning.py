"""The working grid of a composite, sized from headers before any pixel is read.

:func:`plan_grid` shrinks the optimal grid of all inputs to the output size, to
``MAX_COMPOSITE_REPROJECT_PIXELS`` and to the job's byte budget, estimating the job's peak memory
from the headers (:func:`estimate_bytes`); when even the smallest grid cannot fit, it answers 413.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app.core.exceptions import PayloadTooLargeError
from app.processing.reprojection import Grid
from app.processing.sources import ImageSource, read_factor

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

Channels = list[list[ImageSource]]
ReadFactors = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class GridPlan:
    """The working grid chosen for a job, its downscale factor, memory estimate and read factors."""

    grid: Grid
    factor: float
    estimate_bytes: int
    read_factors: ReadFactors
    threads: int = 1
    """Threads of the job: row bands read, reprojected and coloured at once (each holds its own bands)."""


def estimate_bytes(
    grid: Grid, sources: Channels, *, width: int, height: int, max_input_pixels: int, threads: int = 1
) -> tuple[int, ReadFactors]:
    """Return the peak memory of a composite job on ``grid``, from headers only, and the read factors.

    With ``threads`` threads, each holds its own read and reprojection bands at once.
    """
    n_channels = len(sources)
    factors = tuple(
        tuple(read_factor(s, grid, max_input_pixels=max_input_pixels) for s in channel) for channel in sources
    )
    largest_input = 0
    for channel, channel_factors in zip(sources, factors, strict=True):
        for source, f in zip(channel, channel_factors, strict=True):
            largest_input = max(largest_input, math.ceil(source.info.ny / f) * math.ceil(source.info.nx / f))
    at_once = max(1, threads)
    total = (
        BASELINE_BYTES
        + at_once * FIXED_WORK_BYTES
        + largest_input * INPUT_BYTES_PER_PIXEL
        + grid.n_pixels * (8 * n_channels + GRID_BYTES_PER_PIXEL)
        + width * height * OUTPUT_BYTES_PER_PIXEL
    )
    return int(total), factors


def plan_grid(
    grid0: Grid,
    sources: Channels,
    *,
    width: int,
    height: int,
    max_reproject_pixels: int,
    max_input_pixels: int,
    memory_budget_bytes: int,
    threads: int = 1,
) -> GridPlan:
    """Downscale ``grid0`` to the output size, the pixel budget and the byte budget (413 if impossible).

    At each grid size the job first tries ``threads`` threads, then one, before the grid is made
    smaller: parallel work never costs resolution.
    """
    n_channels = len(sources)
    factor = max(1.0, grid0.nx / width, grid0.ny / height)
    factor = max(factor, math.sqrt(n_channels * grid0.n_pixels / max_reproject_pixels))
    while True:
        grid = grid0.rescaled(factor)
        for at_once in sorted({max(1, threads), 1}, reverse=True):
            estimate, factors = estimate_bytes(
                grid, sources, width=width, height=height, max_input_pixels=max_input_pixels, threads=at_once
            )
            if estimate <= memory_budget_bytes:
                return GridPlan(grid, factor, estimate, factors, threads=at_once)
        if max(grid.shape) <= MIN_GRID_SIDE:
            raise PayloadTooLargeError(
                f"Composite needs about {estimate // MIB} MB even at the smallest working grid, "
                f"more than the memory budget of {memory_budget_bytes // MIB} MB"
            )
        factor *= 1.25
