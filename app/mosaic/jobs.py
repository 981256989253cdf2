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
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from app import __version__
from app.core.exceptions import FitsTooLargeError, InvalidRequestError, PayloadTooLargeError
from app.processing import coadd, colormaps, encoding
from app.processing.enhancement import LimitsMethod, StretchSettings, display_limits
from app.processing.fits_io import read_plane
from app.processing.provenance import provenance_hdus
from app.processing.reprojection import Grid, downscale_wcs, footprint_bbox, optimal_celestial_grid, reproject_fast
from app.processing.sources import ImageSource, load_source, max_side_for, read_factor
from app.worker.context import local_path, storage
from app.worker.errors import job_entry

logger = logging.getLogger("app.mosaic.jobs")

#: Longer side of the coarse grid on which background offsets are measured.
BACKGROUND_GRID_SIDE = 512
MIB = 1024 * 1024


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
    output_key: str | None = None
    """Storage key the FITS output is written to (FITS only)."""
    temp_dir: str | None = None
    match_background: bool = False


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


def load_sources(keys: tuple[str, ...], *, max_file_bytes: int | None = None) -> list[ImageSource]:
    """Return the inputs from their headers (with their weight extensions); 400 naming a bad file.

    Every key is opened and size-checked first, so a bad key or an oversized file answers before
    any header is parsed.
    """
    paths = [_checked_path(key, max_file_bytes) for key in keys]
    return [load_source(path, Path(key).name, with_weights=True) for path, key in zip(paths, keys, strict=True)]


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
    """Say whether the mean is inverse-variance weighted: every input has a WHT or ERR extension."""
    return bool(sources) and all(s.weights is not None for s in sources)


def _reprojected_weights(source: ImageSource, grid: Grid, bbox: coadd.Bbox, max_side: int | None) -> np.ndarray:
    """Return inverse-variance weights of ``source`` (WHT, or 1/ERR^2) reprojected onto ``bbox`` of ``grid``."""
    if source.weights is None:
        raise ValueError(f"{source.name} has no weight extension")
    index, kind = source.weights
    plane = read_plane(source.path, hdu_index=index, max_side=max_side)
    values = plane.data
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = values if kind == "WHT" else np.float32(1.0) / (values * values)
    weights[~(np.isfinite(weights) & (weights > 0))] = np.nan
    y0, y1, x0, x1 = bbox
    return reproject_fast(weights, downscale_wcs(source.wcs, plane.factor), grid.cutout(y0, y1, x0, x1))


def reprojected_tiles(
    sources: list[ImageSource],
    grid: Grid,
    *,
    with_weights: bool = False,
    offsets: np.ndarray | None = None,
) -> Iterator[coadd.Tile]:
    """Yield each source reprojected onto the part of ``grid`` it covers, one at a time.

    ``offsets`` (one per source) are subtracted from the tiles (background matching).
    """
    for index, source in enumerate(sources):
        max_side = max_side_for(source, read_factor(source, grid))
        plane = read_plane(source.path, hdu_index=source.info.hdu_index, max_side=max_side)
        data = plane.data
        data[data == 0] = np.nan  # exact zeros are detector edges / no data
        wcs = downscale_wcs(source.wcs, plane.factor)
        bbox = footprint_bbox(wcs, data.shape, grid)
        if bbox is None:
            continue
        y0, y1, x0, x1 = bbox
        tile = reproject_fast(data, wcs, grid.cutout(y0, y1, x0, x1))
        del plane, data
        if offsets is not None and offsets[index] != 0:
            tile -= np.float32(offsets[index])
        weights = _reprojected_weights(source, grid, bbox, max_side) if with_weights else None
        yield bbox, tile, weights


def background_offsets(sources: list[ImageSource], grid: Grid) -> np.ndarray:
    """Return the additive offsets that make overlapping sources agree, measured on a coarse copy of ``grid``."""
    coarse = grid.rescaled(max(1.0, max(grid.shape) / BACKGROUND_GRID_SIDE))
    planes: list[np.ndarray] = []
    for source in sources:
        plane = np.full(coarse.shape, np.nan, dtype=np.float32)
        for (y0, y1, x0, x1), tile, _ in reprojected_tiles([source], coarse):
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
) -> np.ndarray:
    """Co-add the sources on ``grid`` with ``method``; float32 with NaN where nothing covers."""
    weighted = method == "mean" and uses_weights(sources)
    tiles = reprojected_tiles(sources, grid, with_weights=weighted, offsets=offsets)
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


def render_image(data: np.ndarray, job: MosaicJob) -> tuple[bytes, str]:
    """Return the PNG/JPEG with the first file's stretch and the colormap (uncovered pixels black)."""
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
    content = encoding.encode_image(pixels, job.output_format, quality=job.quality)
    return content, encoding.MEDIA_TYPES[job.output_format]


def write_fits(
    sources: list[ImageSource], grid: Grid, data: np.ndarray, job: MosaicJob, offsets: np.ndarray | None
) -> str:
    """Write the FITS mosaic with its provenance to storage at ``job.output_key`` and return the key."""
    if job.output_key is None:
        raise ValueError("a FITS mosaic job needs an output_key")
    hdul = provenance_hdus(
        sources,
        grid,
        data,
        job.combine_method,
        creator=f"jwst-engine {__version__}",
        weighted=job.combine_method == "mean" and uses_weights(sources),
        offsets=offsets,
    )
    fd, path = tempfile.mkstemp(prefix="jwst-mosaic-", suffix=".fits", dir=job.temp_dir)
    os.close(fd)
    try:
        hdul.writeto(path, overwrite=True)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    storage().move_in(job.output_key, Path(path))
    return job.output_key


@job_entry
def build_mosaic(job: MosaicJob) -> MosaicOutput:
    """Run a mosaic job (in a worker process)."""
    started = time.perf_counter()
    sources = load_sources(job.keys, max_file_bytes=job.max_file_bytes)
    grid, factor = plan_grid(sources, job)
    offsets = background_offsets(sources, grid) if job.match_background else None
    data = combine(sources, grid, job.combine_method, temp_dir=job.temp_dir, offsets=offsets)
    weighted = job.combine_method == "mean" and uses_weights(sources)
    headers = {
        "X-Mosaic-Grid-Shape": f"{grid.nx}x{grid.ny}",
        "X-Mosaic-Downscaled": "true" if factor > 1.0 else "false",
        "X-Mosaic-Downscale-Factor": f"{factor:.3f}",
        "X-Mosaic-Background-Offsets": ",".join(f"{o:.6g}" for o in offsets) if offsets is not None else "none",
        "X-Mosaic-Weighting": "inverse-variance" if weighted else "none",
    }
    logger.info(
        "mosaic_done", extra={"grid": f"{grid.nx}x{grid.ny}", "seconds": round(time.perf_counter() - started, 3)}
    )
    if job.output_format == "fits":
        key = write_fits(sources, grid, data, job, offsets)
        return MosaicOutput(media_type="application/fits", fits_key=key, headers=headers)
    content, media_type = render_image(data, job)
    return MosaicOutput(media_type=media_type, content=content, headers=headers)


def _corners(source: ImageSource) -> tuple[np.ndarray, np.ndarray]:
    """Return RA and Dec (degrees) of the four corners and the centre of ``source``; 400 when not finite."""
    w, h = source.info.nx, source.info.ny
    xs = np.array([0.0, w - 1.0, w - 1.0, 0.0, w / 2.0])
    ys = np.array([0.0, 0.0, h - 1.0, h - 1.0, h / 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        world = source.wcs.pixel_to_world_values(xs, ys)
    ra = np.asarray(world[int(source.wcs.wcs.lng)], dtype=float) % 360.0
    dec = np.asarray(world[int(source.wcs.wcs.lat)], dtype=float)
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise InvalidRequestError(f"No celestial WCS found in FITS file: {source.name}")
    return ra, dec


@job_entry
def compute_footprints(keys: tuple[str, ...]) -> dict[str, object]:
    """Return the corners and centres of each file from its headers (no pixel is read, no size limit)."""
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
    # RA bounds unwrapped around the first centre so a field across RA=0 gets a small box
    ref = float(footprints[0]["center_ra"])  # type: ignore[arg-type]
    unwrapped = [ref + ((r - ref + 180.0) % 360.0 - 180.0) for r in all_ra]
    box = {"min_ra": min(unwrapped), "max_ra": max(unwrapped), "min_dec": min(all_dec), "max_dec": max(all_dec)}
    return {"footprints": footprints, "bounding_box": box, "n_files": len(footprints)}
