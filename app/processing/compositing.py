"""Colour compositing of channels already reprojected onto one grid.

Pure numeric core for the N-channel composite (``POST /composite/generate-nchannel``):

* :func:`co_add` averages several reprojected files of one channel with coverage weights;
* :func:`channel_display` turns one channel into display values in ``[0, 1]``: robust
  normalisation (0.1 / 99.9 percentiles of the covered pixels, never the raw min/max, so hot pixels
  cannot darken the image), the shared stretches, levels, gamma and tone curve (the result is
  treated as linear intensity); or an automatic stretch (:func:`auto_stretch_params`) that picks
  the normalisation and asinh softening from the sky noise and dynamic range;
* :func:`neutralize_sky` (background neutralisation) brings the stretched sky of every colour
  channel to one level, so the sky of the composite has no colour cast: subtracting each channel's
  sky before the limits cannot do it, since the limits are relative to the data;
* :func:`mix_linear` maps hue or RGB colours in linear light, blends an optional LRGB luminance
  channel and normalises by one global maximum (keeps colour ratios), into ``3 x H x W`` planes;
* :func:`auto_expose` keeps the median brightness of the covered pixels inside a display band (a
  power law on each pixel's brightest component that keeps its colour and fixes black and white),
  so low-dynamic-range data such as a cutout inside a galaxy is not washed out and a sparse field
  is not black;
* :func:`srgb8` applies the sRGB transfer straight to 8 bits through a table (:func:`srgb_encode`
  gives float values; :func:`mix_channels` is mixing, exposure and transfer in one call);
* :func:`apply_overall` applies the composite-wide stretch and levels;
* :func:`letterbox_planes` flips for display (FITS origin is lower-left), resizes keeping the sky's
  aspect ratio and centres the result on a black canvas of exactly the requested size.

Everything works on float32 planes, one contiguous array per colour component, and the per-pixel
steps run on row bands, ``threads`` at once (:mod:`app.processing.parallel`); statistics (limits,
sky levels, the exposure median) come from grid samples of the whole image, so the result does
not depend on the number of threads.
"""

from __future__ import annotations

import colorsys
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from app.processing.enhancement import (
    MAX_SAMPLES,
    STRETCH_NAMES,
    LimitsMethod,
    StretchSettings,
    apply_curve,
    display_limits,
    grid_stride,
    sample_finite,
)
from app.processing.geometry import fit_size
from app.processing.parallel import map_in_threads, row_bands

#: Percentiles of covered pixels used as display limits.
LOWER_PERCENTILE = 0.1
UPPER_PERCENTILE = 99.9
#: Linear level the automatic stretch gives to the sky (about 64/255 after the sRGB transfer).
AUTO_SKY_LEVEL = 0.05
#: Rec. 709 luminance weights for linear RGB.
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
#: Band of the median linear brightness (largest RGB component) of covered pixels kept by
#: :func:`auto_expose` (about 40/255 to 90/255 after the sRGB transfer).
EXPOSURE_LOW = 0.02
EXPOSURE_HIGH = 0.10
#: Covered pixels (an even grid) a channel's sky level is estimated from in :func:`neutralize_sky`:
#: the median of 250 000 values is within a few thousandths of the noise of the exact one.
SKY_SAMPLES = 250_000


#: Stretch of a channel when none is given: asinh with a soft knee.
DEFAULT_CHANNEL_TONES = StretchSettings("asinh", asinh_a=0.05)
#: The channel stretch that picks its own parameters (:func:`auto_stretch_params`).
AUTO_STRETCH = "auto"


@dataclass(frozen=True)
class ChannelStyle:
    """How one channel is displayed (its tones: stretch and levels, and a tone curve) and coloured."""

    tones: StretchSettings = DEFAULT_CHANNEL_TONES
    curve: str = "linear"
    weight: float = 1.0
    hue: float | None = None
    rgb: tuple[float, float, float] | None = None
    luminance: bool = False


@dataclass(frozen=True)
class AutoStretch:
    """Parameters chosen by :func:`auto_stretch_params`."""

    vmin: float
    vmax: float
    asinh_a: float
    sky: float
    noise: float

    def describe(self) -> str:
        """Summarize the parameters as ``asinh_a=...,vmin=...,vmax=...,noise=...``."""
        return f"asinh_a={self.asinh_a:.4g},vmin={self.vmin:.4g},vmax={self.vmax:.4g},noise={self.noise:.3g}"


def co_add(total: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted mean ``total / weight`` in place on ``total``; NaN where ``weight`` is 0."""
    covered = weight > 0
    np.divide(total, weight, out=total, where=covered)
    total[~covered] = np.nan
    return total


def sky_stats(data: np.ndarray, *, max_samples: int = 500_000) -> tuple[float, float]:
    """Sigma-clipped median and standard deviation of the covered (finite) pixels."""
    from astropy.stats import sigma_clipped_stats

    sample = sample_finite(data, max_samples=max_samples)
    if sample.size == 0:
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, median, std = sigma_clipped_stats(sample, sigma=3.0, maxiters=5)
    median = float(median) if np.isfinite(median) else 0.0
    std = float(std) if np.isfinite(std) and std > 0 else 0.0
    return median, std


def _asinh_level(x: float, a: float) -> float:
    return math.asinh(x / a) / math.asinh(1.0 / a)


def auto_stretch_params(data: np.ndarray, *, sky_level: float = AUTO_SKY_LEVEL) -> AutoStretch:
    """Pick display limits and an asinh softening from the data's noise and dynamic range.

    The black level sits 2 sigma below the sky, the white level at the 99.9th percentile of covered
    pixels, and ``asinh_a`` is chosen (bisection on a log scale) so the sky lands at ``sky_level``.
    """
    sky, noise = sky_stats(data)
    _, vmax = display_limits(data, method="percentile", lower=LOWER_PERCENTILE, upper=UPPER_PERCENTILE)
    if noise <= 0:
        noise = max(abs(vmax - sky) * 1e-3, 1e-12)
    vmin = sky - 2.0 * noise
    if not vmax > vmin:
        vmax = vmin + 10.0 * noise
    x_sky = (sky - vmin) / (vmax - vmin)
    lo, hi = math.log(1e-4), math.log(1.0)
    if _asinh_level(x_sky, 1.0) >= sky_level:
        a = 1.0
    elif _asinh_level(x_sky, 1e-4) <= sky_level:
        a = 1e-4
    else:
        for _ in range(60):
            mid = (lo + hi) / 2
            if _asinh_level(x_sky, math.exp(mid)) > sky_level:
                lo = mid
            else:
                hi = mid
        a = math.exp((lo + hi) / 2)
    return AutoStretch(vmin=vmin, vmax=vmax, asinh_a=a, sky=sky, noise=noise)


def channel_display(
    data: np.ndarray, style: ChannelStyle, *, threads: int = 1
) -> tuple[np.ndarray, AutoStretch | None]:
    """Display values in ``[0, 1]`` of one channel (0 where not covered) and the auto parameters, if any.

    ``style.tones.stretch == "auto"`` selects :func:`auto_stretch_params`; other names must be in
    :data:`~app.processing.enhancement.STRETCH_NAMES`. The limits come from a sample of the whole
    channel; the stretch is then applied to row bands, ``threads`` at once (``histeq``, whose curve
    comes from the stretched values themselves, runs on the whole array).
    """
    auto: AutoStretch | None = None
    tones = style.tones
    if tones.stretch == AUTO_STRETCH:
        auto = auto_stretch_params(data)
        name, asinh_a, limits = "asinh", auto.asinh_a, (auto.vmin, auto.vmax)
    else:
        if tones.stretch not in STRETCH_NAMES:
            raise ValueError(f"unknown stretch {tones.stretch!r}")
        method: LimitsMethod = "zscale" if tones.stretch == "zscale" else "percentile"
        name, asinh_a = tones.stretch, tones.asinh_a
        limits = display_limits(data, method=method, lower=LOWER_PERCENTILE, upper=UPPER_PERCENTILE)
    settings = replace(tones, stretch=name, asinh_a=asinh_a)
    x = np.empty(data.shape, dtype=np.float32)

    def band(rows: slice) -> None:
        part = x[rows]
        part[...] = data[rows]
        settings.apply(part, limits=limits, out=part)
        if style.curve != "linear":  # the stretch leaves values in [0, 1]: the linear curve changes nothing
            part[...] = apply_curve(part, style.curve)

    if name == "histeq" or x.ndim != 2:
        band(slice(None))
    else:
        map_in_threads(band, row_bands(x.shape), threads)
    return x, auto


def covered_sample(x: np.ndarray, covered: np.ndarray, *, max_samples: int = MAX_SAMPLES) -> np.ndarray:
    """Values of ``x`` at covered pixels of an even grid of at most about ``max_samples`` pixels (1-D)."""
    stride = grid_stride(x.shape, max_samples)
    return np.asarray(x[::stride, ::stride][covered[::stride, ::stride]])


def neutralize_sky(
    displays: Sequence[np.ndarray], covered: Sequence[np.ndarray], *, threads: int = 1
) -> list[np.ndarray]:
    """Bring the sky of every channel's display values to one level (in place); returns the displays.

    Each channel's sky is the sigma-clipped median of its covered display values (a grid sample of
    about :data:`SKY_SAMPLES`).
    The common level is the darkest channel's sky, so no sky is lifted; a channel whose sky is
    brighter is remapped by ``target + (x - sky) * (1 - target) / (1 - sky)`` (sky to the common
    level, white stays white, anything darker than its sky clipped at black). Equal skies in
    channels of a balanced palette (red, green, blue) make a grey sky.
    """

    def sky_of(pair: tuple[np.ndarray, np.ndarray]) -> float:
        sample = covered_sample(*pair, max_samples=SKY_SAMPLES)
        sky, _ = sky_stats(sample) if sample.size else (0.0, 0.0)
        return min(max(sky, 0.0), 1.0)

    skies = map_in_threads(sky_of, list(zip(displays, covered, strict=True)), threads)
    if not skies:
        return list(displays)
    target = min(skies)
    parts = []
    for x, sky in zip(displays, skies, strict=True):
        if target < sky < 1.0:
            gain = np.float32((1.0 - target) / (1.0 - sky))
            parts += [(x, sky, gain, rows) for rows in row_bands(x.shape)]

    def remap(part: tuple[np.ndarray, float, np.float32, slice]) -> None:
        x, sky, gain, rows = part
        band = x[rows]
        band -= np.float32(sky)
        band *= gain
        band += np.float32(target)
        np.clip(band, 0.0, 1.0, out=band)

    map_in_threads(remap, parts, threads)
    return list(displays)


def srgb_decode(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in ``[0, 1]`` to linear light (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _srgb_encode_exact(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1.0 / 2.4) - 0.055)


#: Lookup table of the sRGB encoding on a 2^16 grid (input error 8e-6, far below an 8-bit level).
SRGB_LUT_SIZE = 1 << 16
_SRGB_LUT = _srgb_encode_exact(np.linspace(0.0, 1.0, SRGB_LUT_SIZE)).astype(np.float32)
#: The same table quantised to 8 bits (the value an output pixel gets).
_SRGB8_LUT = np.rint(_SRGB_LUT.astype(np.float64) * 255.0).astype(np.uint8)


def _lut_index(x: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Nearest index into a :data:`SRGB_LUT_SIZE` table of values in ``[0, 1]`` (clipped), into ``out`` (uint16)."""
    np.clip(x, 0.0, 1.0, out=scratch)
    scratch *= np.float32(SRGB_LUT_SIZE - 1)
    scratch += np.float32(0.5)
    np.copyto(out, scratch, casting="unsafe")
    return out


def srgb_encode(x: np.ndarray) -> np.ndarray:
    """Linear light in ``[0, 1]`` to sRGB-encoded values (float32), through a lookup table."""
    x = np.asarray(x, dtype=np.float32)
    index = _lut_index(x, np.empty(x.shape, dtype=np.uint16), np.empty(x.shape, dtype=np.float32))
    encoded: np.ndarray = _SRGB_LUT[index]
    return encoded


def srgb8(planes: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """Linear light in ``[0, 1]`` to 8-bit sRGB (same shape, uint8) through a table, by row bands of each plane."""
    planes = np.asarray(planes, dtype=np.float32)
    out = np.empty(planes.shape, dtype=np.uint8)
    stack = planes.reshape(-1, *planes.shape[-2:]) if planes.ndim > 2 else planes[None]
    target = out.reshape(stack.shape)

    def band(part: tuple[int, slice]) -> None:
        k, rows = part
        source = stack[k, rows]
        index = _lut_index(source, np.empty(source.shape, np.uint16), np.empty(source.shape, np.float32))
        # mode="clip": with the default "raise" numpy buffers `out`; the indices are in range
        np.take(_SRGB8_LUT, index, out=target[k, rows], mode="clip")

    map_in_threads(band, [(k, rows) for k in range(len(stack)) for rows in row_bands(stack.shape)], threads)
    return out


def channel_color(style: ChannelStyle) -> np.ndarray:
    """Resolve the display RGB colour (in ``[0, 1]``) of a colour channel: full-saturation hue or explicit RGB."""
    if style.rgb is not None:
        return np.clip(np.asarray(style.rgb, dtype=np.float32), 0.0, 1.0)
    if style.hue is not None:
        return np.asarray(colorsys.hsv_to_rgb((style.hue % 360.0) / 360.0, 1.0, 1.0), dtype=np.float32)
    raise ValueError("a colour channel needs a hue or an rgb colour")


def _blend_luminance(planes: np.ndarray, luminance: tuple[np.ndarray, ChannelStyle], rows: slice) -> float:
    """Give each pixel of a band the luminance channel's brightness, keeping its colour; returns the band's max."""
    lum_x, lum_style = luminance
    strength = np.float32(min(max(lum_style.weight, 0.0), 1.0))
    target = np.asarray(lum_x[rows], dtype=np.float32)
    current = LUMA[0] * planes[0] + LUMA[1] * planes[1] + LUMA[2] * planes[2]
    grey = current <= 1e-6
    ratio = np.divide(target, current, out=np.zeros_like(target), where=~grey)
    ratio *= strength
    ratio += np.float32(1.0) - strength  # (1 - s) * rgb + s * rgb * ratio
    planes *= ratio
    planes[:, grey] += strength * target[grey]  # grey pixels (no colour to keep) take the target as grey
    return float(planes.max()) if planes.size else 0.0


def _add_scaled(plane: np.ndarray, lin: np.ndarray, scale: np.float32, *, first: bool) -> None:
    """``plane = lin * scale`` (``first``) or ``plane += lin * scale``, without a temporary when ``scale`` is 1."""
    unit = abs(float(scale) - 1.0) < 1e-6
    if first:
        np.copyto(plane, lin) if unit else np.multiply(lin, scale, out=plane)
    elif unit:
        plane += lin
    else:
        plane += lin * scale


def mix_linear(
    displays: Sequence[np.ndarray],
    styles: Sequence[ChannelStyle],
    *,
    luminance: tuple[np.ndarray, ChannelStyle] | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Combine colour channels (and an optional luminance channel) into linear light, ``3 x H x W`` float32.

    The stretched channel values are treated as linear intensities: each is scaled by its colour
    (converted to linear light) and weight and added; the sum is divided by its global maximum when
    that exceeds 1 (one factor for all three components keeps the colour ratios). A luminance
    channel then sets each pixel's Rec. 709 luminance, by its weight (0 to 1), keeping its colour.
    Planar (one contiguous plane per component) and by row bands, ``threads`` at once.
    """
    if not displays:
        raise ValueError("at least one colour channel is required")
    planes = np.empty((3, *displays[0].shape), dtype=np.float32)
    colours = [srgb_decode(channel_color(style)) * np.float32(style.weight) for style in styles]
    bands = row_bands(planes.shape)

    def mix(rows: slice) -> float:
        filled = [False, False, False]
        for lin, colour in zip(displays, colours, strict=True):
            for k in np.flatnonzero(colour):
                _add_scaled(planes[k, rows], lin[rows], colour[k], first=not filled[k])
                filled[k] = True
        for plane, was_filled in zip(planes, filled, strict=True):
            if not was_filled:
                plane[rows] = 0.0
        return float(planes[:, rows].max()) if planes[:, rows].size else 0.0

    _divide_by_peak(planes, max(map_in_threads(mix, bands, threads), default=0.0), bands, threads)
    if luminance is not None:
        peaks = map_in_threads(lambda rows: _blend_luminance(planes[:, rows], luminance, rows), bands, threads)
        _divide_by_peak(planes, max(peaks, default=0.0), bands, threads)
    return planes


def _divide_by_peak(planes: np.ndarray, peak: float, bands: list[slice], threads: int) -> None:
    """Divide by the global maximum when it exceeds 1 (one factor keeps the colour ratios)."""
    if peak > 1.0:

        def divide(rows: slice) -> None:
            planes[:, rows] /= np.float32(peak)

        map_in_threads(divide, bands, threads)


def mix_channels(
    displays: Sequence[np.ndarray],
    styles: Sequence[ChannelStyle],
    *,
    luminance: tuple[np.ndarray, ChannelStyle] | None = None,
    covered: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`mix_linear`, then :func:`auto_expose` when ``covered`` is given, then the sRGB transfer.

    Returns an ``H x W x 3`` float image in ``[0, 1]`` (sRGB-encoded): the transfer lifts faint
    signal out of the black. The composite job keeps the planes and goes to 8 bits directly
    (:func:`srgb8`).
    """
    planes = mix_linear(displays, styles, luminance=luminance)
    if covered is not None:
        auto_expose(planes, covered)
    return np.moveaxis(srgb_encode(planes), 0, -1)


def has_default_tones(style: ChannelStyle) -> bool:
    """Whether a channel keeps the default black/white points, gamma and tone curve."""
    tones = style.tones
    return (tones.black_point, tones.white_point, tones.gamma, style.curve) == (0.0, 1.0, 1.0, "linear")


def auto_expose(
    planes: np.ndarray,
    covered: np.ndarray,
    *,
    low: float = EXPOSURE_LOW,
    high: float = EXPOSURE_HIGH,
    threads: int = 1,
) -> np.ndarray:
    """Bring the median linear brightness of the covered pixels into ``[low, high]`` (in place, ``3 x H x W``).

    A pixel's brightness ``V`` is its largest RGB component (so permuting colours permutes the result
    exactly). ``V`` becomes ``V ** g`` with ``g`` chosen so the median (of a grid sample of the
    covered pixels) lands on the nearest band edge; the pixel's RGB is scaled by ``V ** g / V``, which
    keeps its colour ratios; black stays black, 1 stays 1 and no component can exceed 1. Images whose
    median is already inside the band, or that have no covered signal, are returned unchanged.
    """
    mask = np.asarray(covered, dtype=bool)
    stride = grid_stride(mask.shape, MAX_SAMPLES)
    sampled = planes[:, ::stride, ::stride]
    values = np.maximum(np.maximum(sampled[0], sampled[1]), sampled[2])[mask[::stride, ::stride]]
    if not values.size:
        return planes
    median = float(np.median(values))
    if not 0.0 < median < 1.0 or low <= median <= high:
        return planes
    target = high if median > high else low
    exponent = np.float32(math.log(target) / math.log(median) - 1.0)

    def expose(rows: slice) -> None:
        band = planes[:, rows]
        factor = np.maximum(band[0], band[1])
        np.maximum(factor, band[2], out=factor)
        # V ** (g - 1) as exp(log(V) * (g - 1)) (numpy's float32 power is slower); V is kept above
        # 1e-12 so black pixels get a finite factor (at most 1e12, since g - 1 > -1) times 0
        np.maximum(factor, np.float32(1e-12), out=factor)
        np.log(factor, out=factor)
        factor *= exponent
        np.exp(factor, out=factor)
        band *= factor
        np.clip(band, 0.0, 1.0, out=band)  # rounding only

    map_in_threads(expose, row_bands(planes.shape), threads)
    return planes


def apply_overall(rgb: np.ndarray, settings: StretchSettings) -> np.ndarray:
    """Composite-wide stretch and levels on an ``H x W x 3`` image in ``[0, 1]`` (one set of limits)."""
    if settings.stretch == "linear" and (settings.black_point, settings.white_point, settings.gamma) == (0, 1, 1):
        return rgb
    limits = display_limits(rgb, method="zscale") if settings.stretch == "zscale" else (0.0, 1.0)
    return settings.apply(rgb, limits=limits, out=rgb)


def letterbox(rgb01: np.ndarray, width: int, height: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """:func:`letterbox_planes` of an ``H x W x 3`` float image in ``[0, 1]`` (quantised to 8 bits first)."""
    pixels = np.rint(np.clip(np.moveaxis(np.asarray(rgb01, dtype=np.float32), -1, 0), 0.0, 1.0) * np.float32(255.0))
    return letterbox_planes(pixels.astype(np.uint8), width, height)


def letterbox_planes(planes8: np.ndarray, width: int, height: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Flip for display, resize (LANCZOS) keeping the aspect ratio, centre on a black ``height x width`` canvas.

    ``planes8`` is ``3 x H x W`` uint8 with row 0 at the bottom of the sky (FITS order). Returns the
    ``height x width x 3`` uint8 image and ``(top, left, content_height, content_width)``.
    """
    from PIL import Image

    size = (int(planes8.shape[1]), int(planes8.shape[2]))
    h, w = fit_size(size, width, height)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - h) // 2, (width - w) // 2
    target = canvas[top : top + h, left : left + w] if (h, w) == size else np.empty((*size, 3), dtype=np.uint8)
    for k in range(3):
        target[..., k] = planes8[k, ::-1]
    if (h, w) != size:
        resized = Image.fromarray(target, mode="RGB").resize((w, h), Image.Resampling.LANCZOS)
        canvas[top : top + h, left : left + w] = np.asarray(resized)
    return canvas, (top, left, h, w)
