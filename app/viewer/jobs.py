"""Viewer job entry points: picklable, run by the executor, the only place a file becomes arrays.

Each takes a storage key and plain parameters, opens the key where it runs
(:func:`app.worker.context.local_path`) and returns bytes or plain dicts. Pixels are
read through :func:`app.processing.fits_io.read_plane` with an integer block-average factor chosen
so the result is still at least the target size; one exact resize then gives the final size. A
10k x 10k file rendered at 1000 px therefore never exists as a full-size array in memory.

Display limits come from a full-resolution sample of the whole plane
(:func:`app.processing.fits_io.read_sample`, about a million pixels on a grid), not from the
resized array: a preview, a thumbnail and a histogram of one file use the same limits at any
size, and a blank border (NaN, or exact zeros in a float image) is left out of them.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.processing import avm, colormaps, encoding, enhancement, filters, fits_io, headers, statistics
from app.processing.enhancement import StretchSettings
from app.processing.errors import NoImageData
from app.processing.geometry import block_factor, fit_size, resize
from app.viewer.schemas import PreviewQuery, ViewerDisplay
from app.worker.context import local_path
from app.worker.errors import job_entry

logger = logging.getLogger("app.viewer.jobs")

THUMBNAIL_SIZE = 256
#: Longest side of the plane a smoothed histogram is computed on (stride-sampled).
HISTOGRAM_MAX_SIDE = 4096
#: Pixels the histogram is computed from: a grid over the whole plane, as many as the limits sample.
HISTOGRAM_SAMPLE_PIXELS = fits_io.LIMITS_SAMPLE_PIXELS
#: Percentiles reported by the histogram; keys are ``p{int(p)}``, so 0.5 -> p0 and 99.5 overwrites p99
#: (kept on purpose: the frontend reads these exact keys).
HISTOGRAM_PERCENTILES = (0.5, 1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 99.5)

ShapeFor = Callable[[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Fitted:
    """A plane read and resized to its output shape."""

    data: np.ndarray
    info: fits_io.ImageInfo
    slice_index: int
    out_shape: tuple[int, int]
    sample: np.ndarray
    """Finite full-resolution values the display limits are taken from (:func:`_limits_sample`)."""


def _limits_sample(path: Path, plane: fits_io.Plane) -> np.ndarray:
    """Return the full-resolution limits sample of ``plane``'s slice, blanks left out (call before NaN become 0)."""
    grid = fits_io.read_sample(path, plane.info, slice_index=plane.slice_index, plane=plane)
    return enhancement.sample_finite(grid, max_samples=grid.size, blank_zero=plane.info.bitpix < 0)


def _read_fitted(
    path: Path,
    shape_for: ShapeFor,
    *,
    slice_index: int,
    max_elements: int | None,
    choice: fits_io.HduChoice | None = None,
) -> Fitted:
    """Read a plane of the ``choice`` HDU reduced to just above ``shape_for(ny, nx)`` and resize it exactly."""
    info = fits_io.image_info(path, choice=choice)
    out_shape = shape_for(info.ny, info.nx)
    factor = block_factor(info.ny, info.nx, out_shape)
    if max_elements is not None:
        fits_io.check_read_budget(path, info, factor=factor, max_elements=max_elements)
    plane = fits_io.read_plane(path, info=info, slice_index=slice_index, factor=factor)
    sample = _limits_sample(path, plane)
    data = _require_finite(plane.data)
    return Fitted(resize(data, out_shape), info, plane.slice_index, out_shape, sample)


def _require_finite(data: np.ndarray) -> np.ndarray:
    """Replace NaN/Inf by 0 in place; :class:`NoImageData` (400) when no pixel is finite."""
    if not np.isfinite(data).any():
        raise NoImageData("No finite pixel values in the image data")
    return fits_io.finite_or_zero(data)


def _smooth(data: np.ndarray, display: ViewerDisplay) -> np.ndarray:
    if not display.smooth_method:
        return data
    try:
        return filters.smooth(data, display.smooth_method, sigma=display.smooth_sigma, size=display.smooth_size)
    except (ValueError, RuntimeError, MemoryError) as error:  # the contract: smoothing failures are ignored
        logger.warning("smoothing_failed", extra={"method": display.smooth_method, "error": type(error).__name__})
        return data


def _limits(sample: np.ndarray, name: str) -> tuple[float, float]:
    """Display limits of the stretch ``name`` from the full-resolution sample."""
    return enhancement.limits_of_sample(sample, enhancement.LIMITS_FOR_STRETCH.get(name, "zscale"))


def _stretch(data: np.ndarray, stretch: StretchSettings, sample: np.ndarray) -> np.ndarray:
    """Stretch, levels and gamma into ``[0, 1]``; a failing stretch falls back to zscale (the contract)."""
    try:
        limits = _limits(sample, stretch.stretch)
        x = enhancement.stretch(data, stretch.stretch, asinh_a=stretch.asinh_a, gamma=stretch.gamma, limits=limits)
    except (ValueError, FloatingPointError) as error:
        logger.warning("stretch_failed", extra={"stretch": stretch.stretch, "error": type(error).__name__})
        x = enhancement.stretch(data, "zscale", limits=_limits(sample, "zscale"))
    return enhancement.apply_levels(
        x,
        black_point=stretch.black_point,
        white_point=stretch.white_point,
        gamma=1.0 if stretch.stretch == "power" else stretch.gamma,
    )


def _avm_packet(fitted: Fitted, metadata: dict[str, str] | None) -> str | None:
    wcs = fits_io.celestial_wcs(fitted.info.header)
    if wcs is None:
        return None
    try:
        shown = avm.display_wcs(wcs, (fitted.info.ny, fitted.info.nx), fitted.out_shape)
        return avm.avm_xmp(shown, fitted.out_shape, metadata=metadata)
    except (ValueError, ArithmeticError) as error:  # a frame AVM cannot name (the Sun's), a singular WCS
        logger.info("preview_avm_failed", extra={"error": type(error).__name__})
        return None


def _cube_position(info: fits_io.ImageInfo, used: int) -> tuple[int, int]:
    """``(n_slices, current)`` as the contract reports them: ``(1, 0)`` for a plain image."""
    return (info.n_slices, used) if info.is_cube else (1, 0)


@job_entry
def render_preview(
    key: str,
    query: PreviewQuery,
    stretch: StretchSettings,
    max_elements: int,
    avm_metadata: dict[str, str] | None = None,
) -> tuple[bytes, int, int]:
    """Render ``GET /preview``: returns ``(image bytes, n_slices, slice used)``."""
    fitted = _read_fitted(
        local_path(key),
        lambda ny, nx: fit_size((ny, nx), query.width, query.height),
        slice_index=query.slice_index,
        max_elements=max_elements,
        choice=query.hdu_choice(),
    )
    x01 = _stretch(_smooth(fitted.data, query), stretch, fitted.sample)
    rgb = colormaps.apply_colormap(x01, query.cmap)[::-1]  # origin=lower
    xmp = _avm_packet(fitted, avm_metadata) if query.embed_avm else None
    content = encoding.encode_image(rgb, query.image_format, quality=query.quality, xmp=xmp)
    return (content, *_cube_position(fitted.info, fitted.slice_index))


@job_entry
def render_thumbnail(key: str, choice: fits_io.HduChoice | None = None) -> bytes:
    """Render ``POST /thumbnail``: a PNG that fits 256 x 256, zscale (linear if that fails), gray."""
    fitted = _read_fitted(
        local_path(key),
        lambda ny, nx: fit_size((ny, nx), THUMBNAIL_SIZE, THUMBNAIL_SIZE),
        slice_index=-1,
        max_elements=None,
        choice=choice,
    )
    try:
        x01 = enhancement.stretch(fitted.data, "zscale", limits=_limits(fitted.sample, "zscale"))
    except (ValueError, FloatingPointError):
        x01 = enhancement.stretch(fitted.data, "linear", limits=_limits(fitted.sample, "linear"))
    gray = colormaps.apply_gray(x01)[::-1]
    return encoding.encode_png(gray)


def _histogram_keys(values: dict[float, float | None]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in HISTOGRAM_PERCENTILES:  # ascending, so 99.5 overwrites 99 under "p99" (kept on purpose)
        value = values.get(p)
        out[f"p{int(p)}"] = float(value) if value is not None else 0.0
    return out


def _grid(data: np.ndarray, max_pixels: int) -> np.ndarray:
    """Every n-th pixel of every n-th row of ``data``, with n chosen so at most about ``max_pixels`` remain."""
    stride = math.ceil(math.sqrt(data.size / max_pixels)) if data.size > max_pixels else 1
    return np.ascontiguousarray(data[::stride, ::stride])


def _histogram_values(
    path: Path, info: fits_io.ImageInfo, display: ViewerDisplay, max_elements: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return the values the histogram counts (finite float32), the limits sample and the slice used.

    Without smoothing, one full-resolution grid read (:func:`fits_io.read_sample`, at most
    :data:`HISTOGRAM_SAMPLE_PIXELS`) gives both the counted values and the limits sample. Smoothing
    needs neighbours: the plane is read stride-sampled to :data:`HISTOGRAM_MAX_SIDE`, smoothed,
    and the same grid is taken from the smoothed plane.
    """
    if display.smooth_method:
        factor = fits_io.downscale_factor(info.ny, info.nx, HISTOGRAM_MAX_SIDE)
        fits_io.check_read_budget(path, info, factor=factor, max_elements=max_elements)
        plane = fits_io.read_plane(path, info=info, slice_index=display.slice_index, factor=factor, method="stride")
        sample = _limits_sample(path, plane)
        smoothed = _smooth(_require_finite(plane.data), display)
        return _grid(smoothed, HISTOGRAM_SAMPLE_PIXELS), sample, plane.slice_index
    stride = fits_io.sample_stride(info, HISTOGRAM_SAMPLE_PIXELS)
    fits_io.check_read_budget(path, info, factor=stride, max_elements=max_elements)
    used = fits_io.resolve_slice(info, display.slice_index)
    grid = fits_io.read_sample(path, info, slice_index=used, max_pixels=HISTOGRAM_SAMPLE_PIXELS)
    sample = enhancement.sample_finite(grid, max_samples=grid.size, blank_zero=info.bitpix < 0)
    return _require_finite(grid), sample, used


@job_entry
def compute_histogram(
    key: str, display: ViewerDisplay, stretch: StretchSettings, bins: int, max_elements: int
) -> dict[str, Any]:
    """Compute ``GET /histogram``: raw and stretched histograms, percentiles and stats (JSON-ready).

    Everything is computed on one grid sample of at most :data:`HISTOGRAM_SAMPLE_PIXELS` pixels
    spread over the whole plane (every pixel of a smaller plane), so time and memory do not grow
    with the file.
    """
    path = local_path(key)
    info = fits_io.image_info(path, choice=display.hdu_choice())
    values, sample, used = _histogram_values(path, info, display, max_elements)
    lo, hi = float(values.min()), float(values.max())
    raw = enhancement.normalize(values, lo, hi if hi > lo else lo + 1.0)
    raw_hist = _counts(raw, bins)
    del raw
    x01 = _stretch(values, stretch, sample)
    np.clip(x01, 0.0, 1.0, out=x01)
    n_slices, current = _cube_position(info, used)
    return {
        "histogram": _counts(x01, bins),
        "raw_histogram": raw_hist,
        "percentiles": _histogram_keys(_percentiles(x01)),
        "stats": _stats(x01),
        "cube_info": {"n_slices": n_slices, "current_slice": current},
    }


def _counts(values: np.ndarray, bins: int) -> dict[str, Any]:
    """Histogram of finite values over their own min-max range (the range of the old full-plane histogram)."""
    return statistics.histogram_of_finite(values, bins=bins, value_range=(float(values.min()), float(values.max())))


def _percentiles(x01: np.ndarray) -> dict[float, float | None]:
    """:data:`HISTOGRAM_PERCENTILES` of finite float32 values (no float64 copy; ``None`` when empty)."""
    if x01.size == 0:
        return {p: None for p in HISTOGRAM_PERCENTILES}
    found = np.percentile(x01.reshape(-1), HISTOGRAM_PERCENTILES)
    return {p: float(v) for p, v in zip(HISTOGRAM_PERCENTILES, found, strict=True)}


def _stats(x01: np.ndarray) -> dict[str, float]:
    """Minimum, maximum, mean and standard deviation of finite values (float64 sums; 0 when empty)."""
    if x01.size == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0, "std": 0.0}
    return {
        "min": float(x01.min()),
        "max": float(x01.max()),
        "mean": float(x01.mean(dtype=np.float64)),
        "std": float(x01.std(dtype=np.float64)),
    }


@job_entry
def pixel_data(
    key: str, max_size: int, slice_index: int, max_elements: int, choice: fits_io.HduChoice | None = None
) -> dict[str, Any]:
    """Read ``GET /pixeldata``: the plane at most ``max_size`` on its longer side, float32 LE base64."""
    scale = 1.0

    def shape_for(ny: int, nx: int) -> tuple[int, int]:
        nonlocal scale
        longer = max(ny, nx)
        if longer <= max_size:
            return ny, nx
        scale = longer / max_size
        return max(1, round(ny / scale)), max(1, round(nx / scale))

    fitted = _read_fitted(local_path(key), shape_for, slice_index=slice_index, max_elements=max_elements, choice=choice)
    pixels = np.ascontiguousarray(fitted.data, dtype="<f4")
    bunit = fitted.info.header.get("BUNIT")
    return {
        "original_shape": [fitted.info.ny, fitted.info.nx],
        "preview_shape": [int(fitted.out_shape[0]), int(fitted.out_shape[1])],
        "scale_factor": float(scale),
        "wcs": headers.pixel_wcs(fitted.info.header),
        "units": str(bunit).strip() if bunit is not None else "",
        "pixels": base64.b64encode(pixels.tobytes()).decode("ascii"),
    }


@job_entry
def cube_info(key: str, choice: fits_io.HduChoice | None = None) -> dict[str, Any]:
    """Describe ``GET /cubeinfo`` from the headers only.

    Axes of length 1 are squeezed: a radio cube ``RA, DEC, FREQ(7), STOKES(1)`` is a cube of 7
    channels described by its FREQ axis. Without a ``choice`` the first cube (the ``SCI`` one
    first) is described; a chosen HDU is described whatever it is (400 when it holds no image).
    """
    path = local_path(key)
    not_a_cube = {"is_cube": False, "n_slices": 1, "axis3": None, "slice_unit": "", "slice_label": "Frame"}
    if choice is None or choice.is_default:
        try:
            info = fits_io.image_info(path, min_ndim=3)
        except NoImageData:
            return not_a_cube
    else:
        info = fits_io.image_info(path, choice=choice)
        if not info.is_cube:
            return not_a_cube
    header, axis = info.header, info.slice_fits_axis or 3
    return {
        "is_cube": True,
        "n_slices": int(info.n_slices),
        "axis3": headers.cube_axis(header, axis, headers.tabulated_values(path, header, axis, info.n_slices)),
        "slice_unit": headers.slice_unit(str(header.get(f"CUNIT{axis}", "") or "")),
        "slice_label": headers.slice_label(str(header.get(f"CTYPE{axis}", "") or "")),
    }
