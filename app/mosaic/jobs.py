"""The mosaic and footprint job entry points (run in executor workers).

:func:`build_mosaic` reads headers first, computes one optimal celestial grid (downscaled when the
requested width/height are smaller, 413 above ``MAX_MOSAIC_OUTPUT_PIXELS``), then streams the
inputs: each file is read, its exact zeros (detector edges) masked, reprojected onto the part of
the grid it covers (:func:`app.processing.reprojection.reproject_fast`) and handed as a tile to the
co-add (:mod:`app.processing.coadd`), so memory grows with the output grid, not with the number of
inputs. Outputs: a float32 FITS file (NaN where nothing covers, the grid WCS, provenance cards and
a ``SRCMETA`` table, :mod:`app.processing.provenance`) or a PNG/JPEG rendered with the first
file's stretch and the requested colormap.

:func:`compute_footprints` answers from headers only.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from app import __version__
from app.core.exceptions import FitsTooLargeError, InvalidRequestError, PayloadTooLargeError
from app.processing import avm, coadd, colormaps, encoding
from app.processing.enhancement import LimitsMethod, StretchSettings, display_limits
from app.processing.fits_io import HduChoice, ImageInfo, image_info, read_plane, read_window
from app.processing.provenance import mosaic_header
from app.processing.reprojection import (
    Grid,
    downscale_wcs,
    footprint_bbox,
    input_window,
    optimal_celestial_grid,
    reproject_fast,
    window_wcs,
)
from app.processing.sources import ImageSource, icrs_of_pixels, load_source, max_side_for, read_factor
from app.worker.context import local_path, storage
from app.worker.errors import job_entry

logger = logging.getLogger("app.mosaic.jobs")

#: Longer side of the coarse grid on which background offsets are measured.
BACKGROUND_GRID_SIDE = 512
MIB = 1024 * 1024
#: Memory of a worker before a block's work allocates anything (interpreter, numpy, astropy, reproject).
JOB_BASELINE_BYTES = 300 * MIB
#: Bytes per output pixel while a block is built: accumulators, a tile and its weights, the input
#: window and the reprojection's temporaries.
BLOCK_BYTES_PER_PIXEL = 48
#: Bytes per pixel of one band of blocks while the FITS is assembled (the band and its big-endian copy).
ASSEMBLY_BYTES_PER_PIXEL = 12
MIN_BLOCK_SIDE = 256


@dataclass(frozen=True)
class MosaicJob:
    """Everything :func:`build_mosaic` needs (picklable): storage keys and output options."""

    keys: tuple[str, ...]
    output_format: str
    quality: int
    width: int | None
    height: int | None
    combine_method: str
    cmap: str
    style: StretchSettings  # the first file's stretch (already resolved), used for PNG/JPEG output
    max_output_pixels: int
    max_file_bytes: int | None = None
    memory_budget_bytes: int = 3072 * 1024 * 1024
    """Bytes one job may use; a larger output grid is built by blocks."""
    output_key: str | None = None
    """Storage key the FITS output is written to (FITS only)."""
    scratch_prefix: str | None = None
    """Storage prefix of the blocks of a mosaic built by blocks."""
    temp_dir: str | None = None
    match_background: bool = False
    hdus: tuple[HduChoice, ...] = ()
    threads: int = 1
    """Threads for row bands of reads and reprojection (``ENGINE_JOB_THREADS``)."""
    """The image HDU of each key (empty, or one per key; the default HDU where nothing was chosen)."""


@dataclass(frozen=True)
class MosaicBlock:
    """One output block: its rows and columns of the grid, and the inputs that overlap it."""

    bbox: coadd.Bbox
    inputs: tuple[int, ...]


@dataclass(frozen=True)
class MosaicPlan:
    """The output grid cut into blocks, from the headers (small and picklable: it travels to every block)."""

    grid: Grid
    factor: float
    blocks: tuple[MosaicBlock, ...]
    offsets: tuple[float, ...] | None
    weighted: bool

    @property
    def shape_text(self) -> str:
        """Return ``"<nx>x<ny>"`` of the grid."""
        return f"{self.grid.nx}x{self.grid.ny}"

    def headers(self) -> dict[str, str]:
        """Return the ``X-Mosaic-*`` response headers that say what the job did."""
        offsets = ",".join(f"{o:.6g}" for o in self.offsets) if self.offsets is not None else "none"
        return {
            "X-Mosaic-Grid-Shape": self.shape_text,
            "X-Mosaic-Downscaled": "true" if self.factor > 1.0 else "false",
            "X-Mosaic-Downscale-Factor": f"{self.factor:.3f}",
            "X-Mosaic-Background-Offsets": offsets,
            "X-Mosaic-Weighting": "inverse-variance" if self.weighted else "none",
            "X-Mosaic-Blocks": str(len(self.blocks)),
        }


@dataclass
class MosaicOutput:
    """Encoded image bytes, or the storage key of the FITS output (the caller streams and deletes it)."""

    media_type: str
    content: bytes | None = None
    fits_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _checked_path(key: str, max_file_bytes: int | None) -> str:
    """Return the local file of ``key``; 413 when it is larger than ``max_file_bytes``."""
    path = local_path(key)
    size = path.stat().st_size
    if max_file_bytes is not None and size > max_file_bytes:
        raise FitsTooLargeError(
            f"File too large: {Path(key).name} is {size / MIB:.0f} MB, over the limit of {max_file_bytes // MIB} MB"
        )
    return str(path)


def load_sources(
    keys: tuple[str, ...], *, max_file_bytes: int | None = None, hdus: tuple[HduChoice, ...] = ()
) -> list[ImageSource]:
    """Return the inputs from their headers (with their weight extensions); 400 naming a bad file.

    Every key is opened and size-checked first, so a bad key or an oversized file answers before
    any header is parsed. ``hdus`` chooses each key's image HDU (the default HDU when empty).
    """
    paths = [_checked_path(key, max_file_bytes) for key in keys]
    choices = hdus or (HduChoice(),) * len(keys)
    return [
        load_source(path, Path(key).name, with_weights=True, choice=choice)
        for path, key, choice in zip(paths, keys, choices, strict=True)
    ]


def job_sources(job: MosaicJob) -> list[ImageSource]:
    """Return the inputs of ``job`` (:func:`load_sources` with its size limit and HDU choices)."""
    return load_sources(job.keys, max_file_bytes=job.max_file_bytes, hdus=job.hdus)


def plan_grid(sources: list[ImageSource], job: MosaicJob) -> tuple[Grid, float]:
    """Return the optimal grid, downscaled to width/height when asked, and the factor; 413 above the limit."""
    try:
        grid = optimal_celestial_grid([(s.wcs, s.shape) for s in sources])
    except ValueError as error:
        raise InvalidRequestError("Could not determine a common WCS for the mosaic inputs") from error
    factor = 1.0
    if job.output_format != "fits":
        if job.width:
            factor = max(factor, grid.nx / job.width)
        if job.height:
            factor = max(factor, grid.ny / job.height)
        grid = grid.rescaled(factor)
    if grid.n_pixels > job.max_output_pixels:
        raise PayloadTooLargeError(
            f"Mosaic output grid {grid.nx}x{grid.ny} ({grid.n_pixels} pixels) exceeds the limit of "
            f"{job.max_output_pixels} pixels"
        )
    return grid, factor


def uses_weights(sources: list[ImageSource]) -> bool:
    """Say whether the mean is inverse-variance weighted: every input has an ERR, VAR_* or WHT extension."""
    return bool(sources) and all(s.weights is not None for s in sources)


def _read_onto(source: ImageSource, grid: Grid, info: ImageInfo, threads: int = 1) -> tuple[np.ndarray, WCS] | None:
    """Read the part of ``source`` (the HDU of ``info``) that ``grid`` samples, with its WCS; None if disjoint.

    At the grid's own resolution only the window the grid needs is read, so a block of a huge
    mosaic costs a block-sized read; a coarser grid reads the whole plane block-averaged.
    """
    factor = read_factor(source, grid)
    if factor > 1:
        plane = read_plane(source.path, info=info, max_side=max_side_for(source, factor), threads=threads)
        return plane.data, downscale_wcs(source.wcs, plane.factor)
    window = input_window(source.wcs, source.shape, grid)
    if window is None:
        return None
    y0, y1, x0, x1 = window
    data = read_window(source.path, info, rows=slice(y0, y1), cols=slice(x0, x1))
    return data, window_wcs(source.wcs, y0, x0)


def _read_weights(source: ImageSource, grid: Grid, threads: int = 1) -> tuple[np.ndarray, WCS] | None:
    """Read the weights of ``source`` as ``_read_onto`` reads its image: WHT, 1/ERR**2 or 1/sum(VAR_*)."""
    if source.weights is None:
        raise ValueError(f"{source.name} has no weight extension")
    kind, indices = source.weights.kind, source.weights.hdu_indices
    values: np.ndarray | None = None
    wcs: WCS | None = None
    for index in indices:
        read = _read_onto(source, grid, image_info(source.path, hdu_index=index), threads)
        if read is None:
            return None
        part, wcs = read
        values = part if values is None else values + part
    if values is None or wcs is None:
        return None
    if kind != "WHT":
        variance = values * values if kind == "ERR" else values
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.float32(1.0) / variance
    values[~(np.isfinite(values) & (values > 0))] = np.nan
    return values, wcs


def _reprojected_weights(source: ImageSource, grid: Grid, bbox: coadd.Bbox, threads: int = 1) -> np.ndarray:
    """Return the inverse-variance weights of ``source`` reprojected onto ``bbox`` of ``grid``."""
    read = _read_weights(source, grid, threads)
    y0, y1, x0, x1 = bbox
    if read is None:
        return np.full((y1 - y0, x1 - x0), np.nan, dtype=np.float32)
    weights, wcs = read
    return reproject_fast(weights, wcs, grid.cutout(y0, y1, x0, x1), threads=threads)


def reprojected_tiles(
    sources: list[ImageSource],
    grid: Grid,
    *,
    with_weights: bool = False,
    offsets: np.ndarray | None = None,
    threads: int = 1,
) -> Iterator[coadd.Tile]:
    """Yield each source reprojected onto the part of ``grid`` it covers, one at a time.

    ``offsets`` (one per source) are subtracted from the tiles (background matching). Reads and
    reprojection work on row bands, ``threads`` at once.
    """
    for index, source in enumerate(sources):
        read = _read_onto(source, grid, source.info, threads)
        if read is None:
            continue
        data, wcs = read
        data[data == 0] = np.nan  # exact zeros are detector edges / no data
        bbox = footprint_bbox(wcs, data.shape, grid)
        if bbox is None:
            continue
        y0, y1, x0, x1 = bbox
        tile = reproject_fast(data, wcs, grid.cutout(y0, y1, x0, x1), threads=threads)
        del data, read
        if offsets is not None and offsets[index] != 0:
            tile -= np.float32(offsets[index])
        weights = _reprojected_weights(source, grid, bbox, threads) if with_weights else None
        yield bbox, tile, weights


def background_offsets(sources: list[ImageSource], grid: Grid, threads: int = 1) -> np.ndarray:
    """Return the additive offsets that make overlapping sources agree, measured on a coarse copy of ``grid``."""
    coarse = grid.rescaled(max(1.0, max(grid.shape) / BACKGROUND_GRID_SIDE))
    planes: list[np.ndarray] = []
    for source in sources:
        plane = np.full(coarse.shape, np.nan, dtype=np.float32)
        for (y0, y1, x0, x1), tile, _ in reprojected_tiles([source], coarse, threads=threads):
            plane[y0:y1, x0:x1] = tile
        planes.append(plane)
    return coadd.background_offsets(planes)


def combine(
    sources: list[ImageSource],
    grid: Grid,
    method: str,
    *,
    temp_dir: str | None = None,
    offsets: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Co-add the sources on ``grid`` with ``method``; float32 with NaN where nothing covers."""
    weighted = method == "mean" and uses_weights(sources)
    tiles = reprojected_tiles(sources, grid, with_weights=weighted, offsets=offsets, threads=threads)
    return coadd.combine(tiles, grid.shape, method, n_inputs=len(sources), weighted=weighted, temp_dir=temp_dir)


def _output_size(ny: int, nx: int, job: MosaicJob) -> tuple[int, int]:
    """Return ``(width, height)`` of the PNG/JPEG: both given, one given (aspect kept), or the grid's."""
    if job.width and job.height:
        return (job.width, job.height)
    if job.width:
        return (job.width, max(1, round(ny * job.width / nx)))
    if job.height:
        return (max(1, round(nx * job.height / ny)), job.height)
    return (nx, ny)


def _avm_packet(grid: Grid, out_shape: tuple[int, int]) -> str | None:
    """Return the AVM XMP of the picture: the grid's WCS on the output pixels (resized, FITS orientation)."""
    try:
        return avm.avm_xmp(avm.display_wcs(grid.wcs, grid.shape, out_shape), out_shape)
    except (ValueError, ArithmeticError) as error:
        logger.info("mosaic_avm_failed", extra={"error": type(error).__name__})
        return None


def render_image(data: np.ndarray, job: MosaicJob, grid: Grid | None = None) -> tuple[bytes, str]:
    """Return the PNG/JPEG with the first file's stretch and the colormap (uncovered pixels black).

    With the ``grid`` the co-add was built on, the picture carries AVM metadata of its pixel grid.
    """
    covered = np.isfinite(data)
    method: LimitsMethod = "zscale" if job.style.stretch == "zscale" else "percentile"
    limits = display_limits(data, method=method)
    x = job.style.apply(data, limits=limits, out=data)
    rgb = colormaps.apply_colormap(x[::-1], job.cmap)
    rgb[~covered[::-1]] = 0
    image = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    size = _output_size(rgb.shape[0], rgb.shape[1], job)
    if size != image.size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    pixels = np.asarray(image)
    xmp = _avm_packet(grid, (size[1], size[0])) if grid is not None else None
    content = encoding.encode_image(pixels, job.output_format, quality=job.quality, xmp=xmp)
    return content, encoding.MEDIA_TYPES[job.output_format]


def _band_rows(plan: MosaicPlan) -> list[tuple[int, int]]:
    """Return the row ranges of the bands of blocks, top to bottom."""
    return sorted({(b.bbox[0], b.bbox[1]) for b in plan.blocks})


def _write_fits_bands(path: str, header: fits.Header, table: fits.BinTableHDU, bands: Iterator[np.ndarray]) -> None:
    """Write the primary image band by band (rows in order), then the SRCMETA table, to ``path``."""
    stream = fits.StreamingHDU(path, header)
    try:
        for band in bands:
            stream.write(np.ascontiguousarray(band, dtype=">f4"))
    finally:
        stream.close()
    fits.append(path, table.data, table.header)


def write_fits(sources: list[ImageSource], plan: MosaicPlan, job: MosaicJob, bands: Iterator[np.ndarray]) -> str:
    """Write the FITS mosaic with its provenance to storage at ``job.output_key`` and return the key.

    The image arrives as row bands, so no process needs the whole grid in memory.
    """
    if job.output_key is None:
        raise ValueError("a FITS mosaic job needs an output_key")
    offsets = np.asarray(plan.offsets) if plan.offsets is not None else None
    header, table = mosaic_header(
        sources,
        plan.grid,
        job.combine_method,
        creator=f"jwst-engine {__version__}",
        weighted=plan.weighted,
        offsets=offsets,
    )
    fd, path = tempfile.mkstemp(prefix="jwst-mosaic-", suffix=".fits", dir=job.temp_dir)
    os.close(fd)
    try:
        _write_fits_bands(path, header, table, bands)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    storage().move_in(job.output_key, Path(path))
    return job.output_key


def block_side(memory_budget_bytes: int, nx: int) -> int:
    """Return the side of the output blocks that keeps one block's job, and one band of the assembly, in budget."""
    usable = max(memory_budget_bytes - JOB_BASELINE_BYTES, MIN_BLOCK_SIDE * MIN_BLOCK_SIDE * BLOCK_BYTES_PER_PIXEL)
    side = math.isqrt(usable // BLOCK_BYTES_PER_PIXEL)
    band_rows = usable // (ASSEMBLY_BYTES_PER_PIXEL * max(1, nx))
    return max(MIN_BLOCK_SIDE, min(side, band_rows))


def _overlaps(a: coadd.Bbox, b: coadd.Bbox) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def plan_mosaic(job: MosaicJob) -> tuple[list[ImageSource], MosaicPlan]:
    """Read the headers, size the grid (413 above the limit), measure background offsets and cut blocks."""
    sources = job_sources(job)
    grid, factor = plan_grid(sources, job)
    offsets = background_offsets(sources, grid, job.threads) if job.match_background else None
    side = block_side(job.memory_budget_bytes, grid.nx)
    boxes = grid.blocks(side) if grid.n_pixels > side * side else [(0, grid.ny, 0, grid.nx)]
    footprints = [footprint_bbox(s.wcs, s.shape, grid) for s in sources]
    blocks = tuple(
        MosaicBlock(box, tuple(i for i, fp in enumerate(footprints) if fp is not None and _overlaps(fp, box)))
        for box in boxes
    )
    plan = MosaicPlan(
        grid=grid,
        factor=factor,
        blocks=blocks,
        offsets=tuple(float(o) for o in offsets) if offsets is not None else None,
        weighted=job.combine_method == "mean" and uses_weights(sources),
    )
    return sources, plan


def compute_block(sources: list[ImageSource], plan: MosaicPlan, index: int, job: MosaicJob) -> np.ndarray:
    """Co-add the inputs that overlap block ``index`` of the plan; float32, NaN where nothing covers."""
    block = plan.blocks[index]
    grid = plan.grid.cutout(*block.bbox)
    chosen = [sources[i] for i in block.inputs]
    if not chosen:
        return np.full(grid.shape, np.nan, dtype=np.float32)
    offsets = np.array([plan.offsets[i] for i in block.inputs]) if plan.offsets is not None else None
    tiles = reprojected_tiles(chosen, grid, with_weights=plan.weighted, offsets=offsets, threads=job.threads)
    return coadd.combine(
        tiles, grid.shape, job.combine_method, n_inputs=len(chosen), weighted=plan.weighted, temp_dir=job.temp_dir
    )


def _finish(sources: list[ImageSource], plan: MosaicPlan, job: MosaicJob, bands: Iterator[np.ndarray]) -> MosaicOutput:
    """Write the FITS to storage, or render the PNG/JPEG from the bands."""
    if job.output_format == "fits":
        key = write_fits(sources, plan, job, bands)
        return MosaicOutput(media_type="application/fits", fits_key=key, headers=plan.headers())
    data = np.concatenate(list(bands), axis=0) if len(plan.blocks) > 1 else next(bands)
    content, media_type = render_image(data, job, plan.grid)
    return MosaicOutput(media_type=media_type, content=content, headers=plan.headers())


@job_entry
def build_mosaic(job: MosaicJob) -> MosaicOutput | MosaicPlan:
    """Run a mosaic job whose grid fits one block, or return the plan of blocks for the caller to fan out."""
    started = time.perf_counter()
    sources, plan = plan_mosaic(job)
    if len(plan.blocks) > 1:
        logger.info("mosaic_by_blocks", extra={"grid": plan.shape_text, "blocks": len(plan.blocks)})
        return plan
    output = _finish(sources, plan, job, iter([compute_block(sources, plan, 0, job)]))
    logger.info("mosaic_done", extra={"grid": plan.shape_text, "seconds": round(time.perf_counter() - started, 3)})
    return output


@job_entry
def mosaic_block(job: MosaicJob, plan: MosaicPlan, index: int) -> str:
    """Build block ``index`` of a planned mosaic and store it; return its storage key."""
    if job.scratch_prefix is None:
        raise ValueError("a mosaic by blocks needs a scratch_prefix")
    sources = job_sources(job)
    data = compute_block(sources, plan, index, job)
    fd, path = tempfile.mkstemp(prefix="jwst-block-", suffix=".npy", dir=job.temp_dir)
    os.close(fd)
    try:
        np.save(path, data)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    key = f"{job.scratch_prefix}/block-{index:05d}.npy"
    storage().move_in(key, Path(path))
    return key


def _bands_from_blocks(plan: MosaicPlan, keys: tuple[str, ...]) -> Iterator[np.ndarray]:
    """Yield the mosaic's row bands, each put together from its stored blocks (deleted once read)."""
    for y0, y1 in _band_rows(plan):
        band = np.full((y1 - y0, plan.grid.nx), np.nan, dtype=np.float32)
        for block, key in zip(plan.blocks, keys, strict=True):
            by0, by1, bx0, bx1 = block.bbox
            if (by0, by1) == (y0, y1):
                band[:, bx0:bx1] = np.load(local_path(key))
                storage().delete(key)
        yield band


@job_entry
def assemble_mosaic(job: MosaicJob, plan: MosaicPlan, keys: tuple[str, ...]) -> MosaicOutput:
    """Put the stored blocks together into the output (a FITS written band by band, or the picture)."""
    started = time.perf_counter()
    sources = job_sources(job)
    output = _finish(sources, plan, job, _bands_from_blocks(plan, keys))
    logger.info(
        "mosaic_done",
        extra={"grid": plan.shape_text, "blocks": len(plan.blocks), "seconds": round(time.perf_counter() - started, 3)},
    )
    return output


def _corners(source: ImageSource) -> tuple[np.ndarray, np.ndarray]:
    """Return ICRS RA and Dec (degrees) of the four corners and the centre of ``source``; 400 when not on the sky."""
    w, h = source.info.nx, source.info.ny
    xs = np.array([0.0, w - 1.0, w - 1.0, 0.0, w / 2.0])
    ys = np.array([0.0, 0.0, h - 1.0, h - 1.0, h / 2.0])
    return icrs_of_pixels(source, xs, ys)


@job_entry
def compute_footprints(keys: tuple[str, ...]) -> dict[str, object]:
    """Return the ICRS corners and centres of each file from its headers (no pixel is read, no size limit)."""
    footprints = []
    all_ra: list[float] = []
    all_dec: list[float] = []
    paths = [local_path(key) for key in keys]
    for path, key in zip(paths, keys, strict=True):
        ra, dec = _corners(load_source(path, Path(key).name))
        footprints.append(
            {
                "file_path": key,
                "corners_ra": [float(v) for v in ra[:4]],
                "corners_dec": [float(v) for v in dec[:4]],
                "center_ra": float(ra[4]),
                "center_dec": float(dec[4]),
            }
        )
        all_ra.extend(float(v) for v in ra[:4])
        all_dec.extend(float(v) for v in dec[:4])
    # RA bounds unwrapped around the first centre so a field across RA=0 gets a small box, then
    # put back in [0, 360): such a box has min_ra > max_ra
    ref = float(footprints[0]["center_ra"])  # type: ignore[arg-type]
    unwrapped = [ref + ((r - ref + 180.0) % 360.0 - 180.0) for r in all_ra]
    box = {
        "min_ra": min(unwrapped) % 360.0,
        "max_ra": max(unwrapped) % 360.0,
        "min_dec": min(all_dec),
        "max_dec": max(all_dec),
    }
    return {"footprints": footprints, "bounding_box": box, "n_files": len(footprints)}
