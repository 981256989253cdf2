"""Display stretches, levels, gamma and tone curves: one implementation for every module.

The pipeline for turning pixel values into display values in ``[0, 1]`` is:

1. :func:`display_limits` picks ``(vmin, vmax)`` from a bounded sample that covers the whole
   image (zscale, robust percentiles or min/max), never from a full sort of a large image; callers
   that render one file at several sizes compute the sample once at full resolution
   (:func:`sample_finite`, :func:`limits_of_sample`), so the limits do not depend on the output size;
2. :func:`stretch` normalises to those limits and applies the named curve (table :data:`STRETCHES`);
3. :func:`apply_levels` maps black/white points (levels in stretched space) and gamma;
4. :func:`apply_curve` applies an optional tone curve (table :data:`CURVES`).

:func:`stretch_image` runs 1-3 in one call; :class:`StretchSettings` holds its parameters for jobs
that carry one stretch (a mosaic's rendering, a composite's overall adjustment). Everything works
in float32 and, where it can, in place on a caller-owned array.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

StretchName = Literal["zscale", "asinh", "log", "sqrt", "power", "histeq", "linear"]
CurveName = Literal["linear", "s_curve", "inverse_s", "shadows", "highlights"]
LimitsMethod = Literal["zscale", "percentile", "minmax"]

STRETCH_NAMES: tuple[str, ...] = get_args(StretchName)
CURVE_NAMES: tuple[str, ...] = get_args(CurveName)

#: Samples used to estimate display limits (a grid sample, not a full sort).
MAX_SAMPLES = 1_000_000
#: Values the zscale fit uses (drawn at random from the sample; astropy's default is 1000, whose
#: limits scatter by several percent of their span between draws, 20 000 by about 1 %).
ZSCALE_SAMPLES = 20_000
LOG_A = 1000.0
HISTEQ_BINS = 4096


def grid_stride(shape: tuple[int, ...], max_samples: int) -> int:
    """Equal row and column stride that leaves at most about ``max_samples`` pixels of a 2-D array."""
    size = math.prod(shape)
    return max(1, math.ceil(math.sqrt(size / max_samples))) if size > max_samples else 1


def sample_finite(data: np.ndarray, *, max_samples: int = MAX_SAMPLES, blank_zero: bool = False) -> np.ndarray:
    """Take a sample of at most ~``max_samples`` finite values that covers all of ``data`` (float64, 1-D).

    A 2-D image is sampled on a grid with the same stride along rows and columns, so every part of
    the image is represented whatever its width (a stride over the flattened array can fall on one
    column). Other shapes are strided as a flat array. With ``blank_zero``, values exactly 0 count
    as blank (the fill of undefined pixels in float images, such as the border of a mosaic) and are
    left out, unless nothing else is left.
    """
    if data.ndim == 2:
        stride = grid_stride(data.shape, max_samples)
        picked = data[::stride, ::stride].reshape(-1)
    else:
        flat = data.reshape(-1)
        picked = flat[:: max(1, flat.size // max_samples)]
    sample = np.asarray(picked, dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if blank_zero:
        nonzero = sample[sample != 0.0]
        if nonzero.size:
            sample = nonzero
    return sample


def zscale_limits(
    sample: np.ndarray, *, contrast: float = 0.25, n_samples: int = ZSCALE_SAMPLES
) -> tuple[float, float]:
    """IRAF zscale limits (astropy's ZScaleInterval) of a 1-D finite sample.

    ZScaleInterval takes every n-th value of what it is given; on values that come row by row from
    an image that stride can fall on one column. Here at most ``n_samples`` values are drawn at
    random positions (a fixed seed, so the same sample gives the same limits) and all of them are
    used.
    """
    from astropy.visualization import ZScaleInterval

    if sample.size == 0:
        return 0.0, 1.0
    if sample.size > n_samples:
        picks = np.random.default_rng(0).choice(sample.size, n_samples, replace=False)
        sample = sample[picks]
    vmin, vmax = ZScaleInterval(n_samples=sample.size, contrast=contrast).get_limits(sample)
    return float(vmin), float(vmax)


def limits_of_sample(
    sample: np.ndarray, method: LimitsMethod = "percentile", *, lower: float = 0.1, upper: float = 99.9
) -> tuple[float, float]:
    """Return ``(vmin, vmax)`` of a 1-D finite sample (see :func:`sample_finite`); ``(0, 1)`` when empty."""
    if not 0.0 <= lower < upper <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}")
    if sample.size == 0:
        return 0.0, 1.0
    if method == "zscale":
        vmin, vmax = zscale_limits(sample)
    elif method == "minmax":
        vmin, vmax = float(sample.min()), float(sample.max())
    elif method == "percentile":
        vmin, vmax = (float(v) for v in np.percentile(sample, [lower, upper]))
    else:
        raise ValueError(f"unknown limits method {method!r}")
    if not vmax > vmin:
        vmax = vmin + 1.0
    return vmin, vmax


def display_limits(
    data: np.ndarray,
    *,
    method: LimitsMethod = "percentile",
    lower: float = 0.1,
    upper: float = 99.9,
    max_samples: int = MAX_SAMPLES,
    blank_zero: bool = False,
) -> tuple[float, float]:
    """Return ``(vmin, vmax)`` for display from a sample of ``data``; ``(0, 1)`` when there is no finite pixel."""
    if not 0.0 <= lower < upper <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}")
    sample = sample_finite(data, max_samples=max_samples, blank_zero=blank_zero)
    return limits_of_sample(sample, method, lower=lower, upper=upper)


def normalize(data: np.ndarray, vmin: float, vmax: float, *, out: np.ndarray | None = None) -> np.ndarray:
    """Map ``data`` to ``(data - vmin) / (vmax - vmin)`` clipped to ``[0, 1]``; NaN becomes 0. float32."""
    if out is None:
        out = np.array(data, dtype=np.float32, copy=True)
    elif out is not data:
        out[...] = data
    span = np.float32(vmax - vmin if vmax > vmin else 1.0)
    out -= np.float32(vmin)
    out /= span
    np.fmax(out, np.float32(0.0), out=out)  # NaN and -inf become 0 (fmax ignores NaN)
    np.fmin(out, np.float32(1.0), out=out)  # +inf becomes 1
    return out


def _linear(x: np.ndarray, **_: float) -> np.ndarray:
    return x


def _sqrt(x: np.ndarray, **_: float) -> np.ndarray:
    np.sqrt(x, out=x)
    return x


def _asinh(x: np.ndarray, *, asinh_a: float = 0.1, **_: float) -> np.ndarray:
    # asinh(z) = log(z + sqrt(z^2 + 1)) for z >= 0 (x is in [0, 1]): numpy's float32 arcsinh is about
    # ten times slower than log and sqrt, and this form's absolute error (what a display level sees)
    # stays at float32 rounding
    x *= np.float32(1.0 / asinh_a)
    root = np.square(x)
    root += np.float32(1.0)
    np.sqrt(root, out=root)
    x += root
    np.log(x, out=x)
    x *= np.float32(1.0 / math.asinh(1.0 / asinh_a))
    return x


def _log(x: np.ndarray, **_: float) -> np.ndarray:
    x *= np.float32(LOG_A)
    np.log1p(x, out=x)
    x /= np.float32(math.log1p(LOG_A))
    return x


def _power(x: np.ndarray, *, gamma: float = 1.0, **_: float) -> np.ndarray:
    np.power(x, np.float32(1.0 / gamma), out=x)
    return x


def _histeq(x: np.ndarray, **_: float) -> np.ndarray:
    sample = sample_finite(x)
    if sample.size == 0:
        return x
    counts, edges = np.histogram(sample, bins=HISTEQ_BINS, range=(0.0, 1.0))
    cdf = np.cumsum(counts, dtype=np.float64)
    cdf /= cdf[-1]
    flat = x.reshape(-1)
    flat[:] = np.interp(flat, edges[1:], cdf).astype(np.float32)
    return x


#: Curves applied to data already normalised to [0, 1]; each works in place and returns [0, 1].
STRETCHES: dict[str, Callable[..., np.ndarray]] = {
    "zscale": _linear,
    "linear": _linear,
    "sqrt": _sqrt,
    "asinh": _asinh,
    "log": _log,
    "power": _power,
    "histeq": _histeq,
}

#: How each stretch picks its normalisation limits.
LIMITS_FOR_STRETCH: dict[str, LimitsMethod] = {
    "zscale": "zscale",
    "linear": "minmax",
    "sqrt": "minmax",
    "asinh": "minmax",
    "log": "minmax",
    "power": "minmax",
    "histeq": "minmax",
}


def stretch(
    data: np.ndarray,
    name: str,
    *,
    asinh_a: float = 0.1,
    gamma: float = 1.0,
    limits: tuple[float, float] | None = None,
    limits_method: LimitsMethod | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Normalise ``data`` to display limits and apply the stretch ``name``; float32 in ``[0, 1]``.

    Parameters
    ----------
    data
        Image (any float dtype); NaN/Inf are treated as the black level.
    name
        One of :data:`STRETCH_NAMES`.
    asinh_a
        Softening of the asinh stretch (smaller = stronger).
    gamma
        For ``power`` only: the exponent is ``1 / gamma``.
    limits
        Explicit ``(vmin, vmax)``; otherwise chosen by ``limits_method`` or the stretch's default.
    out
        Optional float32 array to write into (may be ``data`` itself).
    """
    if name not in STRETCHES:
        raise ValueError(f"unknown stretch {name!r}; expected one of {', '.join(STRETCH_NAMES)}")
    if not asinh_a > 0.0:
        raise ValueError(f"asinh_a must be positive, got {asinh_a}")
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    if limits is None:
        limits = display_limits(data, method=limits_method or LIMITS_FOR_STRETCH[name])
    x = normalize(data, *limits, out=out)
    result = STRETCHES[name](x, asinh_a=asinh_a, gamma=gamma)
    np.clip(result, 0.0, 1.0, out=result)
    return result


def apply_levels(
    x: np.ndarray, *, black_point: float = 0.0, white_point: float = 1.0, gamma: float = 1.0
) -> np.ndarray:
    """Map ``[black_point, white_point]`` to ``[0, 1]`` (clipped), then apply ``x ** (1 / gamma)``. In place."""
    if not 0.0 <= black_point < white_point <= 1.0:
        raise ValueError(
            f"black_point and white_point must satisfy 0 <= black < white <= 1, got {black_point}, {white_point}"
        )
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    if black_point != 0.0 or white_point != 1.0:
        x -= np.float32(black_point)
        x /= np.float32(white_point - black_point)
        np.clip(x, 0.0, 1.0, out=x)
    if gamma != 1.0:
        np.power(x, np.float32(1.0 / gamma), out=x)
    return x


def _s_curve(x: np.ndarray) -> np.ndarray:
    # smoothstep: 3x^2 - 2x^3, steeper mid-tones
    curved: np.ndarray = x * x * (3.0 - 2.0 * x)
    return curved


def _inverse_s(x: np.ndarray) -> np.ndarray:
    # inverse of smoothstep: flatter mid-tones
    return (0.5 - np.sin(np.arcsin(np.clip(1.0 - 2.0 * x, -1.0, 1.0)) / 3.0)).astype(np.float32)


def _shadows(x: np.ndarray) -> np.ndarray:
    lifted: np.ndarray = np.power(x, np.float32(0.6))
    return lifted


def _highlights(x: np.ndarray) -> np.ndarray:
    lowered: np.ndarray = np.power(x, np.float32(1.6))
    return lowered


CURVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda x: x,
    "s_curve": _s_curve,
    "inverse_s": _inverse_s,
    "shadows": _shadows,
    "highlights": _highlights,
}


def apply_curve(x: np.ndarray, name: str) -> np.ndarray:
    """Apply the tone curve ``name`` to data in ``[0, 1]``."""
    if name not in CURVES:
        raise ValueError(f"unknown curve {name!r}; expected one of {', '.join(CURVE_NAMES)}")
    result = CURVES[name](x)
    return np.clip(result, 0.0, 1.0, out=result.astype(np.float32, copy=False))


@dataclass(frozen=True)
class StretchSettings:
    """A stretch name with its levels, gamma and asinh softening (the parameters of :func:`stretch_image`)."""

    stretch: str = "linear"
    black_point: float = 0.0
    white_point: float = 1.0
    gamma: float = 1.0
    asinh_a: float = 0.1

    def apply(
        self, data: np.ndarray, *, limits: tuple[float, float] | None = None, out: np.ndarray | None = None
    ) -> np.ndarray:
        """:func:`stretch_image` of ``data`` with these settings."""
        return stretch_image(
            data,
            self.stretch,
            asinh_a=self.asinh_a,
            gamma=self.gamma,
            black_point=self.black_point,
            white_point=self.white_point,
            limits=limits,
            out=out,
        )


def stretch_image(
    data: np.ndarray,
    name: str,
    *,
    asinh_a: float = 0.1,
    gamma: float = 1.0,
    black_point: float = 0.0,
    white_point: float = 1.0,
    limits: tuple[float, float] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Stretch, levels and gamma in one call (gamma is skipped for ``power``, which uses it itself)."""
    x = stretch(data, name, asinh_a=asinh_a, gamma=gamma, limits=limits, out=out)
    return apply_levels(x, black_point=black_point, white_point=white_point, gamma=1.0 if name == "power" else gamma)
