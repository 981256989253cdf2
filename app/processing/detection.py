"""Source detection on a 2-D image: DAOFIND, IRAF starfind, segmentation, and a fast ``auto`` path.

Every method works on the same preparation: the NaN pixels are masked, a 2-D background and RMS
map are built with SEP (Source Extractor as a library; about 10x faster than photutils'
``Background2D``), the background is subtracted and the masked pixels are set to zero. Then:

``daofind``
    photutils ``DAOStarFinder`` with the per-pixel threshold ``threshold_sigma * rms``.
``iraf``
    photutils ``IRAFStarFinder`` with the same significance: unlike ``DAOStarFinder`` it applies
    its threshold to the kernel-convolved image *unscaled*, and that image's noise is
    ``sqrt(sum(kernel**2))`` (about 1.3 for a 3 px FWHM) times the pixel noise, so the per-pixel
    threshold is multiplied by that factor (else a 5-sigma request is a ~3.9-sigma cut full of
    noise peaks). IRAF's moment centroids (on a sky-subtracted, zero-clipped cutout around the
    peak pixel) are biased toward the pixel centre, so they are refined with Gaussian-windowed
    positions as for the segmentation methods; sharpness and roundness stay IRAF's.
``segmentation``
    SEP's extraction (the Source Extractor algorithm): the image is smoothed with a normalised
    Gaussian of the given FWHM, segments of at least ``npixels`` connected pixels above
    ``threshold_sigma`` times the (unfiltered) background RMS are kept, as photutils'
    ``detect_sources`` recipe and Source Extractor's DETECT_THRESH do, and deblended with SEP's
    multi-threshold deblender when ``deblend`` is true (photutils' deblender needs scikit-image,
    which the engine does not ship). Centroids are refined with Gaussian-windowed positions.
``auto``
    A segmentation split at every peak, so a crowded field is not merged into blobs (the SEP
    deblender recovered 28 of the 50 brightest stars of the real M13 image that DAOFIND finds;
    this finds all 50). The image is filtered with a zero-sum ("lowered") Gaussian of the given
    FWHM, as DAOFIND does, so a background the mesh did not follow does not lift it, and divided
    by the per-pixel noise of the filtered image, so the threshold follows the noise map. That
    significance is corrected for correlated noise (measured on the low side of its histogram,
    at most up to DAOFIND's peak-amplitude threshold, so ``auto`` is never shallower than DAOFIND
    at the same ``threshold_sigma``). Every local maximum (within half a FWHM) at or above
    ``threshold_sigma`` is a source when its footprint (pixels at half the threshold or more)
    holds ``npixels`` pixels; its position is refined by a parabola and a Gaussian-windowed
    centroid and its flux is the sum within one FWHM. Written here (numpy and scipy, a few 1-D
    passes) because neither SEP nor photutils has a peak-split matched filter with a noise map.
    The response reports ``method = "segmentation"`` (the contract's name for ``auto``).

A per-pixel ``noise`` (an ``ERR`` plane, or ``1/sqrt(WHT)``) may replace SEP's RMS map for every
method: it is scaled to the image's measured noise, and pixels of zero weight are masked. SEP's own
map is kept at least :data:`RMS_FLOOR` times its median.

Sources whose centroid falls on an originally-NaN pixel are dropped; the rest are sorted by flux
(descending) and numbered 1..n. Each source gets a FWHM from Gaussian-weighted second moments
(for every method), and the median of those is ``estimated_fwhm``. At most
:data:`MAX_SOURCES` sources (the brightest) are returned. A caller's ``checkpoint`` runs between
the stages (background, detection), so a job can stop at its deadline.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.processing.errors import InvalidInput

logger = logging.getLogger("app.processing.detection")

DetectionMethod = Literal["auto", "daofind", "iraf", "segmentation"]
METHODS: tuple[str, ...] = ("auto", "daofind", "iraf", "segmentation")

#: The brightest sources returned at most (the rest are dropped; the response is still sorted).
MAX_SOURCES = 20_000
#: SEP's pixel stack: start small (allocation is per call), grow on overflow up to the maximum.
SEP_PIXSTACK = 300_000
SEP_MAX_PIXSTACK = 20_000_000
SEP_SUB_OBJECT_LIMIT = 4096
#: A SEP RMS map is kept at least this fraction of its median: on quantized or duplicated pixels
#: SEP's estimate can collapse to ~0 in a box (a 41 x 41 corner of the real M13 test image), where
#: every ripple would then pass any threshold.
RMS_FLOOR = 0.2
#: ``auto`` counts ``npixels`` in the footprint where the filtered significance is at least this
#: fraction of the threshold (the peak itself must reach the threshold).
FOOTPRINT_LEVEL = 0.5
#: Pixels sampled to measure the noise of the filtered image (``auto``).
NOISE_SAMPLE = 1_000_000

GAUSSIAN_SIGMA_TO_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
ALL_NAN_DETAIL = "All pixel values are NaN"


@dataclass
class Prepared:
    """A background-subtracted image and what detection needs alongside it."""

    data: np.ndarray
    """Background-subtracted float32 image, 0 on masked pixels."""
    rms: np.ndarray
    """Per-pixel background RMS (strictly positive)."""
    nan_mask: np.ndarray
    global_rms: float
    smooth_rms: bool = True
    """Whether ``rms`` varies only on the background mesh's scale (SEP's map, not a weight plane)."""


@dataclass
class Catalog:
    """Columns of detected sources, before filtering and sorting."""

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    peak: np.ndarray
    sharpness: np.ndarray | None = None
    roundness: np.ndarray | None = None
    fwhm: np.ndarray | None = None

    def __len__(self) -> int:
        """Return the number of sources."""
        return int(self.x.size)

    def take(self, index: np.ndarray) -> Catalog:
        """Select the rows at ``index``, in that order."""

        def pick(col: np.ndarray | None) -> np.ndarray | None:
            return None if col is None else col[index]

        return Catalog(
            x=self.x[index],
            y=self.y[index],
            flux=self.flux[index],
            peak=self.peak[index],
            sharpness=pick(self.sharpness),
            roundness=pick(self.roundness),
            fwhm=pick(self.fwhm),
        )


@dataclass
class DetectionResult:
    """What :func:`detect` found."""

    sources: list[dict[str, Any]]
    method: str
    threshold_sigma: float
    threshold_value: float
    estimated_fwhm: float | None


def _box_size(n: int) -> int:
    return int(max(8, min(64, n // 4)))


def prepare(data: np.ndarray, noise: np.ndarray | None = None) -> Prepared:
    """Mask NaN, build a SEP background and RMS map, and subtract the background.

    Parameters
    ----------
    data
        The image (NaN = no data).
    noise
        Optional per-pixel noise of the same shape, up to a constant (an ``ERR`` plane, or
        ``1/sqrt(WHT)``): the RMS map is then this noise scaled to the image's measured noise, and
        pixels whose noise is not finite and positive (zero weight) are masked.

    Raises
    ------
    InvalidInput
        Every pixel is NaN or infinite (or has no weight), or ``noise`` has another shape.
    """
    import sep

    image = np.ascontiguousarray(data, dtype=np.float32)
    nan_mask = ~np.isfinite(image)
    if noise is not None:
        if noise.shape != image.shape:
            raise InvalidInput(f"The weight plane {noise.shape} does not match the image {image.shape}")
        nan_mask |= ~(np.isfinite(noise) & (noise > 0))
    if nan_mask.all():
        raise InvalidInput(ALL_NAN_DETAIL)
    has_nan = bool(nan_mask.any())
    if has_nan:
        image = image.copy()
        image[nan_mask] = np.float32(np.median(image[~nan_mask]))
    ny, nx = image.shape
    bkg = sep.Background(image, mask=nan_mask if has_nan else None, bw=_box_size(nx), bh=_box_size(ny), fw=3, fh=3)
    sub = image.copy() if image is data else image
    bkg.subfrom(sub)
    if has_nan:
        sub[nan_mask] = 0.0
    if noise is not None:
        rms = _scaled_noise(sub, noise, nan_mask)
        global_rms = float(np.median(rms[~nan_mask]))
    else:
        rms = np.ascontiguousarray(bkg.rms(), dtype=np.float32)
        global_rms = float(bkg.globalrms)
    if not math.isfinite(global_rms) or global_rms <= 0:
        global_rms = _robust_std(sub[~nan_mask])
    floor = RMS_FLOOR * float(np.median(rms[~nan_mask])) if noise is None else 0.0
    np.maximum(rms, np.float32(max(floor, max(global_rms, 1e-30) * 1e-3)), out=rms)
    return Prepared(data=sub, rms=rms, nan_mask=nan_mask, global_rms=global_rms, smooth_rms=noise is None)


def _scaled_noise(sub: np.ndarray, noise: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``noise`` times the robust width of ``sub / noise`` (so ``1/sqrt(WHT)`` in any unit becomes an RMS)."""
    shape = np.where(mask, np.float32(1.0), np.asarray(noise, dtype=np.float32))
    normalised = (sub / shape)[~mask]
    if normalised.size > NOISE_SAMPLE:
        normalised = normalised[:: normalised.size // NOISE_SAMPLE]
    scale = _robust_std(normalised)
    if not math.isfinite(scale) or scale <= 0:
        raise InvalidInput("The weight plane gives no usable noise estimate for this image")
    shape *= np.float32(scale)
    return np.ascontiguousarray(shape, dtype=np.float32)


def _robust_std(values: np.ndarray) -> float:
    if values.size == 0:
        return 0.0
    med = float(np.median(values))
    return float(1.4826 * np.median(np.abs(values - med)))


def _gaussian_kernel(fwhm: float) -> np.ndarray:
    sigma = fwhm / GAUSSIAN_SIGMA_TO_FWHM
    half = max(1, math.ceil(2.0 * sigma))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2.0 * sigma**2))
    return np.asarray(kernel / kernel.sum(), dtype=np.float32)


def _finder_catalog(table: Any, *, roundness_column: str) -> Catalog:
    if table is None or len(table) == 0:
        empty = np.empty(0)
        return Catalog(empty, empty, empty, empty, empty, empty)

    def col(name: str) -> np.ndarray:
        return np.asarray(table[name], dtype=np.float64)

    return Catalog(
        x=col("x_centroid"),
        y=col("y_centroid"),
        flux=col("flux"),
        peak=col("peak"),
        sharpness=col("sharpness"),
        roundness=col(roundness_column),
    )


def _star_finder_catalog(prep: Prepared, finder: Any, *, roundness_column: str) -> Catalog:
    """Run a photutils star finder on the prepared image (NaN pixels masked) and read its table."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = finder(prep.data, mask=prep.nan_mask)
    return _finder_catalog(table, roundness_column=roundness_column)


def _run_daofind(prep: Prepared, *, threshold_sigma: float, fwhm: float, **_: Any) -> Catalog:
    from photutils.detection import DAOStarFinder

    finder = DAOStarFinder(threshold=threshold_sigma * prep.rms, fwhm=fwhm)
    return _star_finder_catalog(prep, finder, roundness_column="roundness1")


def _run_iraf(prep: Prepared, *, threshold_sigma: float, fwhm: float, **_: Any) -> Catalog:
    """IRAF starfind at ``threshold_sigma`` x the noise of its convolved image, with windowed centroids."""
    from photutils.detection import IRAFStarFinder

    probe = IRAFStarFinder(threshold=1.0, fwhm=fwhm)
    noise_gain = float(np.sqrt(np.sum(np.asarray(probe.kernel.data, dtype=np.float64) ** 2)))
    finder = IRAFStarFinder(threshold=(threshold_sigma * noise_gain) * prep.rms, fwhm=fwhm)
    cat = _star_finder_catalog(prep, finder, roundness_column="roundness")
    cat.x, cat.y = _windowed_centroids(prep, cat.x, cat.y, fwhm)
    return cat


def _windowed_centroids(prep: Prepared, x: np.ndarray, y: np.ndarray, fwhm: float) -> tuple[np.ndarray, np.ndarray]:
    """Refine ``(x, y)`` with SEP's Gaussian-windowed positions (sigma from ``fwhm``).

    A position is kept as given where the refinement fails, is not finite, or moves by ``fwhm`` or more.
    """
    import sep

    if x.size == 0:
        return x, y
    sig = np.full(x.size, fwhm / GAUSSIAN_SIGMA_TO_FWHM)
    xw, yw, flag = sep.winpos(prep.data, x, y, sig, mask=prep.nan_mask)
    good = (flag == 0) & np.isfinite(xw) & np.isfinite(yw) & (np.hypot(xw - x, yw - y) < fwhm)
    return np.where(good, xw, x), np.where(good, yw, y)


def _run_segmentation(prep: Prepared, *, threshold_sigma: float, **options: Any) -> Catalog:
    """Segments above ``threshold_sigma`` x the unfiltered RMS on the smoothed image (photutils' recipe)."""
    return _run_sep(prep, threshold=threshold_sigma, **options)


def _run_auto(prep: Prepared, *, threshold_sigma: float, fwhm: float, npixels: int, **_: Any) -> Catalog:
    """Matched-filter segments above ``threshold_sigma``, split at every local maximum of the filtered image."""
    from scipy import ndimage

    smooth, noise = _lowered_filter(prep, fwhm)
    valid = (noise > 0) & ~prep.nan_mask
    significance = np.divide(smooth, noise, out=noise, where=valid)
    significance[~valid] = 0.0
    factor = min(_correlation_factor(significance, valid), _amplitude_cap(fwhm))
    level = np.float32(threshold_sigma * factor)
    labels, _ = ndimage.label(significance >= FOOTPRINT_LEVEL * level, structure=np.ones((3, 3), dtype=bool))
    candidates = np.flatnonzero(significance >= level)
    del significance, valid, noise
    if candidates.size:
        sizes = np.bincount(labels.ravel())
        candidates = candidates[sizes[labels.ravel()[candidates]] >= npixels]
    del labels
    rows, cols = _local_maxima(smooth, candidates, radius=max(1.0, 0.5 * fwhm))
    x, y = _parabolic_peaks(smooth, rows, cols)
    del smooth
    x, y = _windowed_centroids(prep, x, y, fwhm)
    return Catalog(x=x, y=y, flux=_aperture_flux(prep, x, y, fwhm), peak=prep.data[rows, cols].astype(np.float64))


def _lowered_filter(prep: Prepared, fwhm: float) -> tuple[np.ndarray, np.ndarray]:
    """Filter the image by a zero-sum ("lowered") Gaussian of ``fwhm``; return it and its noise.

    The kernel is a Gaussian minus its mean over its square support, as DAOFIND's: it fits a
    point source and a local constant at once, so a background the mesh did not follow (a step
    at an exposure edge, a cluster's glow) does not lift the filtered image. Both parts are
    separable (two 1-D Gaussian passes and a running box mean). The noise of the filtered image
    is ``sqrt(sum(kernel**2 * rms**2))`` for independent pixels: ``rms * sqrt(sum(kernel**2))``
    for SEP's slowly varying map, the full sum (three more separable filters) for a weight plane,
    whose noise may jump from one pixel to the next.
    """
    taps = _gaussian_taps(fwhm)
    size = int(taps.size)
    c = np.float32(1.0 / size**2)
    smooth = _separable(prep.data, taps)
    box = np.full(size, 1.0 / size, dtype=np.float32)
    smooth -= _separable(prep.data, box)
    if prep.smooth_rms:
        lowered = np.outer(taps, taps).astype(np.float64) - float(c)
        noise = prep.rms * np.float32(np.sqrt(np.sum(lowered**2)))
        return smooth, noise
    variance = np.square(prep.rms)
    variance[prep.nan_mask] = 0.0
    noise = _separable(variance, np.square(taps))
    noise -= (2.0 * c) * _separable(variance, taps)
    noise += c * _separable(variance, box)
    del variance
    np.maximum(noise, 0.0, out=noise)
    np.sqrt(noise, out=noise)
    return smooth, noise


def _amplitude_cap(fwhm: float) -> float:
    """Significance, in filtered-noise units, of a star whose fitted peak is 1 pixel sigma (white noise).

    DAOFIND's threshold is on that peak amplitude; capping the correlation correction here keeps
    ``auto`` at least as deep as DAOFIND at the same ``threshold_sigma`` (about 2.2 for a 3 px FWHM).
    """
    taps = _gaussian_taps(fwhm).astype(np.float64)
    lowered = np.outer(taps, taps) - 1.0 / taps.size**2
    return float(np.sqrt(np.sum(lowered**2)) / lowered.max())


def _correlation_factor(significance: np.ndarray, valid: np.ndarray) -> float:
    """How much wider than predicted the filtered noise is (at least 1), from the low side of its histogram.

    The prediction assumes independent pixels; resampled or drizzled images have correlated noise
    that smoothing averages down less (3-4x on the survey cutouts of the test corpus). Sources only
    add to the high side, so the distance from the median down to the 15.87th percentile measures
    the noise of the filtered image.
    """
    values = significance[valid]
    if values.size > NOISE_SAMPLE:
        values = values[:: values.size // NOISE_SAMPLE]
    if values.size < 16:
        return 1.0
    low, median = np.percentile(values, [15.87, 50.0])
    width = float(median - low)
    return width if math.isfinite(width) and width > 1.0 else 1.0


def _gaussian_taps(fwhm: float) -> np.ndarray:
    """1-D Gaussian of ``fwhm`` whose outer product is :func:`_gaussian_kernel` (sums to 1)."""
    sigma = fwhm / GAUSSIAN_SIGMA_TO_FWHM
    half = max(1, math.ceil(2.0 * sigma))
    taps = np.exp(-(np.arange(-half, half + 1, dtype=np.float64) ** 2) / (2.0 * sigma**2))
    return np.asarray(taps / taps.sum(), dtype=np.float32)


def _separable(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Correlate ``image`` with ``taps`` along both axes (zero outside), as float32."""
    from scipy import ndimage

    out = _correlate_rows(image, taps)
    ndimage.correlate1d(out, taps, axis=1, mode="constant", cval=0.0, output=out)
    return out


#: Rows per band of :func:`_correlate_rows` (bounds its temporaries).
ROW_BAND = 256


def _correlate_rows(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Correlate along axis 0 (zero outside) as sums of shifted row bands.

    scipy's ``correlate1d`` along the slow axis of a C-ordered image strides through memory and
    runs several times slower than along rows; shifted contiguous slices keep it a streaming sum.
    """
    ny = image.shape[0]
    half = taps.size // 2
    padded = np.zeros((ny + 2 * half, *image.shape[1:]), dtype=np.float32)
    padded[half : half + ny] = image
    out = np.empty(image.shape, dtype=np.float32)
    for r0 in range(0, ny, ROW_BAND):
        r1 = min(ny, r0 + ROW_BAND)
        band = out[r0:r1]
        np.multiply(padded[r0:r1], taps[0], out=band)
        for k in range(1, taps.size):
            band += taps[k] * padded[r0 + k : r1 + k]
    return out


def _local_maxima(smooth: np.ndarray, candidates: np.ndarray, *, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the ``candidates`` (flat indices) that are maxima of ``smooth`` within ``radius``.

    Ties (a flat top) go to the first pixel in raster order, so a plateau gives one peak.
    """
    ny, nx = smooth.shape
    rows, cols = np.divmod(candidates, nx)
    values = smooth.ravel()[candidates]
    keep = np.ones(candidates.size, dtype=bool)
    reach = math.floor(radius)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if (dy == 0 and dx == 0) or dy * dy + dx * dx > radius * radius:
                continue
            r, c = rows + dy, cols + dx
            inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
            other = smooth[np.clip(r, 0, ny - 1), np.clip(c, 0, nx - 1)]
            earlier = dy < 0 or (dy == 0 and dx < 0)
            wins = values > other if earlier else values >= other
            keep &= ~inside | wins
    return rows[keep], cols[keep]


def _parabolic_peaks(smooth: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel ``(x, y)`` of peaks from a parabola through each peak and its two neighbours per axis."""
    ny, nx = smooth.shape

    def offset(minus: np.ndarray, centre: np.ndarray, plus: np.ndarray) -> np.ndarray:
        curvature = minus - 2.0 * centre + plus
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(curvature < 0, 0.5 * (minus - plus) / curvature, 0.0)
        return np.asarray(np.clip(np.nan_to_num(step), -0.5, 0.5))

    centre = smooth[rows, cols].astype(np.float64)
    left = smooth[rows, np.maximum(cols - 1, 0)].astype(np.float64)
    right = smooth[rows, np.minimum(cols + 1, nx - 1)].astype(np.float64)
    down = smooth[np.maximum(rows - 1, 0), cols].astype(np.float64)
    up = smooth[np.minimum(rows + 1, ny - 1), cols].astype(np.float64)
    return cols + offset(left, centre, right), rows + offset(down, centre, up)


def _aperture_flux(prep: Prepared, x: np.ndarray, y: np.ndarray, fwhm: float) -> np.ndarray:
    """Background-subtracted sum in a circle of radius ``fwhm`` (94 % of a Gaussian star's light)."""
    import sep

    if x.size == 0:
        return np.empty(0)
    flux, _, _ = sep.sum_circle(prep.data, x, y, fwhm, mask=prep.nan_mask, subpix=5)
    return np.asarray(flux, dtype=np.float64)


def _run_sep(prep: Prepared, *, threshold: float, fwhm: float, npixels: int, deblend: bool, **_: Any) -> Catalog:
    """SEP extraction on the image smoothed by a normalised Gaussian, threshold ``threshold`` x rms."""
    import sep

    sep.set_sub_object_limit(SEP_SUB_OBJECT_LIMIT)
    stack = SEP_PIXSTACK
    while True:
        sep.set_extract_pixstack(stack)
        try:
            objects = sep.extract(
                prep.data,
                threshold,
                err=prep.rms,
                mask=prep.nan_mask,
                minarea=npixels,
                filter_kernel=_gaussian_kernel(fwhm),
                filter_type="conv",
                deblend_cont=0.005 if deblend else 1.0,
            )
            break
        except Exception as error:  # SEP signals every failure with a bare Exception
            if "pixel buffer full" in str(error) and stack < SEP_MAX_PIXSTACK:
                stack = min(stack * 8, SEP_MAX_PIXSTACK)
                continue
            logger.info("sep_extract_failed", extra={"error": type(error).__name__})
            raise InvalidInput(
                "Too many connected pixels above the threshold; raise threshold_sigma or npixels"
            ) from error
    x, y = _windowed_centroids(prep, objects["x"].astype(np.float64), objects["y"].astype(np.float64), fwhm)
    return Catalog(x=x, y=y, flux=objects["flux"].astype(np.float64), peak=objects["peak"].astype(np.float64))


Runner = Callable[..., Catalog]

#: Which runner serves each method, and the method name the response reports.
DISPATCH: dict[str, tuple[Runner, str]] = {
    "auto": (_run_auto, "segmentation"),
    "daofind": (_run_daofind, "daofind"),
    "iraf": (_run_iraf, "iraf"),
    "segmentation": (_run_segmentation, "segmentation"),
}


def moment_fwhm(data: np.ndarray, x: np.ndarray, y: np.ndarray, guess_fwhm: float) -> np.ndarray:
    """FWHM of each source from Gaussian-weighted second moments around ``(x, y)``.

    For a Gaussian of variance ``s2`` weighted by a Gaussian of variance ``w2`` the weighted
    variance is ``s2 * w2 / (s2 + w2)``; inverting that (and removing the 1/12 px^2 of pixel
    integration) gives the source's FWHM. Values that cannot be measured are NaN.
    """
    n = x.size
    if n == 0:
        return np.empty(0)
    ny, nx = data.shape
    w_sigma = 1.5 * max(guess_fwhm, 1.0) / GAUSSIAN_SIGMA_TO_FWHM
    half = math.ceil(3.0 * w_sigma)
    offsets = np.arange(-half, half + 1)
    out = np.full(n, np.nan)
    chunk = max(1, 2_000_000 // offsets.size**2)
    for start in range(0, n, chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        cols = np.rint(xs).astype(np.int64)[:, None, None] + offsets[None, None, :]
        rows = np.rint(ys).astype(np.int64)[:, None, None] + offsets[None, :, None]
        inside = (cols >= 0) & (cols < nx) & (rows >= 0) & (rows < ny)
        cut = data[np.clip(rows, 0, ny - 1), np.clip(cols, 0, nx - 1)].astype(np.float64)
        dx = cols - xs[:, None, None]
        dy = rows - ys[:, None, None]
        weight = np.exp(-(dx**2 + dy**2) / (2.0 * w_sigma**2)) * inside
        wi = cut * weight
        total = wi.sum(axis=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            m2 = ((wi * (dx**2 + dy**2)).sum(axis=(1, 2)) / total) / 2.0
            w2 = w_sigma**2
            s2 = m2 * w2 / (w2 - m2) - 1.0 / 12.0
            fwhm = GAUSSIAN_SIGMA_TO_FWHM * np.sqrt(s2)
        ok = (total > 0) & (m2 > 0) & (m2 < 0.9 * w2) & (s2 > 0) & np.isfinite(fwhm)
        out[start : start + chunk] = np.where(ok, fwhm, np.nan)
    return out


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _to_sources(cat: Catalog) -> list[dict[str, Any]]:
    nan = np.full(len(cat), np.nan)
    sharp = cat.sharpness if cat.sharpness is not None else nan
    rnd = cat.roundness if cat.roundness is not None else nan
    fw = cat.fwhm if cat.fwhm is not None else nan
    columns = zip(
        cat.x.tolist(),
        cat.y.tolist(),
        cat.flux.tolist(),
        sharp.tolist(),
        rnd.tolist(),
        fw.tolist(),
        cat.peak.tolist(),
        strict=True,
    )
    return [
        {
            "id": i,
            "xcentroid": float(x),
            "ycentroid": float(y),
            "flux": _finite_or_none(flux),
            "sharpness": _finite_or_none(s),
            "roundness": _finite_or_none(r),
            "fwhm": _finite_or_none(f),
            "peak": _finite_or_none(p),
        }
        for i, (x, y, flux, s, r, f, p) in enumerate(columns, start=1)
    ]


def _no_checkpoint(stage: str) -> None:
    """Let every stage pass."""


def detect(
    data: np.ndarray,
    *,
    method: str = "auto",
    threshold_sigma: float = 5.0,
    fwhm: float = 3.0,
    npixels: int = 10,
    deblend: bool = True,
    max_sources: int = MAX_SOURCES,
    checkpoint: Callable[[str], None] | None = None,
    noise: np.ndarray | None = None,
) -> DetectionResult:
    """Detect sources on a 2-D image.

    Parameters
    ----------
    data
        The image (NaN = no data).
    method
        ``auto``, ``daofind``, ``iraf`` or ``segmentation``.
    threshold_sigma
        Detection threshold in units of the local background RMS.
    fwhm
        Expected FWHM of point sources in pixels (kernel size).
    npixels
        Minimum connected pixels of a segment (segmentation and auto).
    deblend
        Split blended segments (segmentation and auto).
    max_sources
        Keep at most this many of the brightest sources.
    checkpoint
        Called with the name of each finished stage (``"background"``, ``"detection"``); it may
        raise to stop the work, e.g. at a deadline.
    noise
        Optional per-pixel noise up to a constant (``ERR``, or ``1/sqrt(WHT)``) that replaces
        SEP's RMS map, so a low-exposure edge gets a threshold as high as its noise; pixels without
        a finite positive noise are masked.

    Raises
    ------
    InvalidInput
        Unknown method, or every pixel is NaN.
    """
    if method not in DISPATCH:
        raise InvalidInput(f"Invalid method '{method}'. Must be one of: {', '.join(METHODS)}")
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D, got shape {data.shape}")
    check = checkpoint or _no_checkpoint
    prep = prepare(data, noise)
    check("background")
    runner, reported = DISPATCH[method]
    cat = runner(prep, threshold_sigma=threshold_sigma, fwhm=fwhm, npixels=npixels, deblend=deblend)
    check("detection")
    ny, nx = prep.data.shape
    if len(cat):
        finite = np.isfinite(cat.x) & np.isfinite(cat.y)
        ix = np.clip(np.rint(np.where(finite, cat.x, 0)).astype(np.int64), 0, nx - 1)
        iy = np.clip(np.rint(np.where(finite, cat.y, 0)).astype(np.int64), 0, ny - 1)
        keep = finite & ~prep.nan_mask[iy, ix]
        cat = cat.take(np.flatnonzero(keep))
    if cat.fwhm is None:
        cat.fwhm = moment_fwhm(prep.data, cat.x, cat.y, fwhm)
    measured = cat.fwhm[np.isfinite(cat.fwhm)] if len(cat) else np.empty(0)
    estimated = float(np.median(measured)) if measured.size else None
    flux_key = np.where(np.isfinite(cat.flux), -cat.flux, np.inf)
    order = np.argsort(flux_key, kind="stable")[:max_sources]
    cat = cat.take(order)
    return DetectionResult(
        sources=_to_sources(cat),
        method=reported,
        threshold_sigma=float(threshold_sigma),
        threshold_value=float(threshold_sigma * prep.global_rms),
        estimated_fwhm=_finite_or_none(estimated) if estimated is not None else None,
    )
