"""The fast reprojection core against reproject_interp, plus grids and downscaled WCS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.wcs import WCS
from reproject import reproject_interp
from reproject.mosaicking import find_optimal_celestial_wcs

from app.processing.reprojection import (
    Grid,
    downscale_wcs,
    footprint_bbox,
    optimal_celestial_grid,
    pixel_map,
    reproject_fast,
)
from tests.support.fits_factory import gaussian_stars, make_wcs


def _baseline(data: np.ndarray, wcs: WCS, grid: Grid) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, _ = reproject_interp((data, wcs), grid.wcs, shape_out=grid.shape, order="bilinear")
    return out


def _assert_close_to_baseline(ours: np.ndarray, base: np.ndarray, data: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(base))
    rms = float(np.sqrt(np.mean(data.astype(np.float64) ** 2)))
    ok = np.isfinite(base)
    assert ok.sum() > 0
    assert np.abs(ours[ok] - base[ok]).max() < 1e-3 * rms


@pytest.mark.parametrize(("rotation", "scale", "shift"), [(0.0, 0.063, 0.0), (23.0, 0.05, 3e-4), (-70.0, 0.11, -2e-4)])
def test_matches_reproject_interp(rotation: float, scale: float, shift: float) -> None:
    data, _ = gaussian_stars((300, 260), n_stars=80, seed=3)
    wcs_in = make_wcs((300, 260), rotation_deg=rotation, pixel_scale_arcsec=scale, ra=274.7 + shift)
    grid = optimal_celestial_grid([(wcs_in, (300, 260)), (make_wcs((200, 200)), (200, 200))])
    _assert_close_to_baseline(reproject_fast(data, wcs_in, grid), _baseline(data, wcs_in, grid), data)


def test_wide_field_and_sip_distortion_stay_exact() -> None:
    shape = (400, 400)
    data, _ = gaussian_stars(shape, n_stars=100, seed=5)
    wcs_in = make_wcs(shape, pixel_scale_arcsec=30.0, dec=60.0)  # 3.3 degrees across at high declination
    header = wcs_in.to_header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    header.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 2e-5, "A_0_2": -1e-5, "B_1_1": 3e-5, "B_0_2": 1e-5})
    header.update({"AP_ORDER": 0, "BP_ORDER": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sip_wcs = WCS(header)
    grid = optimal_celestial_grid([(sip_wcs, shape)], resolution_deg=30.0 / 3600 * 0.8)
    # north-up grid on a sky field 3 degrees wide: the TAN->TAN map is not affine
    pmap = pixel_map(sip_wcs, grid.wcs, grid.shape, step=64, tolerance=0.01)
    assert pmap.max_error <= 0.01
    _assert_close_to_baseline(reproject_fast(data, sip_wcs, grid), _baseline(data, sip_wcs, grid), data)


def test_mapping_refines_failing_cells() -> None:
    shape = (256, 256)
    wcs_in = make_wcs(shape, pixel_scale_arcsec=120.0, dec=75.0)  # 8.5 degrees: strongly non-linear
    other = make_wcs(shape, pixel_scale_arcsec=120.0, dec=79.0, ra=290.0)
    grid = optimal_celestial_grid([(wcs_in, shape), (other, shape)], resolution_deg=120.0 / 3600)
    pmap = pixel_map(wcs_in, grid.wcs, grid.shape, step=128, tolerance=0.01)
    assert pmap.exact_cells.any()
    ys, xs = np.mgrid[0 : grid.ny : 7, 0 : grid.nx : 5]
    ix, iy = pmap.coordinates(0, grid.ny, 0, grid.nx)
    ex, ey = pmap.mapper(xs.astype(float), ys.astype(float))
    assert np.nanmax(np.abs(ix[ys, xs] - ex)) < 0.011
    assert np.nanmax(np.abs(iy[ys, xs] - ey)) < 0.011


def test_nan_input_pixels_do_not_spread_as_zeros() -> None:
    data = np.full((64, 64), 10.0, dtype=np.float32)
    data[30:34, 30:34] = np.nan
    wcs = make_wcs((64, 64))
    grid = Grid(make_wcs((64, 64), rotation_deg=10.0), (64, 64))
    out = reproject_fast(data, wcs, grid)
    finite = out[np.isfinite(out)]
    np.testing.assert_allclose(finite, 10.0, rtol=1e-6)
    assert np.isnan(out).sum() >= 8  # the hole stays a hole (and the outside is NaN)


def test_optimal_grid_matches_reproject_semantics() -> None:
    inputs = [
        (make_wcs((200, 300), rotation_deg=15.0), (200, 300)),
        (make_wcs((150, 150), pixel_scale_arcsec=0.04, ra=274.701), (150, 150)),
    ]
    grid = optimal_celestial_grid(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _ref_wcs, ref_shape = find_optimal_celestial_wcs([(s, w) for w, s in inputs], negative_lon_cdelt=True)
    assert abs(grid.shape[0] - ref_shape[0]) <= 2
    assert abs(grid.shape[1] - ref_shape[1]) <= 2
    assert grid.pixel_scale_deg == pytest.approx(0.04 / 3600)
    # every input corner falls inside the grid
    for wcs, (ny, nx) in inputs:
        sky = wcs.pixel_to_world([-0.5, nx - 0.5, nx - 0.5, -0.5], [-0.5, -0.5, ny - 0.5, ny - 0.5])
        px, py = grid.wcs.world_to_pixel(sky)
        assert np.all(px >= -0.51)
        assert np.all(px <= grid.nx - 0.49)
        assert np.all(py >= -0.51)
        assert np.all(py <= grid.ny - 0.49)
    # north up, east left
    assert grid.wcs.wcs.cdelt[0] < 0 < grid.wcs.wcs.cdelt[1]


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_downscaled_wcs_matches_block_average_geometry(factor: int) -> None:
    wcs = make_wcs((120, 120), rotation_deg=30.0)
    small = downscale_wcs(wcs, factor)
    sliced = wcs.slice((slice(None, None, factor), slice(None, None, factor)))
    i = np.array([0.0, 5.0, 17.0])
    # new pixel i centre is old pixel f*i + (f-1)/2
    np.testing.assert_allclose(
        np.array(small.pixel_to_world_values(i, i)),
        np.array(wcs.pixel_to_world_values(factor * i + (factor - 1) / 2, factor * i + (factor - 1) / 2)),
        atol=1e-10,
    )
    np.testing.assert_allclose(small.wcs.crpix, sliced.wcs.crpix)


def test_downscaled_sip_wcs() -> None:
    wcs = make_wcs((100, 100))
    header = wcs.to_header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    header.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 1e-4, "B_0_2": -2e-4, "A_1_1": 5e-5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sip = WCS(header)
    small = downscale_wcs(sip, 2)
    i = np.array([0.0, 11.0, 40.0])
    np.testing.assert_allclose(
        np.array(small.all_pix2world(i, i, 0)), np.array(sip.all_pix2world(2 * i + 0.5, 2 * i + 0.5, 0)), atol=1e-10
    )


def test_block_averaged_read_reprojects_like_full_resolution(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.processing.fits_io import read_plane
    from tests.support.fits_factory import write_image

    yy, xx = np.mgrid[:256, :256]
    data = (np.sin(xx / 9.0) + np.cos(yy / 13.0)).astype(np.float32)
    wcs = make_wcs((256, 256), rotation_deg=8.0)
    path = write_image(tmp_path / "s.fits", data, wcs=wcs)
    plane = read_plane(path, max_side=128)
    assert plane.factor == 2
    grid = optimal_celestial_grid([(wcs, (256, 256))]).rescaled(2.0)
    full = reproject_fast(data, wcs, grid)
    half = reproject_fast(plane.data, downscale_wcs(wcs, 2), grid)
    ok = np.isfinite(full) & np.isfinite(half)
    assert ok.mean() > 0.7
    assert np.abs(full[ok] - half[ok]).mean() < 0.02  # same geometry: only smoothing differences


def test_footprint_bbox_and_cutout() -> None:
    wcs = make_wcs((50, 60), ra=274.7005)
    grid = optimal_celestial_grid([(wcs, (50, 60)), (make_wcs((100, 100)), (100, 100))])
    bbox = footprint_bbox(wcs, (50, 60), grid)
    assert bbox is not None
    y0, y1, x0, x1 = bbox
    data = np.ones((50, 60), dtype=np.float32)
    whole = reproject_fast(data, wcs, grid)
    part = reproject_fast(data, wcs, grid.cutout(y0, y1, x0, x1))
    np.testing.assert_array_equal(np.isfinite(whole[y0:y1, x0:x1]), np.isfinite(part))
    assert np.isfinite(whole).sum() == np.isfinite(part).sum()
    assert footprint_bbox(make_wcs((10, 10), ra=10.0, dec=10.0), (10, 10), grid) is None


@pytest.mark.parametrize("threads", [2, 3])
def test_bands_on_threads_give_the_same_pixels(threads: int) -> None:
    data, _ = gaussian_stars((300, 260), n_stars=80, seed=5)
    data[40:60, 100:130] = np.nan  # invalid pixels go through the weighted path
    wcs_in = make_wcs((300, 260), rotation_deg=17.0)
    grid = optimal_celestial_grid([(wcs_in, (300, 260)), (make_wcs((200, 200)), (200, 200))])
    one = reproject_fast(data, wcs_in, grid, band_pixels=4096)
    many = reproject_fast(data, wcs_in, grid, band_pixels=4096, threads=threads)
    np.testing.assert_array_equal(one, many)
    out = np.zeros(grid.shape, dtype=np.float32)
    assert reproject_fast(data, wcs_in, grid, out=out, threads=threads) is out  # written in place, NaN outside
    np.testing.assert_array_equal(out, one)


def test_threaded_block_averaged_read_equals_one_thread(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.processing import fits_io
    from app.processing.fits_io import read_plane
    from tests.support.fits_factory import write_image

    rng = np.random.default_rng(8)
    data = rng.normal(5.0, 1.0, (403, 301)).astype(np.float32)
    data[10:30, 10:12] = np.nan
    data[200, 7] = np.inf  # excluded from its block's mean, like NaN
    path = write_image(tmp_path / "t.fits", data, wcs=make_wcs((403, 301)))
    small_bands = fits_io.BAND_BYTES
    try:
        fits_io.BAND_BYTES = 301 * 8 * 3 * 4  # a few blocks per band: many bands, an odd last one
        one = read_plane(path, factor=3).data
        two = read_plane(path, factor=3, threads=2).data
        full = read_plane(path, threads=2).data
    finally:
        fits_io.BAND_BYTES = small_bands
    np.testing.assert_array_equal(one, two)
    assert one.shape == (135, 101)
    assert np.isfinite(one).all()  # no block is all NaN
    np.testing.assert_allclose(one[67, 2], np.nanmean(np.where(np.isinf(data), np.nan, data)[201:204, 6:9]), rtol=1e-6)
    np.testing.assert_array_equal(full, data)
