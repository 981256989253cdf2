"""Viewer job functions: picklable, module-level, run in worker processes by the job executor.

Each takes a local file path and plain parameters and returns bytes or plain dicts. Pixels are
read through :func:`app.processing.fits_io.read_plane` with an integer block-average factor chosen
so the result is still at least the target size; one exact resize with Pillow then gives the final
size. A 10k x 10k file rendered at 1000 px therefore never exists as a full-size array in memory.
"""

from __future__ import annotations

import base64
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.core.exceptions import NoImageDataError
from app.processing import avm, colormaps, encoding, enhancement, filters, fits_io, statistics
from app.viewer.schemas import DisplayParams, PreviewParams

logger = logging.getLogger("app.viewer.render")

THUMBNAIL_SIZE = 256
HISTOGRAM_MAX_SIDE = 4096
#: Percentiles reported by the histogram; keys are ``p{int(p)}`` so 0.5 -> p0 and 99.5 overwrites p99 (quirk 14).
HISTOGRAM_PERCENTILES = (0.5, 1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 99.5)


def fit_box(ny: int, nx: int, width: int, height: int) -> tuple[int, int]:
    """``(height, width)`` of an ``ny x nx`` image scaled to fit a ``width x height`` box, aspect kept."""
    scale = min(width / nx, height / ny)
    return max(1, round(ny * scale)), max(1, round(nx * scale))


def block_factor(ny: int, nx: int, out_shape: tuple[int, int]) -> int:
    """Largest integer reduction that keeps an ``ny x nx`` plane at least ``out_shape`` in size."""
    return max(1, min(ny // out_shape[0], nx // out_shape[1]))


def resize(data: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Resize a finite float32 image to ``out_shape``: area-average down, nearest-neighbour up."""
    if data.shape == out_shape:
        return data
    out_h, out_w = out_shape
    image = Image.fromarray(np.ascontiguousarray(data, dtype=np.float32))
    shrinking = out_h <= data.shape[0] and out_w <= data.shape[1]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.NEAREST
    return np.asarray(image.resize((out_w, out_h), resample=method), dtype=np.float32)


def _read_fitted(
    path: Path, out_shape_for: Any, *, slice_index: int, max_elements: int | None
) -> tuple[np.ndarray, fits_io.ImageInfo, int, tuple[int, int]]:
    """Read a plane reduced to just above the size ``out_shape_for(ny, nx)`` and resize it exactly.

    Returns the finite float32 image, the header info, the slice used and the output shape.
    """
    info = fits_io.image_info(path)
    if max_elements is not None:
        fits_io.check_elements(info, max_elements)
    out_shape = out_shape_for(info.ny, info.nx)
    plane = fits_io.read_plane(
        path,
        info=info,
        slice_index=slice_index,
        factor=block_factor(info.ny, info.nx, out_shape),
    )
    data = _require_finite(plane.data)
    return resize(data, out_shape), info, plane.slice_index, out_shape


def _require_finite(data: np.ndarray) -> np.ndarray:
    """Replace NaN/Inf by 0 in place; :class:`NoImageDataError` (400) when no pixel is finite."""
    if not np.isfinite(data).any():
        raise NoImageDataError("No finite pixel values in the image data")
    return fits_io.finite_or_zero(data)


def _smooth(data: np.ndarray, display: DisplayParams) -> np.ndarray:
    if not display.smooth_method:
        return data
    try:
        return filters.smooth(data, display.smooth_method, sigma=display.smooth_sigma, size=display.smooth_size)
    except (ValueError, RuntimeError, MemoryError) as error:  # the contract: smoothing failures are ignored
        logger.warning("smoothing_failed", extra={"method": display.smooth_method, "error": type(error).__name__})
        return data


def _stretch(data: np.ndarray, display: DisplayParams) -> np.ndarray:
    """Stretch, levels and gamma into ``[0, 1]``; a failing stretch falls back to zscale."""
    try:
        x = enhancement.stretch(data, display.stretch, asinh_a=display.asinh_a, gamma=display.gamma)
    except (ValueError, FloatingPointError) as error:
        logger.warning("stretch_failed", extra={"stretch": display.stretch, "error": type(error).__name__})
        x = enhancement.stretch(data, "zscale")
    return enhancement.apply_levels(
        x,
        black_point=display.black_point,
        white_point=display.white_point,
        gamma=1.0 if display.stretch == "power" else display.gamma,
    )


def render_preview(path: Path, params: PreviewParams, max_elements: int) -> tuple[bytes, int, int]:
    """Job of ``GET /preview``: returns ``(image bytes, n_slices, slice used)``."""
    display = params.display
    data, info, used, out_shape = _read_fitted(
        path,
        lambda ny, nx: fit_box(ny, nx, params.width, params.height),
        slice_index=display.slice_index,
        max_elements=max_elements,
    )
    data = _smooth(data, display)
    x01 = _stretch(data, display)
    rgb = colormaps.apply_colormap(x01, params.cmap)[::-1]  # origin=lower
    xmp = None
    if params.embed_avm:
        wcs = fits_io.celestial_wcs(info.header)
        if wcs is not None:
            xmp = avm.avm_xmp(
                avm.display_wcs(wcs, (info.ny, info.nx), out_shape), out_shape, metadata=params.avm_metadata
            )
    if params.image_format == "jpeg":
        content = encoding.encode_jpeg(rgb, quality=params.quality, xmp=xmp)
    else:
        content = encoding.encode_png(rgb, xmp=xmp)
    n_slices = info.n_slices if info.is_cube else 1
    return content, n_slices, used if info.is_cube else 0


def render_thumbnail(path: Path) -> bytes:
    """Job of ``POST /thumbnail``: a PNG that fits 256 x 256, zscale (linear if that fails), gray."""
    data, _, _, _ = _read_fitted(
        path, lambda ny, nx: fit_box(ny, nx, THUMBNAIL_SIZE, THUMBNAIL_SIZE), slice_index=-1, max_elements=None
    )
    try:
        x01 = enhancement.stretch(data, "zscale")
    except (ValueError, FloatingPointError):
        x01 = enhancement.stretch(data, "linear")
    gray = colormaps.apply_gray(x01)[::-1]
    return encoding.encode_png(gray)


def _histogram_keys(values: dict[float, float | None]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in HISTOGRAM_PERCENTILES:  # ascending, so 99.5 overwrites 99 under "p99" (quirk 14)
        value = values.get(p)
        out[f"p{int(p)}"] = float(value) if value is not None else 0.0
    return out


def compute_histogram(path: Path, display: DisplayParams, bins: int, max_elements: int) -> dict[str, Any]:
    """Job of ``GET /histogram``: raw and stretched histograms, percentiles and stats (JSON-ready)."""
    info = fits_io.image_info(path)
    fits_io.check_elements(info, max_elements)
    plane = fits_io.read_plane(
        path, info=info, slice_index=display.slice_index, max_side=HISTOGRAM_MAX_SIDE, method="stride"
    )
    data = _smooth(_require_finite(plane.data), display)
    lo, hi = float(data.min()), float(data.max())
    raw = enhancement.normalize(data, lo, hi if hi > lo else lo + 1.0)
    raw_hist = statistics.histogram(raw, bins=bins)
    del raw
    x01 = _stretch(data, display)
    np.clip(x01, 0.0, 1.0, out=x01)
    basic = statistics.basic_stats(x01)
    return {
        "histogram": statistics.histogram(x01, bins=bins),
        "raw_histogram": raw_hist,
        "percentiles": _histogram_keys(statistics.percentiles(x01, HISTOGRAM_PERCENTILES)),
        "stats": {k: float(basic[k] or 0.0) for k in ("min", "max", "mean", "std")},
        "cube_info": {
            "n_slices": info.n_slices if info.is_cube else 1,
            "current_slice": plane.slice_index if info.is_cube else 0,
        },
    }


def _num(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def pixel_wcs(header: Any) -> dict[str, Any] | None:
    """The contract's flat WCS block (CDELT falls back to CD, CD to PC x CDELT); ``None`` without a WCS."""
    crpix1, crval1 = _num(header.get("CRPIX1")), _num(header.get("CRVAL1"))
    if crpix1 == 0.0 and crval1 == 0.0:
        return None
    cdelt = [_num(header.get("CDELT1"), math.nan), _num(header.get("CDELT2"), math.nan)]
    has_cd = any(f"CD{i}_{j}" in header for i in (1, 2) for j in (1, 2))
    cd = [[0.0, 0.0], [0.0, 0.0]]
    for i in (1, 2):
        for j in (1, 2):
            if has_cd:
                cd[i - 1][j - 1] = _num(header.get(f"CD{i}_{j}"))
            else:
                pc = _num(header.get(f"PC{i}_{j}"), 1.0 if i == j else 0.0)
                cd[i - 1][j - 1] = pc * (cdelt[i - 1] if math.isfinite(cdelt[i - 1]) else 1.0)
    cdelt1 = cdelt[0] if math.isfinite(cdelt[0]) else cd[0][0]
    cdelt2 = cdelt[1] if math.isfinite(cdelt[1]) else cd[1][1]
    return {
        "crpix1": crpix1,
        "crpix2": _num(header.get("CRPIX2")),
        "crval1": crval1,
        "crval2": _num(header.get("CRVAL2")),
        "cdelt1": cdelt1,
        "cdelt2": cdelt2,
        "cd1_1": cd[0][0],
        "cd1_2": cd[0][1],
        "cd2_1": cd[1][0],
        "cd2_2": cd[1][1],
        "ctype1": str(header.get("CTYPE1", "")),
        "ctype2": str(header.get("CTYPE2", "")),
    }


def pixel_data(path: Path, max_size: int, slice_index: int, max_elements: int) -> dict[str, Any]:
    """Job of ``GET /pixeldata``: the plane at most ``max_size`` on its longer side, float32 LE base64."""
    scale = 1.0

    def shape_for(ny: int, nx: int) -> tuple[int, int]:
        nonlocal scale
        longer = max(ny, nx)
        if longer <= max_size:
            return ny, nx
        scale = longer / max_size
        return max(1, round(ny / scale)), max(1, round(nx / scale))

    data, info, _, out_shape = _read_fitted(path, shape_for, slice_index=slice_index, max_elements=max_elements)
    pixels = np.ascontiguousarray(data, dtype="<f4")
    bunit = info.header.get("BUNIT")
    return {
        "original_shape": [info.ny, info.nx],
        "preview_shape": [int(out_shape[0]), int(out_shape[1])],
        "scale_factor": float(scale),
        "wcs": pixel_wcs(info.header),
        "units": str(bunit).strip() if bunit is not None else "",
        "pixels": base64.b64encode(pixels.tobytes()).decode("ascii"),
    }


_UNITS = {
    "m": "m",
    "meter": "m",
    "meters": "m",
    "um": "um",
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "µm": "um",
    "nm": "nm",
    "nanometer": "nm",
    "a": "A",
    "angstrom": "A",
    "angstroms": "A",
    "hz": "Hz",
}


def slice_label(ctype3: str) -> str:
    """Human label of the third axis from CTYPE3 (contract 6.5)."""
    upper = ctype3.upper()
    if "WAVE" in upper or "LAMB" in upper:
        return "Wavelength"
    if "FREQ" in upper:
        return "Frequency"
    if "VELO" in upper or "VRAD" in upper or "VOPT" in upper:
        return "Velocity"
    if "TIME" in upper or "MJD" in upper:
        return "Time"
    return ctype3.strip() or "Frame"


def slice_unit(cunit3: str) -> str:
    """CUNIT3 normalised to ``m, um, nm, A, Hz`` where recognised, else the raw value."""
    raw = cunit3.strip()
    return _UNITS.get(raw.lower(), raw)


def cube_info(path: Path) -> dict[str, Any]:
    """Job of ``GET /cubeinfo``: headers only."""
    try:
        info = fits_io.image_info(path, min_ndim=3)
    except NoImageDataError:
        return {"is_cube": False, "n_slices": 1, "axis3": None, "slice_unit": "", "slice_label": "Frame"}
    header = info.header
    ctype3 = str(header.get("CTYPE3", "") or "")
    cunit3 = str(header.get("CUNIT3", "") or "")
    axis3 = None
    step = header.get("CDELT3", header.get("CD3_3"))
    if "CRVAL3" in header and step is not None:
        axis3 = {
            "crval3": _num(header.get("CRVAL3")),
            "cdelt3": _num(step),
            "crpix3": _num(header.get("CRPIX3"), 1.0),
            "cunit3": cunit3,
            "ctype3": ctype3,
        }
    return {
        "is_cube": True,
        "n_slices": int(info.n_slices),
        "axis3": axis3,
        "slice_unit": slice_unit(cunit3),
        "slice_label": slice_label(ctype3),
    }
