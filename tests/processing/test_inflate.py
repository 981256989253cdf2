"""Bounded decompressing streams: lazy seeks, a hard end, and the budget checks of fits_io."""

from __future__ import annotations

import bz2
import gzip
import lzma
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from app.processing import fits_io
from app.processing.errors import BudgetExceeded, InvalidFits
from app.processing.inflate import InflateLimitExceeded, open_bounded
from tests.support.bombs import gzip_bomb, gzip_bomb_second_hdu, tile_bomb

MIB = 1024 * 1024


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_reads_are_bounded_and_seeks_lazy(tmp_path: Path, compress: object) -> None:
    path = tmp_path / "x.bin"
    payload = bytes(range(256)) * 4096  # 1 MiB
    path.write_bytes(compress(payload))  # type: ignore[operator]
    stream = open_bounded(path, 600_000)
    assert stream is not None
    with stream:
        assert stream.seek(10 * MIB) == 10 * MIB  # nothing inflated yet
        assert stream.tell() == 10 * MIB
        stream.seek(1000)
        assert stream.read(16) == payload[1000:1016]
        assert stream.tell() == 1016
        with pytest.raises(InflateLimitExceeded):
            stream.read(600_000)
        assert stream.exceeded
        stream.seek(0)
        with pytest.raises(InflateLimitExceeded):
            stream.read()


def test_plain_files_are_not_wrapped_and_zip_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "p.fits"
    fits.PrimaryHDU(data=np.zeros((4, 4), np.float32)).writeto(plain)
    assert open_bounded(plain, MIB) is None
    zipped = tmp_path / "z.fits"
    zipped.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(InvalidFits, match="ZIP-compressed"):
        open_bounded(zipped, MIB)


def test_a_small_gzip_file_reads_as_before(tmp_path: Path) -> None:
    data = np.arange(64 * 80, dtype=np.float32).reshape(64, 80)
    plain = tmp_path / "p.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data=data, name="SCI")]).writeto(plain)
    gz = tmp_path / "p.fits.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    info = fits_io.image_info(gz)
    assert info.hdu_index == 1
    assert 0 < info.inflated_bytes < 50_000
    np.testing.assert_array_equal(fits_io.read_plane(gz).data, data)
    with fits_io.inflate_budget(info.inflated_bytes - 1), pytest.raises(BudgetExceeded, match="too large"):
        fits_io.read_plane(gz)


@pytest.mark.parametrize("writer", [gzip_bomb, gzip_bomb_second_hdu, tile_bomb])
def test_bombs_are_refused_from_their_declared_size_without_inflating(tmp_path: Path, writer: object) -> None:
    path = tmp_path / "bomb.fits"
    writer(path)  # type: ignore[operator]
    started = time.monotonic()
    info = fits_io.image_info(path)  # headers only: stepping over 4 GB of data costs nothing
    assert info.inflated_bytes > 4_000_000_000
    with pytest.raises(BudgetExceeded, match=r"needs 41\d\d MB inflated"):
        fits_io.read_plane(path, max_side=256)
    with pytest.raises(BudgetExceeded):
        fits_io.read_window(path, info, rows=slice(0, 2), cols=slice(0, 2))
    assert time.monotonic() - started < 10.0
