"""Bounded-memory FITS reading of app.processing.fits_io on real files written with astropy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose

from app.processing import fits_io
from app.processing.errors import BudgetExceeded, InvalidFits, InvalidInput, NoImageData
from tests.support import bad_files
from tests.support.fits_factory import gaussian_stars, make_wcs, write_cube, write_image, write_radio_cube


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fits_io")
    data, _ = gaussian_stars((90, 120), n_stars=10, seed=1)
    cube = np.arange(5 * 30 * 40, dtype=np.float32).reshape(5, 30, 40)
    out = {
        "image": write_image(root / "image.fits", data, wcs=make_wcs((90, 120))),
        "primary": write_image(root / "primary.fits", data, primary=True),
        "cube": write_cube(root / "cube.fits", cube),
    }
    for name in ("random_bytes", "truncated_data", "truncated_header", "header_only", "tables_only", "all_nan",
                 "scaled_integers", "tile_compressed", "huge_header", "cube_4d", "one_dimensional"):  # fmt: skip
        path = root / f"{name}.fits"
        getattr(bad_files, name)(path)
        out[name] = path
    # a file with a table first and two images after it
    table = fits.BinTableHDU.from_columns([fits.Column(name="A", format="D", array=np.arange(3.0))])
    first = fits.ImageHDU(data=np.ones((10, 12), dtype=np.float32), name="FIRST")
    second = fits.ImageHDU(data=np.full((6, 8), 2.0, dtype=np.float32), name="SECOND")
    fits.HDUList([fits.PrimaryHDU(), table, first, second]).writeto(root / "multi.fits")
    out["multi"] = root / "multi.fits"
    return out


def test_image_info_reads_headers_only(files: dict[str, Path]) -> None:
    info = fits_io.image_info(files["image"])
    assert (info.hdu_index, info.shape, info.bitpix, info.extname) == (1, (90, 120), -32, "SCI")
    assert (info.ny, info.nx, info.n_elements, info.n_slices, info.is_cube) == (90, 120, 10800, 1, False)
    assert fits_io.image_info(files["primary"]).hdu_index == 0
    # a 40 GB header with no data behind it: the shape is known without reading
    huge = fits_io.image_info(files["huge_header"])
    assert huge.n_elements == 10**10
    with pytest.raises(BudgetExceeded):
        fits_io.check_elements(huge, 200_000_000)
    with pytest.raises(BudgetExceeded):
        fits_io.read_plane(files["huge_header"], max_elements=1000)


def test_first_image_hdu_and_explicit_index(files: dict[str, Path]) -> None:
    assert fits_io.image_info(files["multi"]).extname == "FIRST"
    plane = fits_io.read_plane(files["multi"], hdu_index=3)
    assert plane.data.shape == (6, 8)
    assert np.all(plane.data == 2.0)
    with pytest.raises(NoImageData):
        fits_io.read_plane(files["multi"], hdu_index=1)
    with pytest.raises(InvalidInput):
        fits_io.read_plane(files["multi"], hdu_index=9)
    assert fits_io.image_info(files["cube"], min_ndim=3).shape == (5, 30, 40)
    with pytest.raises(NoImageData):
        fits_io.image_info(files["image"], min_ndim=3)


def test_read_full_plane_is_float32_and_exact(files: dict[str, Path]) -> None:
    plane = fits_io.read_plane(files["image"])
    with fits.open(files["image"]) as hdul:
        expected = hdul[1].data
        assert_allclose(plane.data, expected)
    assert plane.data.dtype == np.float32
    assert plane.factor == 1
    assert plane.original_shape == (90, 120)


def test_cube_slices(files: dict[str, Path]) -> None:
    cube = np.arange(5 * 30 * 40, dtype=np.float32).reshape(5, 30, 40)
    middle = fits_io.read_plane(files["cube"])
    assert middle.slice_index == 2
    assert_allclose(middle.data, cube[2])
    clamped = fits_io.read_plane(files["cube"], slice_index=50)
    assert clamped.slice_index == 4
    assert_allclose(clamped.data, cube[4])
    info = fits_io.image_info(files["cube"])
    assert fits_io.resolve_slice(info, -1) == 2
    assert fits_io.resolve_slice(info, 1) == 1
    four_d = fits_io.read_plane(files["cube_4d"], slice_index=1)
    with fits.open(files["cube_4d"]) as hdul:
        assert_allclose(four_d.data, hdul[0].data[1, 1])  # chosen slice, middle of the next axis


def test_downscale_stride_and_block(files: dict[str, Path]) -> None:
    full = fits_io.read_plane(files["image"]).data
    stride = fits_io.read_plane(files["image"], max_side=40, method="stride")
    assert stride.factor == 3
    assert_allclose(stride.data, full[::3, ::3])
    block = fits_io.read_plane(files["image"], max_side=40, method="block")
    assert block.data.shape == (30, 40)
    assert_allclose(block.data, full.reshape(30, 3, 40, 3).mean(axis=(1, 3)), rtol=1e-5)
    explicit = fits_io.read_plane(files["image"], factor=2)
    assert explicit.data.shape == (45, 60)
    assert explicit.factor == 2
    with pytest.raises(ValueError, match="method must be 'block' or 'stride', got 'nearest'"):
        fits_io.read_plane(files["image"], method="nearest")  # type: ignore[arg-type]


def test_block_mean_ignores_nan_in_bands(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fits_io, "BAND_BYTES", 2048)  # force many small bands
    data = np.arange(64 * 80, dtype=np.float32).reshape(64, 80)
    data[0, 0] = np.nan
    path = write_image(files["image"].parent / "nan_band.fits", data, primary=True)
    block = fits_io.read_plane(path, factor=4).data
    expected = data.reshape(16, 4, 20, 4).copy()
    assert_allclose(block, np.nanmean(expected, axis=(1, 3)), rtol=1e-6)


def test_integers_with_bscale_bzero_blank(files: dict[str, Path]) -> None:
    plane = fits_io.read_plane(files["scaled_integers"]).data
    raw = np.arange(64 * 80, dtype=np.int16).reshape(64, 80) % 1000
    expected = (raw * 0.5 + 100.0).astype(np.float32)
    expected[10:20, 10:20] = np.nan
    assert_allclose(plane, expected)


def test_unsigned_16_bit_via_bzero(tmp_path: Path) -> None:
    values = np.array([[0, 1, 40000, 65535]], dtype=np.uint16).repeat(2, 0)
    fits.PrimaryHDU(data=values).writeto(tmp_path / "u16.fits")  # astropy stores int16 + BZERO=32768
    assert_allclose(fits_io.read_plane(tmp_path / "u16.fits").data, values.astype(np.float32))


def test_compressed_image(files: dict[str, Path]) -> None:
    plane = fits_io.read_plane(files["tile_compressed"])
    data, _ = bad_files._good_image()
    assert plane.data.shape == data.shape
    assert_allclose(plane.data, data, atol=np.abs(data).max() * 1e-2)  # lossy quantisation


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("random_bytes", InvalidFits),
        ("truncated_header", InvalidFits),
        ("truncated_data", InvalidFits),
        ("header_only", NoImageData),
        ("tables_only", NoImageData),
        ("one_dimensional", NoImageData),
    ],
)
def test_bad_files_raise_core_errors(files: dict[str, Path], case: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        fits_io.read_plane(files[case])


def test_all_nan_reads_as_nan(files: dict[str, Path]) -> None:
    data = fits_io.read_plane(files["all_nan"], factor=2).data
    assert np.isnan(data).all()
    assert np.all(fits_io.finite_or_zero(data) == 0.0)


def test_celestial_wcs(files: dict[str, Path]) -> None:
    wcs = fits_io.celestial_wcs(fits_io.image_info(files["image"]).header)
    assert wcs is not None
    assert wcs.naxis == 2
    cube_wcs = fits_io.celestial_wcs(fits_io.image_info(files["cube"]).header)
    assert cube_wcs is not None
    assert cube_wcs.naxis == 2
    assert fits_io.celestial_wcs(fits.Header()) is None
    assert fits_io.downscale_factor(100, 50, None) == 1
    assert fits_io.downscale_factor(100, 50, 30) == 4


def test_plain_files_are_read_without_memory_map(files: dict[str, Path]) -> None:
    info = fits_io.image_info(files["cube"])
    with fits.open(files["cube"]) as hdul:
        reader = fits_io._file_rows(files["cube"], hdul[info.hdu_index], info, (3,))
        assert reader is not None
        cube = np.arange(5 * 30 * 40, dtype=np.float32).reshape(5, 30, 40)
        assert_allclose(reader[2:5, 0:40], cube[3, 2:5])
        assert_allclose(reader[::7, ::3], cube[3, ::7, ::3])


def test_downscaled_read_allocates_only_bands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    size = 1024
    data = np.random.default_rng(0).normal(size=(size, size)).astype(np.float32)
    path = write_image(tmp_path / "big.fits", data, primary=True)  # 4 MB of pixels
    monkeypatch.setattr(fits_io, "BAND_BYTES", 256 * 1024)
    tracemalloc.start()
    try:
        plane = fits_io.read_plane(path, factor=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert plane.data.shape == (128, 128)
    assert_allclose(plane.data, data.reshape(128, 8, 128, 8).mean(axis=(1, 3)), atol=1e-5)
    assert peak < data.nbytes / 4  # never a full-size copy, let alone float64


@pytest.mark.parametrize("stokes_last", [True, False])
def test_length_one_axes_are_squeezed(tmp_path: Path, stokes_last: bool) -> None:
    channels = np.stack([np.full((12, 16), float(k), dtype=np.float32) for k in range(7)])
    path = write_radio_cube(tmp_path / "radio.fits", channels, stokes_last=stokes_last)
    info = fits_io.image_info(path)
    assert info.shape == ((1, 7, 12, 16) if stokes_last else (7, 1, 12, 16))
    assert (info.is_cube, info.n_slices, info.slice_fits_axis) == (True, 7, 3 if stokes_last else 4)
    assert fits_io.image_info(path, min_ndim=3).hdu_index == 0
    for k in (0, 4, 6):
        plane = fits_io.read_plane(path, slice_index=k)
        assert plane.slice_index == k
        assert_allclose(plane.data, k)
        assert_allclose(fits_io.read_window(path, info, rows=slice(0, 2), cols=slice(0, 2), slice_index=k), k)
    assert fits_io.read_plane(path).slice_index == 3


def test_a_single_plane_cube_is_an_image(tmp_path: Path) -> None:
    path = tmp_path / "one.fits"
    fits.PrimaryHDU(np.ones((1, 1, 8, 9), dtype=np.float32)).writeto(path)
    info = fits_io.image_info(path)
    assert (info.is_cube, info.n_slices, info.slice_axis) == (False, 1, None)
    with pytest.raises(NoImageData):
        fits_io.image_info(path, min_ndim=3)
    assert fits_io.read_plane(path).data.shape == (8, 9)


def test_read_sample_is_a_full_resolution_grid(files: dict[str, Path]) -> None:
    info = fits_io.image_info(files["image"])
    full = fits_io.read_plane(files["image"], info=info)
    sample = fits_io.read_sample(files["image"], info, max_pixels=1000)
    stride = fits_io.sample_stride(info, 1000)
    assert stride == 4
    assert_allclose(sample, full.data[::4, ::4])
    assert_allclose(fits_io.read_sample(files["image"], info, max_pixels=1000, plane=full), sample)


def test_block_mean_keeps_partial_edge_blocks(tmp_path: Path) -> None:
    data = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    data[0, 0] = np.nan
    path = tmp_path / "odd.fits"
    fits.PrimaryHDU(data).writeto(path)
    plane = fits_io.read_plane(path, factor=2, method="block")
    assert plane.data.shape == (3, 4)  # ceil(5 / 2) x ceil(7 / 2), as a stride read
    assert plane.data[0, 0] == pytest.approx(np.nanmean(data[0:2, 0:2]))
    assert plane.data[1, 3] == pytest.approx(data[2:4, 6].mean())  # last column: a 2 x 1 block
    assert plane.data[2, 1] == pytest.approx(data[4, 2:4].mean())  # last row: a 1 x 2 block
    assert plane.data[2, 3] == data[4, 6]  # the corner: a 1 x 1 block
