"""Read budgets of :mod:`app.processing.fits_io` and the one-pass histogram of :mod:`app.processing.statistics`."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from app.processing import fits_io, statistics
from app.processing.errors import BudgetExceeded
from tests.support.big_fits import write_sparse_image

SHAPE = (2048, 4096)
BAND = fits_io.BAND_BYTES // 4


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("budget")
    plain = write_sparse_image(folder / "plain.fits", *SHAPE, filled_bands=1)
    packed = folder / "packed.fits.gz"
    with plain.open("rb") as source, gzip.open(packed, "wb", compresslevel=1) as target:
        shutil.copyfileobj(source, target)
    tiled = folder / "tiled.fits"
    data = np.zeros((300, 200), dtype=np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data=data, name="SCI")]).writeto(tiled)
    small = folder / "small.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data=data, name="SCI")]).writeto(small)
    return {"plain": plain, "packed": packed, "tiled": tiled, "small": small}


def test_reads_in_bands_only_for_uncompressed_plain_hdus(files: dict[str, Path]) -> None:
    assert fits_io.reads_in_bands(files["plain"], fits_io.image_info(files["plain"]))
    assert fits_io.reads_in_bands(files["small"], fits_io.image_info(files["small"]))
    assert not fits_io.reads_in_bands(files["packed"], fits_io.image_info(files["packed"]))
    assert not fits_io.reads_in_bands(files["tiled"], fits_io.image_info(files["tiled"]))


def test_held_pixels_is_the_output_and_one_band(files: dict[str, Path]) -> None:
    big = fits_io.image_info(files["plain"])
    assert fits_io.held_pixels(big, 4) == 512 * 1024 + BAND
    assert fits_io.held_pixels(big, 3) == 683 * 1366 + BAND  # partial blocks at the edges count
    assert fits_io.held_pixels(big, 1) == SHAPE[0] * SHAPE[1] + BAND
    small = fits_io.image_info(files["small"])
    assert fits_io.held_pixels(small, 1) == 2 * 300 * 200  # the band is the whole (small) plane


def test_uncompressed_budget_counts_memory_not_file_pixels(files: dict[str, Path]) -> None:
    info = fits_io.image_info(files["plain"])
    budget = 6_000_000
    assert info.n_elements > budget
    fits_io.check_read_budget(files["plain"], info, factor=4, max_elements=budget)
    with pytest.raises(BudgetExceeded, match="too large"):
        fits_io.check_read_budget(files["plain"], info, factor=1, max_elements=budget)


def test_compressed_budget_counts_the_declared_size(files: dict[str, Path]) -> None:
    for name in ("packed", "tiled"):
        info = fits_io.image_info(files[name])
        with pytest.raises(BudgetExceeded, match="too large"):
            fits_io.check_read_budget(files[name], info, factor=64, max_elements=info.n_elements - 1)
        fits_io.check_read_budget(files[name], info, factor=64, max_elements=info.n_elements)


def test_scan_limit_refuses_planes_too_long_to_read(files: dict[str, Path]) -> None:
    info = fits_io.image_info(files["plain"])
    with pytest.raises(BudgetExceeded, match="too large"):
        fits_io.check_read_budget(files["plain"], info, factor=64, max_elements=10**9, max_scan_pixels=1000)


def test_histogram_of_finite_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(5.0, 2.0, 200_000).astype(np.float32)
    lo, hi = float(values.min()), float(values.max())
    ours = statistics.histogram_of_finite(values, bins=97, value_range=(lo, hi))
    counts, edges = np.histogram(values.astype(np.float64), bins=97, range=(lo, hi))
    assert ours["bin_edges"] == [float(e) for e in edges]
    assert ours["n_bins"] == 97
    assert sum(ours["counts"]) == values.size
    assert np.abs(np.asarray(ours["counts"]) - counts).sum() <= 10  # only values within rounding of an edge move


def test_histogram_of_finite_range_and_dtypes() -> None:
    values = np.array([0.0, 0.5, 1.0, 2.0, -1.0], dtype=np.float32)
    ours = statistics.histogram_of_finite(values, bins=2, value_range=(0.0, 1.0))
    assert ours["counts"] == [1, 2]  # outside values are left out, the last bin includes the top edge
    flat = statistics.histogram_of_finite(np.full(10, 3, dtype=np.int16), bins=4, value_range=(3.0, 3.0))
    assert flat["bin_edges"][0] == 2.5
    assert flat["bin_edges"][-1] == 3.5
    assert sum(flat["counts"]) == 10
