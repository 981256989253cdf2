"""Source detection on injected stars: recall, positions, NaN handling, ordering, contract errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from app.analysis.jobs import detect_sources
from app.core.exceptions import FitsTooLargeError, JobTimeoutError
from app.processing.detection import METHODS, detect, moment_fwhm
from app.processing.errors import InvalidInput
from app.worker.deadline import Deadline
from tests.support.fits_factory import EDGE_WIDTH, exposure_edge_field, gaussian_stars, write_cube, write_image
from tests.support.jobs import on_file

SHAPE = (256, 256)
FWHM = 3.0
NOISE = 1.0
# SNR of a Gaussian star with optimal weighting: flux / (noise * sqrt(4 pi sigma^2)); 100 gives SNR ~ 22.
MIN_FLUX = 100.0


@pytest.fixture(scope="module")
def field() -> tuple[np.ndarray, np.ndarray]:
    data, truth = gaussian_stars(SHAPE, n_stars=40, fwhm=FWHM, flux_range=(MIN_FLUX, 3000.0), noise=NOISE, seed=11)
    return data, truth


def isolated(truth: np.ndarray, radius: float) -> np.ndarray:
    d = np.hypot(truth[:, None, 0] - truth[None, :, 0], truth[:, None, 1] - truth[None, :, 1])
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1) > radius


def match(sources: list[dict], truth: np.ndarray, radius: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """For each true star: distance to the nearest detection (inf when none)."""
    if not sources:
        return np.full(len(truth), np.inf), np.full(len(truth), -1)
    xy = np.array([[s["xcentroid"], s["ycentroid"]] for s in sources])
    d = np.hypot(truth[:, None, 0] - xy[None, :, 0], truth[:, None, 1] - xy[None, :, 1])
    nearest = d.argmin(axis=1)
    dist = d[np.arange(len(truth)), nearest]
    return np.where(dist < radius, dist, np.inf), nearest


@pytest.mark.parametrize("method", METHODS)
def test_recall_and_position_accuracy(method: str, field: tuple[np.ndarray, np.ndarray]) -> None:
    data, truth = field
    result = detect(data, method=method, threshold_sigma=5.0, fwhm=FWHM)
    dist, _ = match(result.sources, truth)
    recall = np.isfinite(dist).mean()
    assert recall >= 0.9, f"{method}: recall {recall:.2f}"
    resolvable = isolated(truth, 2 * FWHM)
    assert np.isfinite(dist[resolvable]).mean() >= 0.95
    sel = np.isfinite(dist) & isolated(truth, 3 * FWHM)
    assert sel.sum() >= 0.8 * len(truth)
    assert dist[sel].max() < 0.5, f"{method}: worst position error {dist[sel].max():.2f} px"
    # No more than a few spurious detections at 5 sigma.
    assert result.sources
    assert len(result.sources) <= len(truth) + 4


@pytest.mark.parametrize("method", METHODS)
def test_response_shape_sorted_by_flux_and_finite(method: str, field: tuple[np.ndarray, np.ndarray]) -> None:
    data, _ = field
    result = detect(data, method=method, threshold_sigma=5.0, fwhm=FWHM)
    assert result.method == ("segmentation" if method == "auto" else method)
    ids = [s["id"] for s in result.sources]
    assert ids == list(range(1, len(ids) + 1))
    fluxes = [s["flux"] for s in result.sources]
    assert all(f is not None for f in fluxes)
    assert fluxes == sorted(fluxes, reverse=True)
    for source in result.sources:
        assert set(source) == {"id", "xcentroid", "ycentroid", "flux", "sharpness", "roundness", "fwhm", "peak"}
        for key, value in source.items():
            assert value is None or (isinstance(value, int | float) and math.isfinite(value)), key
    if method in ("daofind", "iraf"):
        assert all(s["sharpness"] is not None for s in result.sources)
    assert result.estimated_fwhm is not None
    assert abs(result.estimated_fwhm - FWHM) < 0.3
    assert result.threshold_value == pytest.approx(5.0 * NOISE, rel=0.1)


def test_estimated_fwhm_follows_the_image_not_the_request() -> None:
    data, _ = gaussian_stars((200, 200), n_stars=25, fwhm=5.0, flux_range=(2000, 6000), seed=4)
    result = detect(data, method="auto", fwhm=3.0)
    assert result.estimated_fwhm == pytest.approx(5.0, rel=0.1)


def test_moment_fwhm_of_a_clean_gaussian() -> None:
    yy, xx = np.mgrid[0:41, 0:41]
    sigma = 4.0 / 2.3548
    star = np.exp(-((xx - 20.3) ** 2 + (yy - 19.6) ** 2) / (2 * sigma**2))
    assert moment_fwhm(star, np.array([20.3]), np.array([19.6]), 4.0)[0] == pytest.approx(4.0, rel=0.03)


@pytest.mark.parametrize("method", METHODS)
def test_sources_in_nan_regions_are_dropped(method: str, field: tuple[np.ndarray, np.ndarray]) -> None:
    data, truth = field
    holed = data.copy()
    holed[60:160, 60:160] = np.nan
    result = detect(holed, method=method, fwhm=FWHM)
    assert result.sources
    for s in result.sources:
        iy, ix = round(s["ycentroid"]), round(s["xcentroid"])
        assert np.isfinite(holed[iy, ix])
    outside = ~((truth[:, 0] > 57) & (truth[:, 0] < 163) & (truth[:, 1] > 57) & (truth[:, 1] < 163))
    dist, _ = match(result.sources, truth[outside])
    assert np.isfinite(dist).mean() >= 0.9


def test_all_nan_is_400() -> None:
    with pytest.raises(InvalidInput, match="NaN"):
        detect(np.full((32, 32), np.nan, dtype=np.float32))


def test_unknown_method_is_400() -> None:
    with pytest.raises(InvalidInput, match="method"):
        detect(np.zeros((32, 32), dtype=np.float32), method="psf")


def test_flat_image_has_no_sources() -> None:
    result = detect(np.full((64, 64), 3.0, dtype=np.float32), method="daofind")
    assert result.sources == []
    assert result.estimated_fwhm is None
    result = detect(np.full((64, 64), 3.0, dtype=np.float32), method="auto")
    assert result.sources == []


def test_max_sources_keeps_the_brightest(field: tuple[np.ndarray, np.ndarray]) -> None:
    data, _ = field
    full = detect(data, method="auto", fwhm=FWHM)
    capped = detect(data, method="auto", fwhm=FWHM, max_sources=5)
    assert [s["flux"] for s in capped.sources] == [s["flux"] for s in full.sources[:5]]


def test_deadline_raises_job_timeout(field: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(JobTimeoutError):
        detect(field[0], method="auto", checkpoint=Deadline(0.0, start=0.0).check)


def test_job_reads_file_checks_size_and_uses_middle_cube_slice(tmp_path: Path) -> None:
    data, _ = gaussian_stars((128, 128), n_stars=10, flux_range=(1000, 3000), seed=2)
    path = write_image(tmp_path / "img.fits", data)
    result = on_file(detect_sources, path, method="auto")
    assert len(result.sources) >= 9
    with pytest.raises(FitsTooLargeError):
        on_file(detect_sources, path, max_pixels=128 * 128 - 1)
    cube = np.stack([np.zeros_like(data), data, np.zeros_like(data)])
    cube_result = on_file(detect_sources, write_cube(tmp_path / "cube.fits", cube), method="auto")
    assert len(cube_result.sources) == len(result.sources)


@pytest.fixture(scope="module")
def crowded_field() -> tuple[np.ndarray, np.ndarray]:
    """512^2, 150 stars of SNR ~22-700 plus 4 bright ones (peak ~1000-2000 sigma)."""
    data, truth = gaussian_stars((512, 512), n_stars=150, fwhm=FWHM, flux_range=(MIN_FLUX, 3000.0), seed=7)
    bright, bright_truth = gaussian_stars((512, 512), n_stars=4, fwhm=FWHM, flux_range=(40_000.0, 80_000.0), seed=8)
    return data + (bright - np.median(bright)), np.vstack([truth, bright_truth])


@pytest.mark.parametrize("threshold_sigma", [4.0, 5.0])
def test_iraf_has_few_spurious_detections_and_accurate_centroids(
    threshold_sigma: float, crowded_field: tuple[np.ndarray, np.ndarray]
) -> None:
    """Regression: ``iraf`` once applied ``threshold_sigma * rms`` to the kernel-convolved image, whose
    noise is ~1.3x the pixel noise (at 4 sigma: ~30 noise peaks here; 96 on the 4096^2 benchmark at 5),
    and reported IRAF's moment centroids, biased by ~0.1 px toward the peak pixel's centre."""
    data, truth = crowded_field
    result = detect(data, method="iraf", threshold_sigma=threshold_sigma, fwhm=FWHM)
    assert result.method == "iraf"
    xy = np.array([[s["xcentroid"], s["ycentroid"]] for s in result.sources])
    to_truth = np.hypot(xy[:, None, 0] - truth[None, :, 0], xy[:, None, 1] - truth[None, :, 1]).min(axis=1)
    spurious = int((to_truth >= 1.5).sum())
    assert spurious <= 2, f"iraf at {threshold_sigma} sigma: {spurious} spurious detections"
    dist, _ = match(result.sources, truth)
    assert np.isfinite(dist).mean() >= 0.93
    assert np.isfinite(dist[isolated(truth, 3 * FWHM)]).mean() >= 0.97
    assert np.median(dist[np.isfinite(dist)]) < 0.05
    assert all(s["sharpness"] is not None and s["roundness"] is not None for s in result.sources)


# ---------------------------------------------------------------- crowded fields and noise maps


def real_m13() -> np.ndarray:
    from astropy.io import fits

    from tests.support.real_data import CORPUS

    return np.asarray(fits.getdata(CORPUS["m13"].path), dtype=np.float32)


def sparse_field() -> np.ndarray:
    data, _ = gaussian_stars((512, 512), n_stars=60, fwhm=2.5, flux_range=(150.0, 20_000.0), seed=21)
    return data


@pytest.mark.parametrize("field_name", ["m13", "sparse"])
def test_auto_recovers_the_brightest_daofind_stars(field_name: str) -> None:
    """The 50 brightest stars of a standard DAOStarFinder run (clipped background, 5 sigma, measured
    FWHM): ``auto`` once found 28 of them on the real M13 globular cluster (its deblender merged the core)."""
    from tests.support.reference_detection import daofind_reference, recovered

    data = real_m13() if field_name == "m13" else sparse_field()
    reference = daofind_reference(data)
    brightest = reference.xy[:50]
    assert len(brightest) == 50
    for fwhm in (reference.fwhm, 3.0):
        result = detect(data, method="auto", fwhm=fwhm)
        found = recovered(brightest, result.sources)
        assert found.mean() >= 0.95, f"{field_name} at fwhm {fwhm:.2f}: {found.sum()} of 50"
        assert recovered(reference.xy, result.sources).mean() >= 0.9


def test_segmentation_alone_misses_the_crowded_core() -> None:
    """What ``auto`` fixes: SEP's deblender leaves several of M13's brightest stars merged."""
    from tests.support.reference_detection import daofind_reference, recovered

    data = real_m13()
    reference = daofind_reference(data)
    result = detect(data, method="segmentation", fwhm=reference.fwhm)
    assert recovered(reference.xy[:50], result.sources).mean() < 0.95


EDGE = EDGE_WIDTH


def edge_fraction(sources: list[dict], edge: np.ndarray) -> float:
    ny, nx = edge.shape
    xs = np.clip(np.rint([s["xcentroid"] for s in sources]).astype(int), 0, nx - 1)
    ys = np.clip(np.rint([s["ycentroid"] for s in sources]).astype(int), 0, ny - 1)
    return float(edge[ys, xs].mean())


def test_a_weight_plane_keeps_detections_out_of_the_noisy_edge() -> None:
    data, weight, edge, truth = exposure_edge_field()
    bare = detect(data, method="auto")
    assert edge_fraction(bare.sources, edge) > 0.3  # the failure a noise map fixes
    result = detect(data, method="auto", noise=1.0 / np.sqrt(weight))
    assert edge_fraction(result.sources, edge) <= 0.05
    dist, _ = match(result.sources, truth)
    assert np.isfinite(dist).all()
    assert len(result.sources) <= len(truth) + 2
    # the noise map is scaled to the image: the interior RMS is 1 whatever the WHT unit
    assert result.threshold_value == pytest.approx(5.0, rel=0.15)


@pytest.mark.parametrize("method", ["daofind", "iraf", "segmentation"])
def test_every_method_follows_the_noise_plane(method: str) -> None:
    data, weight, edge, truth = exposure_edge_field()
    result = detect(data, method=method, noise=1.0 / np.sqrt(weight))
    assert edge_fraction(result.sources, edge) <= 0.05
    dist, _ = match(result.sources, truth)
    assert np.isfinite(dist).mean() >= 0.9


def test_zero_weight_pixels_are_not_searched() -> None:
    data, weight, _, truth = exposure_edge_field()
    weight = weight.copy()
    weight[:, :200] = 0.0
    with np.errstate(divide="ignore"):
        noise = 1.0 / np.sqrt(weight)
    result = detect(data, method="auto", noise=noise)
    assert result.sources
    assert min(s["xcentroid"] for s in result.sources) >= 199.5
    right = truth[truth[:, 0] > 205]
    dist, _ = match(result.sources, right)
    assert np.isfinite(dist).all()


def test_a_noise_plane_of_another_shape_or_without_weight_is_400() -> None:
    data = np.zeros((32, 32), dtype=np.float32)
    with pytest.raises(InvalidInput, match="does not match"):
        detect(data, noise=np.ones((16, 16), dtype=np.float32))
    with pytest.raises(InvalidInput, match="NaN"):
        detect(data, noise=np.full((32, 32), np.inf, dtype=np.float32))


def test_auto_splits_touching_stars_and_keeps_one_peak_per_flat_top() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    sigma = FWHM / 2.3548
    pair = sum(2000.0 * np.exp(-((xx - cx) ** 2 + (yy - 32.0) ** 2) / (2 * sigma**2)) for cx in (28.0, 33.0))
    noisy = pair + np.random.default_rng(0).normal(0.0, 1.0, pair.shape)
    result = detect(noisy.astype(np.float32), method="auto", fwhm=FWHM)
    xs = sorted(round(s["xcentroid"]) for s in result.sources)
    assert xs == [28, 33]
    flat = np.zeros((64, 64), dtype=np.float32) + np.random.default_rng(1).normal(0, 1, (64, 64)).astype(np.float32)
    flat[30:34, 30:34] = 5000.0  # a saturated, flat-topped star
    result = detect(flat, method="auto", fwhm=FWHM)
    assert len(result.sources) == 1
    assert result.sources[0]["xcentroid"] == pytest.approx(31.5, abs=0.3)
