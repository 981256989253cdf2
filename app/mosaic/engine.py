"""The mosaic job and the footprint job (run in executor workers).

:func:`build_mosaic` reads headers first, computes one optimal celestial grid (downscaled when the
requested width/height are smaller, 413 above ``MAX_MOSAIC_OUTPUT_PIXELS``), then streams the
inputs: each file is read, its exact zeros (detector edges) masked, reprojected onto the part of
the grid it covers (:func:`app.processing.reprojection.reproject_fast`) and folded into running
accumulators, so memory grows with the output grid, not with the number of inputs. The median
spills each reprojected tile to a temporary file and combines them in row bands. Outputs: a
float32 FITS file (NaN where nothing covers, the grid WCS, provenance cards and a ``SRCMETA``
table) or a PNG/JPEG rendered with the first file's stretch and the requested colormap.

:func:`compute_footprints` answers from headers only.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from app import __version__
from app.core.exceptions import InvalidRequestError, NoImageDataError, PayloadTooLargeError
from app.processing import colormaps, encoding
from app.processing.enhancement import STRETCH_NAMES, StretchSettings, display_limits
from app.processing.fits_io import ImageInfo, celestial_wcs, image_info, open_fits, read_plane
from app.processing.reprojection import Grid, downscale_wcs, footprint_bbox, optimal_celestial_grid, reproject_fast

logger = logging.getLogger("app.mosaic.engine")

#: Keywords copied per source into SRCMETA (primary header first, the image header overrides).
PROVENANCE_KEYWORDS = (
    "TELESCOP",
    "INSTRUME",
    "DETECTOR",
    "FILTER",
    "PUPIL",
    "TARGNAME",
    "OBS_ID",
    "PROGRAM",
    "DATE-OBS",
    "EFFEXPTM",
    "EXPTIME",
    "BUNIT",
    "PHOTMJSR",
)
#: Summary cards: card name -> source keyword (unique values joined with commas).
SUMMARY_CARDS = {
    "SRCINST": "INSTRUME",
    "SRCDETS": "DETECTOR",
    "SRCFILT": "FILTER",
    "SRCTARG": "TARGNAME",
    "SRCOBS": "OBS_ID",
    "SRCPROP": "PROGRAM",
}
#: Keywords copied to the primary header when every source has the same value.
SHARED_KEYWORDS = ("TELESCOP", "INSTRUME", "DETECTOR", "FILTER", "PUPIL", "TARGNAME", "PROGRAM", "BUNIT")
MEDIAN_BAND_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class MosaicJob:
    """Everything :func:`build_mosaic` needs (picklable)."""

    paths: tuple[str, ...]
    names: tuple[str, ...]
    output_format: str
    quality: int
    width: int | None
    height: int | None
    combine_method: str
    cmap: str
    style: StretchSettings  # the first file's stretch, used for PNG/JPEG output
    max_output_pixels: int
    temp_dir: str | None = None
    match_background: bool = False


@dataclass
class MosaicOutput:
    """Encoded image bytes, or the path of a temporary FITS file (the caller deletes it)."""

    media_type: str
    content: bytes | None = None
    fits_path: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Source:
    path: str
    name: str
    info: ImageInfo
    wcs: WCS
    weight_hdu: tuple[int, str] | None = None
    """``(index, "WHT" | "ERR")`` of an extension with per-pixel weights of the same shape, if any."""

    @property
    def shape(self) -> tuple[int, int]:
        return (self.info.ny, self.info.nx)


def _image_and_wcs(path: str, name: str) -> tuple[ImageInfo, WCS]:
    """Header facts and celestial WCS of a mosaic input; 400 naming the file when either is missing."""
    try:
        info = image_info(path)
    except NoImageDataError as error:
        raise NoImageDataError(f"No image data found in FITS file: {name}") from error
    wcs = celestial_wcs(info.header)
    if wcs is None:
        raise InvalidRequestError(f"No celestial WCS found in FITS file: {name}")
    return info, wcs


def _load_sources(paths: tuple[str, ...], names: tuple[str, ...]) -> list[_Source]:
    sources = []
    for path, name in zip(paths, names, strict=True):
        info, wcs = _image_and_wcs(path, name)
        sources.append(_Source(path, name, info, wcs, _find_weight_hdu(path, info)))
    return sources


def _find_weight_hdu(path: str, info: ImageInfo) -> tuple[int, str] | None:
    """Headers only: the index of a ``WHT`` (preferred) or ``ERR`` image extension matching the science shape."""
    found: dict[str, int] = {}
    try:
        with open_fits(path) as hdul:
            for index, hdu in enumerate(hdul):
                name = str(hdu.header.get("EXTNAME", "")).strip().upper()
                if name not in ("WHT", "ERR") or index == info.hdu_index:
                    continue
                dims = [int(hdu.header.get(f"NAXIS{i}", 0)) for i in range(1, int(hdu.header.get("NAXIS", 0)) + 1)]
                if tuple(reversed(dims)) == info.shape:
                    found.setdefault(name, index)
    except Exception:  # weights are optional; an unreadable extension list means none
        return None
    for name in ("WHT", "ERR"):
        if name in found:
            return (found[name], name)
    return None


def plan_grid(sources: list[_Source], job: MosaicJob) -> tuple[Grid, float]:
    """The optimal grid, downscaled to width/height when asked; 413 above the pixel limit."""
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


def _read_factor(source: _Source, grid: Grid) -> int:
    from astropy.wcs.utils import proj_plane_pixel_scales

    scale = float(np.min(np.abs(proj_plane_pixel_scales(source.wcs))))
    return max(1, math.floor(grid.pixel_scale_deg / scale * 1.0001))


def _reprojected_weights(
    source: _Source, grid: Grid, bbox: tuple[int, int, int, int], max_side: int | None
) -> np.ndarray:
    """Inverse-variance weights of ``source`` (WHT, or 1/ERR^2) reprojected onto ``bbox`` of ``grid``."""
    assert source.weight_hdu is not None
    index, kind = source.weight_hdu
    plane = read_plane(source.path, hdu_index=index, max_side=max_side)
    values = plane.data
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = values if kind == "WHT" else np.float32(1.0) / (values * values)
    weights[~(np.isfinite(weights) & (weights > 0))] = np.nan
    y0, y1, x0, x1 = bbox
    return reproject_fast(weights, downscale_wcs(source.wcs, plane.factor), grid.cutout(y0, y1, x0, x1))


def _reprojected_tiles(
    sources: list[_Source],
    grid: Grid,
    *,
    with_weights: bool = False,
    offsets: np.ndarray | None = None,
) -> Iterator[tuple[tuple[int, int, int, int], np.ndarray, np.ndarray | None]]:
    """Yield ``(bbox, tile, weights)`` of each source reprojected onto the part of ``grid`` it covers, one at a time.

    ``offsets`` (one per source) are subtracted from the tiles (background matching).
    """
    for index, source in enumerate(sources):
        factor = _read_factor(source, grid)
        max_side = math.ceil(max(source.shape) / factor) if factor > 1 else None
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


Accumulate = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _fold(kind: str) -> Accumulate:
    def first(out: np.ndarray, tile: np.ndarray, _: np.ndarray) -> None:
        take = np.isnan(out) & np.isfinite(tile)
        out[take] = tile[take]

    def last(out: np.ndarray, tile: np.ndarray, _: np.ndarray) -> None:
        take = np.isfinite(tile)
        out[take] = tile[take]

    def minimum(out: np.ndarray, tile: np.ndarray, _: np.ndarray) -> None:
        np.fmin(out, tile, out=out)

    def maximum(out: np.ndarray, tile: np.ndarray, _: np.ndarray) -> None:
        np.fmax(out, tile, out=out)

    def total(out: np.ndarray, tile: np.ndarray, count: np.ndarray) -> None:
        covered = np.isfinite(tile)
        out += np.nan_to_num(tile, copy=False, nan=0.0)  # the tile is ours: zero its NaN in place
        count += covered

    table: dict[str, Accumulate] = {
        "first": first,
        "last": last,
        "min": minimum,
        "max": maximum,
        "mean": total,
        "sum": total,
    }
    return table[kind]


def background_offsets(sources: list[_Source], grid: Grid, *, max_side: int = 512, min_overlap: int = 25) -> np.ndarray:
    """Additive offsets that make overlapping sources agree (least squares on pairwise median differences).

    The sources are reprojected onto a coarse version of ``grid`` (longer side ``max_side``), so this
    costs a fraction of the mosaic. The offsets sum to zero, so the mosaic keeps its mean level.
    """
    n = len(sources)
    coarse = grid.rescaled(max(1.0, max(grid.shape) / max_side))
    tiles: list[np.ndarray] = []
    for source in sources:
        plane = np.full(coarse.shape, np.nan, dtype=np.float32)
        for (y0, y1, x0, x1), tile, _ in _reprojected_tiles([source], coarse):
            plane[y0:y1, x0:x1] = tile
        tiles.append(plane)
    rows: list[np.ndarray] = []
    diffs: list[float] = []
    for i in range(n):
        for j in range(i + 1, n):
            both = np.isfinite(tiles[i]) & np.isfinite(tiles[j])
            if int(both.sum()) < min_overlap:
                continue
            row = np.zeros(n)
            row[i], row[j] = 1.0, -1.0
            rows.append(row)
            diffs.append(float(np.median(tiles[i][both] - tiles[j][both])))
    if not rows:
        return np.zeros(n)
    rows.append(np.ones(n))
    diffs.append(0.0)
    solution, *_ = np.linalg.lstsq(np.array(rows), np.array(diffs), rcond=None)
    return np.asarray(solution, dtype=np.float64)


def combine(
    sources: list[_Source],
    grid: Grid,
    method: str,
    *,
    temp_dir: str | None = None,
    offsets: np.ndarray | None = None,
) -> np.ndarray:
    """Co-add the sources on ``grid`` with ``method``; float32 with NaN where nothing covers.

    ``offsets`` (from :func:`background_offsets`) are subtracted from each source first.
    """
    if method == "median":
        return _median(sources, grid, temp_dir=temp_dir, offsets=offsets)
    if method == "mean" and uses_weights(sources):
        return _weighted_mean(sources, grid, offsets=offsets)
    additive = method in ("mean", "sum")
    out = np.zeros(grid.shape, dtype=np.float32) if additive else np.full(grid.shape, np.nan, dtype=np.float32)
    count_dtype = np.uint16 if len(sources) < np.iinfo(np.uint16).max else np.float32
    count = np.zeros(grid.shape, dtype=count_dtype) if additive else np.empty((0, 0), dtype=np.float32)
    fold = _fold(method)
    for (y0, y1, x0, x1), tile, _ in _reprojected_tiles(sources, grid, offsets=offsets):
        fold(out[y0:y1, x0:x1], tile, count[y0:y1, x0:x1] if additive else count)
    if additive:
        covered = count > 0
        if method == "mean":
            np.divide(out, count, out=out, where=covered)
        out[~covered] = np.nan
    return out


def uses_weights(sources: list[_Source]) -> bool:
    """The mean is inverse-variance weighted when every input has a WHT or ERR extension."""
    return bool(sources) and all(s.weight_hdu is not None for s in sources)


def _weighted_mean(sources: list[_Source], grid: Grid, *, offsets: np.ndarray | None = None) -> np.ndarray:
    """Inverse-variance weighted mean; pixels without a valid weight do not contribute."""
    total = np.zeros(grid.shape, dtype=np.float32)
    weight_sum = np.zeros(grid.shape, dtype=np.float32)
    for (y0, y1, x0, x1), tile, weights in _reprojected_tiles(sources, grid, with_weights=True, offsets=offsets):
        assert weights is not None
        usable = np.isfinite(tile) & np.isfinite(weights)
        np.multiply(tile, weights, out=tile)
        tile[~usable] = 0.0
        weights[~usable] = 0.0
        total[y0:y1, x0:x1] += tile
        weight_sum[y0:y1, x0:x1] += weights
    covered = weight_sum > 0
    np.divide(total, weight_sum, out=total, where=covered)
    total[~covered] = np.nan
    return total


def _median(
    sources: list[_Source], grid: Grid, *, temp_dir: str | None, offsets: np.ndarray | None = None
) -> np.ndarray:
    """Median with bounded memory: tiles spill to disk, then row bands are stacked and reduced."""
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="mosaic-median-", dir=temp_dir) as tmp:
        spilled: list[tuple[tuple[int, int, int, int], str]] = []
        for index, (bbox, tile, _) in enumerate(_reprojected_tiles(sources, grid, offsets=offsets)):
            path = os.path.join(tmp, f"tile{index}.npy")
            np.save(path, tile)
            spilled.append((bbox, path))
            del tile
        tiles = [(bbox, np.load(path, mmap_mode="r")) for bbox, path in spilled]
        if not tiles:
            return out
        rows = max(1, MEDIAN_BAND_BYTES // max(1, grid.nx * 4 * len(tiles)))
        for b0 in range(0, grid.ny, rows):
            b1 = min(grid.ny, b0 + rows)
            stack = np.full((len(tiles), b1 - b0, grid.nx), np.nan, dtype=np.float32)
            for k, ((y0, y1, x0, x1), tile) in enumerate(tiles):
                a, b = max(y0, b0), min(y1, b1)
                if a < b:
                    stack[k, a - b0 : b - b0, x0:x1] = tile[a - y0 : b - y0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[b0:b1] = np.nanmedian(stack, axis=0)
            del stack
        del tiles
    return out


# --------------------------------------------------------------------------- outputs


def _source_cards(source: _Source) -> dict[str, tuple[str, str]]:
    """Provenance keywords of a source: keyword -> (value text, comment)."""
    cards: dict[str, tuple[str, str]] = {}
    try:
        with open_fits(source.path) as hdul:
            headers = [hdul[0].header]
    except Exception:  # provenance is best effort; the image header is still there
        headers = []
    headers.append(source.info.header)
    for header in headers:
        for key in PROVENANCE_KEYWORDS:
            if key in header and header[key] is not None and str(header[key]).strip() != "":
                cards[key] = (str(header[key]), str(header.comments[key]))
    return cards


def provenance_hdus(
    sources: list[_Source], grid: Grid, data: np.ndarray, method: str, *, offsets: np.ndarray | None = None
) -> fits.HDUList:
    """The output HDUs: the MOSAIC primary image with WCS and provenance, and the SRCMETA table."""
    header = grid.header()
    header["EXTNAME"] = ("MOSAIC", "mosaic image")
    header["ORIGIN"] = ("jwst-engine", "institution or software that wrote the file")
    header["CREATOR"] = (f"jwst-engine {__version__}", "software that created the mosaic")
    header["DATE"] = (dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"), "UTC date the file was written")
    header["MOSAIC"] = (True, "this image is a mosaic")
    header["NINPUTS"] = (len(sources), "number of input files")
    header["COMBMETH"] = (method, "combine method")
    all_cards = [_source_cards(s) for s in sources]
    for index, source in enumerate(sources, start=1):
        header[f"SRC{index:04d}"] = (_ascii(source.name)[-68:], f"input file {index}")
    for key in SHARED_KEYWORDS:
        shared = {cards[key][0] if key in cards else None for cards in all_cards}
        if len(shared) == 1 and None not in shared:
            header[key] = (shared.pop(), "shared by all inputs")
    for card, key in SUMMARY_CARDS.items():
        values = sorted({cards[key][0] for cards in all_cards if key in cards})
        if values:
            header[card] = (",".join(values)[:68], f"input {key} values")
    header.add_history(f"Mosaic of {len(sources)} files combined with '{method}' by jwst-engine.")
    header.add_history("Inputs reprojected (bilinear) onto a north-up TAN grid; exact zeros masked.")
    if method == "mean" and uses_weights(sources):
        header["COMBWGT"] = ("inverse-variance", "mean weighted by WHT or 1/ERR**2")
        header.add_history("Mean weighted by inverse variance (WHT or ERR extensions).")
    if offsets is not None:
        header["BKGMATCH"] = (True, "per-input background offsets subtracted")
        header.add_history("Background matched: offsets subtracted per input (SRCMETA keyword BKGOFFST).")
    rows: list[tuple[int, str, str, str, str]] = []
    for index, (source, cards) in enumerate(zip(sources, all_cards, strict=True), start=1):
        for key, (value, comment) in cards.items():
            rows.append((index, _ascii(source.name), key, value, comment))
        if offsets is not None:
            rows.append(
                (index, _ascii(source.name), "BKGOFFST", f"{offsets[index - 1]:.8g}", "background offset subtracted")
            )
    columns = [
        fits.Column(name="SRCINDEX", format="J", array=np.array([r[0] for r in rows], dtype=np.int32)),
        fits.Column(name="FILENAME", format=_afmt(r[1] for r in rows), array=np.array([r[1] for r in rows], dtype=str)),
        fits.Column(name="KEYWORD", format="8A", array=np.array([r[2] for r in rows], dtype=str)),
        fits.Column(name="VALUE", format=_afmt(r[3] for r in rows), array=np.array([r[3] for r in rows], dtype=str)),
        fits.Column(name="COMMENT", format=_afmt(r[4] for r in rows), array=np.array([r[4] for r in rows], dtype=str)),
    ]
    table = fits.BinTableHDU.from_columns(columns, name="SRCMETA")
    return fits.HDUList([fits.PrimaryHDU(data=data, header=header), table])


def _ascii(text: str) -> str:
    """FITS header and table strings are printable ASCII: replace anything else with '?'."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def _afmt(values: object) -> str:
    width = max([len(str(v)) for v in values] + [1])  # type: ignore[attr-defined]
    return f"{width}A"


def _render(data: np.ndarray, job: MosaicJob) -> tuple[bytes, str, dict[str, str]]:
    """PNG/JPEG with the first file's stretch and the colormap; uncovered pixels black."""
    from PIL import Image

    headers: dict[str, str] = {}
    name = job.style.stretch.strip().lower()
    if name not in STRETCH_NAMES:
        headers["X-Mosaic-Stretch-Fallback"] = "zscale"
        name = "zscale"
    covered = np.isfinite(data)
    method = "zscale" if name == "zscale" else "percentile"
    limits = display_limits(data, method=method)  # type: ignore[arg-type]
    x = replace(job.style, stretch=name).apply(data, limits=limits, out=data)
    rgb = colormaps.apply_colormap(x[::-1], job.cmap)
    rgb[~covered[::-1]] = 0
    image = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    ny, nx = rgb.shape[:2]
    if job.width and job.height:
        size = (job.width, job.height)
    elif job.width:
        size = (job.width, max(1, round(ny * job.width / nx)))
    elif job.height:
        size = (max(1, round(nx * job.height / ny)), job.height)
    else:
        size = (nx, ny)
    if size != (nx, ny):
        image = image.resize(size, Image.Resampling.LANCZOS)
    pixels = np.asarray(image)
    if job.output_format == "jpeg":
        return encoding.encode_jpeg(pixels, quality=job.quality), "image/jpeg", headers
    return encoding.encode_png(pixels), "image/png", headers


def build_mosaic(job: MosaicJob) -> MosaicOutput:
    """Run a mosaic job (in a worker process)."""
    started = time.perf_counter()
    sources = _load_sources(job.paths, job.names)
    grid, factor = plan_grid(sources, job)
    offsets = background_offsets(sources, grid) if job.match_background else None
    data = combine(sources, grid, job.combine_method, temp_dir=job.temp_dir, offsets=offsets)
    headers = {
        "X-Mosaic-Grid-Shape": f"{grid.nx}x{grid.ny}",
        "X-Mosaic-Downscaled": "true" if factor > 1.0 else "false",
        "X-Mosaic-Downscale-Factor": f"{factor:.3f}",
        "X-Mosaic-Background-Offsets": ",".join(f"{o:.6g}" for o in offsets) if offsets is not None else "none",
        "X-Mosaic-Weighting": "inverse-variance" if job.combine_method == "mean" and uses_weights(sources) else "none",
    }
    logger.info(
        "mosaic_done", extra={"grid": f"{grid.nx}x{grid.ny}", "seconds": round(time.perf_counter() - started, 3)}
    )
    if job.output_format == "fits":
        hdul = provenance_hdus(sources, grid, data, job.combine_method, offsets=offsets)
        fd, path = tempfile.mkstemp(prefix="jwst-mosaic-", suffix=".fits", dir=job.temp_dir)
        os.close(fd)
        try:
            hdul.writeto(path, overwrite=True)
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
        return MosaicOutput(media_type="application/fits", fits_path=path, headers=headers)
    content, media_type, extra = _render(data, job)
    return MosaicOutput(media_type=media_type, content=content, headers={**headers, **extra})


# --------------------------------------------------------------------------- footprints


def compute_footprints(paths: tuple[str, ...], keys: tuple[str, ...]) -> dict[str, object]:
    """Corners and centres of each file from its headers (no pixel is read)."""
    footprints = []
    all_ra: list[float] = []
    all_dec: list[float] = []
    for path, key in zip(paths, keys, strict=True):
        name = Path(key).name
        info, wcs = _image_and_wcs(path, name)
        w, h = info.nx, info.ny
        xs = np.array([0.0, w - 1.0, w - 1.0, 0.0, w / 2.0])
        ys = np.array([0.0, 0.0, h - 1.0, h - 1.0, h / 2.0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            world = wcs.pixel_to_world_values(xs, ys)
        ra = np.asarray(world[int(wcs.wcs.lng)], dtype=float) % 360.0
        dec = np.asarray(world[int(wcs.wcs.lat)], dtype=float)
        if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
            raise InvalidRequestError(f"No celestial WCS found in FITS file: {name}")
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
    ref = footprints[0]["center_ra"]
    unwrapped = [ref + ((r - ref + 180.0) % 360.0 - 180.0) for r in all_ra]  # type: ignore[operator]
    box = {"min_ra": min(unwrapped), "max_ra": max(unwrapped), "min_dec": min(all_dec), "max_dec": max(all_dec)}
    return {"footprints": footprints, "bounding_box": box, "n_files": len(footprints)}
